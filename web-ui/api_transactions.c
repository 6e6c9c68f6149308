/*
 * Transactions: several configuration changes staged, then committed at
 * once (one validation, one write, one reload), or discarded.
 *
 *   POST /api/v1/transactions                     -> {"id"}
 *   POST /api/v1/transactions/<id>                stage one change (form):
 *        op=server-state  service, server, state
 *        op=server-weight service, server, weight
 *        op=service-block service, block        (replace a service block)
 *        op=service-add   block
 *        op=service-delete service
 *        op=block-set     kind, name, fields   (directives of a named block, as
 *                                               /api/v1/blocks takes them, form-encoded)
 *        op=block-add     kind, fields
 *        op=block-delete  kind, name
 *   GET  /api/v1/transactions/<id>                the staged changes
 *   POST /api/v1/transactions/<id>/commit         If-Match; 422 names the change that failed
 *   POST /api/v1/transactions/<id>/discard
 *
 * A transaction belongs to the user who opened it, lives in this process
 * (at most 64 open, an hour each) and holds at most 100 changes.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "../common/common.h"
#include "webui_int.h"

#define MAX_TX 64
#define MAX_OPS 100

static pthread_mutex_t tx_mu = PTHREAD_MUTEX_INITIALIZER;

struct op {
    char kind[16], service[128], server[128], state[8], *block;
    long weight;
};

struct tx {
    char id[33], user[64];
    int64_t created;
    struct op ops[MAX_OPS];
    int nops;
};

static struct tx *txs[MAX_TX];

static void tx_free(int i)
{
    int k;

    if (txs[i] == NULL)
        return;
    for (k = 0; k < txs[i]->nops; k++)
        free(txs[i]->ops[k].block);
    free(txs[i]);
    txs[i] = NULL;
}

/* Called under tx_mu. */
static int find(const char *id, const struct webui_session *s)
{
    int i;
    int64_t now = (int64_t)time(NULL);

    for (i = 0; i < MAX_TX; i++) {
        if (txs[i] != NULL && now - txs[i]->created > 3600)
            tx_free(i);
        if (txs[i] != NULL && strcmp(txs[i]->id, id) == 0 && strcmp(txs[i]->user, s->user) == 0)
            return i;
    }
    return -1;
}

static int field(const char *body, size_t blen, const char *key, char *dst, size_t cap)
{
    char *v = gh_form_get(body, blen, key);
    int rc = v != NULL && gh_strlcpy(dst, v, cap) == 0 ? 0 : -1;

    free(v);
    return rc;
}

static int stage(struct tx *t, const char *body, size_t blen, char *err, size_t errlen)
{
    struct op o;
    char w[16];

    memset(&o, 0, sizeof(o));
    if (t->nops == MAX_OPS) {
        snprintf(err, errlen, "at most %d changes in one transaction", MAX_OPS);
        return -1;
    }
    if (field(body, blen, "op", o.kind, sizeof(o.kind)) == -1) {
        snprintf(err, errlen, "op is needed");
        return -1;
    }
    if (strcmp(o.kind, "server-state") == 0) {
        if (field(body, blen, "service", o.service, sizeof(o.service)) == -1 ||
            field(body, blen, "server", o.server, sizeof(o.server)) == -1 ||
            field(body, blen, "state", o.state, sizeof(o.state)) == -1 ||
            (strcmp(o.state, "up") && strcmp(o.state, "drain") && strcmp(o.state, "maint"))) {
            snprintf(err, errlen, "server-state needs service, server and state up|drain|maint");
            return -1;
        }
    } else if (strcmp(o.kind, "server-weight") == 0) {
        if (field(body, blen, "service", o.service, sizeof(o.service)) == -1 ||
            field(body, blen, "server", o.server, sizeof(o.server)) == -1 ||
            field(body, blen, "weight", w, sizeof(w)) == -1 ||
            gh_parse_long(w, 1, 1000, &o.weight) == -1) {
            snprintf(err, errlen, "server-weight needs service, server and weight 1-1000");
            return -1;
        }
    } else if (strcmp(o.kind, "service-block") == 0 || strcmp(o.kind, "service-add") == 0 ||
               strcmp(o.kind, "service-delete") == 0) {
        if (strcmp(o.kind, "service-add") != 0 &&
            field(body, blen, "service", o.service, sizeof(o.service)) == -1) {
            snprintf(err, errlen, "%s needs service", o.kind);
            return -1;
        }
        if (strcmp(o.kind, "service-delete") != 0 &&
            (o.block = gh_form_get(body, blen, "block")) == NULL) {
            snprintf(err, errlen, "%s needs block", o.kind);
            return -1;
        }
    } else if (strcmp(o.kind, "block-set") == 0 || strcmp(o.kind, "block-add") == 0 ||
               strcmp(o.kind, "block-delete") == 0) {
        /* kind in server, name in service, the fields (form-encoded) in block */
        if (field(body, blen, "kind", o.server, sizeof(o.server)) == -1 ||
            (strcmp(o.server, "service") && strcmp(o.server, "identity-provider") &&
             strcmp(o.server, "identity-provider-group") && strcmp(o.server, "rules")) ||
            (strcmp(o.kind, "block-add") != 0 &&
             field(body, blen, "name", o.service, sizeof(o.service)) == -1) ||
            (strcmp(o.kind, "block-delete") != 0 &&
             (o.block = gh_form_get(body, blen, "fields")) == NULL)) {
            free(o.block);
            snprintf(err, errlen, "%s needs kind (service, identity-provider, "
                     "identity-provider-group, rules)%s%s", o.kind,
                     strcmp(o.kind, "block-add") ? ", name" : "",
                     strcmp(o.kind, "block-delete") ? ", fields" : "");
            return -1;
        }
    } else {
        snprintf(err, errlen, "unknown op '%s'", o.kind);
        return -1;
    }
    t->ops[t->nops++] = o;
    return 0;
}

