/* main_cluster_split: a file's own statements and the cluster's rest, by
 * table; each row's shared part comes back the same from its own local
 * part followed by it (what an appliance writes when it takes a version). */
#include <stdlib.h>
#include <string.h>

#include "../../../common/common.h"
#include "../../../main/main_int.h"
#include "../unit.h"

struct srow {
    const char *name, *text, *local, *shared; /* local NULL: the text is refused */
};

static const struct srow srows[] = {
    {"nothing local", "service a {\n    listen 1\n}\n", "", "service a {\n    listen 1\n}\n"},
    {"the store block", "workers 2\nstore redis {\n    address 1:2\n}\nservice a { listen 1 }\n",
     "workers 2\nstore redis {\n    address 1:2\n}\n", "service a { listen 1 }\n"},
    {"between shared ones, a comment kept with the shared",
     "# top\nservice a { listen 1 }\nstate-dir /x\n# about b\nservice b { listen 2 }\n",
     "state-dir /x\n", "# top\nservice a { listen 1 }\n# about b\nservice b { listen 2 }\n"},
    /* two on one line: each gets a line of its own */
    {"semicolons and no final newline", "access-log /a; security-log /b;\nservice a {}\nworkers 1",
     "access-log /a; \nsecurity-log /b;\nworkers 1\n", "service a {}\n"},
    {"a nested name that is local elsewhere stays shared",
     "service a {\n    workers 3\n}\nlog-level debug\n", "log-level debug\n",
     "service a {\n    workers 3\n}\n"},
    {"a quoted brace in a local value", "state-dir \"/x{y}\"\nservice a {}\n",
     "state-dir \"/x{y}\"\n", "service a {}\n"},
    {"unbalanced braces refused", "service a {\n", NULL, NULL},
    {"indented local statement", "  workers 4\nservice a {}\n", "  workers 4\n", "service a {}\n"},
    /* a local statement after another on its line: the other stays shared */
    {"after a shared statement on one line", "service a { listen 1 }; workers 2\n",
     "workers 2\n", "service a { listen 1 }; "},
    {"after a block's closing brace", "service a {\n    listen 1\n} workers 2\nservice b {}\n",
     "workers 2\n", "service a {\n    listen 1\n} service b {}\n"},
};

TEST(cluster_config_split_table)
{
    size_t i;

    for (i = 0; i < GH_ARRAY_LEN(srows); i++) {
        const struct srow *r = &srows[i];
        struct gh_sbuf local = {0}, shared = {0}, l2 = {0}, s2 = {0}, both = {0};
        char err[256] = "";
        int rc = main_cluster_split(r->text, strlen(r->text), &local, &shared, err, sizeof(err));
        CHECK_EQ(rc, r->local ? 0 : -1, r->name);
        if (r->local != NULL) {
            CHECK_STR(local.p ? local.p : "", r->local, r->name);
            CHECK_STR(shared.p ? shared.p : "", r->shared, r->name);
            gh_sbuf_append(&both, local.p ? local.p : "", local.len);
            gh_sbuf_append(&both, shared.p ? shared.p : "", shared.len);
            CHECK_EQ(main_cluster_split(both.p, both.len, &l2, &s2, err, sizeof(err)), 0, r->name);
            CHECK_STR(s2.p ? s2.p : "", r->shared, r->name);
            CHECK_STR(l2.p ? l2.p : "", r->local, r->name);
        } else {
            CHECK(err[0] != '\0');
        }
        free(local.p);
        free(shared.p);
        free(l2.p);
        free(s2.p);
        free(both.p);
    }
}
