/* libFuzzer target: the rule engine. The first input line is a rule set in
 * config syntax (exercising the rule parser and pcre2 compilation); the
 * rest is matched as method, path, query and a header value. Evaluation
 * must terminate (match limits) and name only rules of the set. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "common/conf.h"
#include "rules/rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *hval;
static size_t hlen;

static int header(void *ctx, const char *name, unsigned idx, const char **v, size_t *vlen)
{
    (void)ctx;
    (void)name;
    if (idx > 1)
        return -1; /* the same value twice: lines are matched one by one */
    *v = hval;
    *vlen = hlen;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *nl = memchr(data, '\n', size);
    char text[2048], err[512];
    struct gh_conf *c;
    size_t rl;

    if (nl == NULL || size > 8192)
        return 0;
    rl = (size_t)((const uint8_t *)nl - data);
    if (rl + 32 > sizeof(text))
        return 0;
    memcpy(text, "rules f {\n", 10);
    memcpy(text + 10, data, rl);
    memcpy(text + 10 + rl, "\n}\n", 3);
    c = gh_conf_parse("f", text, rl + 13, err, sizeof(err));
    if (c != NULL && c->nrulesets == 1) {
        struct rules_set *s = rules_set_new("f", &c->rulesets[0], err, sizeof(err));
        if (s != NULL) {
            struct sockaddr_in sa;
            struct rules_req q;
            struct rules_verdict v;
            const char *rest = nl + 1;
            size_t rn = size - rl - 1, i;
            memset(&sa, 0, sizeof(sa));
            sa.sin_family = AF_INET;
            sa.sin_addr.s_addr = htonl(0x0a000001);
            memset(&q, 0, sizeof(q));
            q.method = rest;
            q.method_len = rn < 8 ? rn : 8;
            q.path = rest;
            q.path_len = rn;
            q.query = rest;
            q.query_len = rn;
            q.source = (struct sockaddr *)&sa;
            q.header = header;
            hval = rest;
            hlen = rn;
            rules_set_eval(s, &q, &v);
            if (v.action != RULES_NONE) {
                int found = 0;
                for (i = 0; i < c->rulesets[0].nrules; i++)
                    found |= strcmp(c->rulesets[0].rules[i].id, v.id) == 0;
                if (!found)
                    abort();
            }
            rules_set_free(s);
        }
    }
    gh_conf_free(c);
    return 0;
}