static char *apply(const struct op *o, const char *text, size_t len, char *err, size_t errlen)
{
    if (strcmp(o->kind, "server-state") == 0)
        return webui__set_server(text, len, o->service, o->server, o->state, 0, err, errlen);
    if (strcmp(o->kind, "server-weight") == 0)
        return webui__set_server(text, len, o->service, o->server, NULL, o->weight, err, errlen);
    if (strcmp(o->kind, "service-add") == 0)
        return webui__service_op(text, len, "add", NULL, o->block, strlen(o->block), err, errlen);
    if (strcmp(o->kind, "service-delete") == 0)
        return webui__service_op(text, len, "delete", o->service, "", 0, err, errlen);
    if (strncmp(o->kind, "block-", 6) == 0) {
        struct webui_fields *fm = gh_calloc(1, sizeof(*fm));
        unsigned status = 422;
        char *out = NULL;
        if (strcmp(o->kind, "block-delete") == 0)
            out = webui__block_delete(text, len, o->server, o->service, &status, err, errlen);
        else if (webui__fields_parse(o->block, strlen(o->block), fm) == -1)
            snprintf(err, errlen, "fields: malformed or too many");
        else if (strcmp(o->kind, "block-add") == 0)
            out = webui__block_add(text, len, o->server, fm->f, fm->n, &status, err, errlen);
        else
            out = webui__block_set(text, len, o->server, o->service, fm->f, fm->n, &status, err,
                                   errlen);
        webui__fields_free(fm);
        free(fm);
        return out;
    }
    return webui__service_op(text, len, "modify", o->service, o->block, strlen(o->block), err,
                             errlen);
}

static char *tx_transform(const char *text, size_t len, void *ctx, unsigned *status, char *err,
                          size_t errlen)
{
    const struct tx *t = ctx;
    char *cur = gh_strndup(text, len), e[900];
    int k;

    (void)status;
    for (k = 0; k < t->nops; k++) {
        char *next = apply(&t->ops[k], cur, strlen(cur), e, sizeof(e));
        free(cur);
        if (next == NULL) {
            snprintf(err, errlen, "change %d (%s): %s", k + 1, t->ops[k].kind, e);
            return NULL;
        }
        cur = next;
    }
    return cur;
}

/* Called with tx_mu held; apply takes the write lock after it (never the
 * other way round). A stale or refused transaction stays open to be fixed
 * or discarded. */
static enum MHD_Result commit(struct MHD_Connection *conn, const struct webui_session *s, int i)
{
    struct webui_change ch = {0};
    char what[64];
    enum MHD_Result ret;

    snprintf(what, sizeof(what), "%d changes", txs[i]->nops);
    ch.action = "transaction";
    ch.object = txs[i]->id;
    ch.after = what;
    ch.transform = tx_transform;
    ch.ctx = txs[i];
    ret = webui__apply(conn, s, &ch);
    if (ch.committed)
        tx_free(i);
    return ret;
}

/* Each transaction route: under tx_mu; 409 on the embedded default. */
enum tx_op { TX_GET, TX_STAGE, TX_COMMIT, TX_DISCARD };

enum MHD_Result webui__r_tx_open(struct webui_call *c)
{
    unsigned char r[16];
    enum MHD_Result ret;
    size_t k;
    int i;

    if (webui__conf_path() == NULL)
        return webui__json(c->conn, 409, "error", "running the embedded default topology");
    pthread_mutex_lock(&tx_mu);
    for (i = 0; i < MAX_TX && txs[i] != NULL; i++)
        ;
    if (i == MAX_TX || RAND_bytes(r, sizeof(r)) != 1) {
        ret = webui__json(c->conn, 503, "error", "too many open transactions");
    } else {
        txs[i] = gh_calloc(1, sizeof(struct tx));
        for (k = 0; k < sizeof(r); k++)
            snprintf(txs[i]->id + 2 * k, 3, "%02x", r[k]);
        gh_strlcpy(txs[i]->user, c->s->user, sizeof(txs[i]->user));
        txs[i]->created = (int64_t)time(NULL);
        ret = webui__json(c->conn, 201, "id", txs[i]->id);
    }
    pthread_mutex_unlock(&tx_mu);
    return ret;
}

static enum MHD_Result tx_route(struct webui_call *c, enum tx_op op)
{
    struct MHD_Connection *conn = c->conn;
    char err[512];
    enum MHD_Result ret;
    int i;

    if (webui__conf_path() == NULL)
        return webui__json(conn, 409, "error", "running the embedded default topology");
    if (strlen(c->arg[0]) != 32)
        return webui__json(conn, 404, "error", "no such transaction");
    pthread_mutex_lock(&tx_mu);
    i = find(c->arg[0], c->s);
    if (i == -1) {
        ret = webui__json(conn, 404, "error", "no such transaction");
    } else if (op == TX_GET) {
        struct gh_sbuf o = {NULL, 0, 0};
        int k;
        gh_sbuf_printf(&o, "{\"id\":\"%s\",\"changes\":[", txs[i]->id);
        for (k = 0; k < txs[i]->nops; k++) {
            gh_sbuf_printf(&o, "%s{\"op\":", k ? "," : "");
            gh_json_str(&o, txs[i]->ops[k].kind);
            gh_sbuf_printf(&o, ",\"service\":");
            gh_json_str(&o, txs[i]->ops[k].service);
            gh_sbuf_printf(&o, ",\"server\":");
            gh_json_str(&o, txs[i]->ops[k].server);
            gh_sbuf_printf(&o, "}");
        }
        gh_sbuf_printf(&o, "]}\n");
        ret = webui__send(conn, 200, "application/json", o.p, o.len, NULL);
    } else if (op == TX_STAGE) {
        ret = stage(txs[i], c->body, c->blen, err, sizeof(err)) == 0
                  ? webui__json(conn, 200, "staged", txs[i]->ops[txs[i]->nops - 1].kind)
                  : webui__json(conn, 422, "error", err);
    } else if (op == TX_COMMIT) {
        ret = commit(conn, c->s, i);
    } else {
        tx_free(i);
        ret = webui__json(conn, 200, "discarded", c->arg[0]);
    }
    pthread_mutex_unlock(&tx_mu);
    return ret;
}

enum MHD_Result webui__r_tx_get(struct webui_call *c)
{
    return tx_route(c, TX_GET);
}

enum MHD_Result webui__r_tx_stage(struct webui_call *c)
{
    return tx_route(c, TX_STAGE);
}

enum MHD_Result webui__r_tx_commit(struct webui_call *c)
{
    return tx_route(c, TX_COMMIT);
}

enum MHD_Result webui__r_tx_discard(struct webui_call *c)
{
    return tx_route(c, TX_DISCARD);
}
