/*
 * proxy — the data plane. main builds a generation from a parsed config
 * (TLS contexts, servers, listeners), installs it, and starts the workers:
 * one thread and one epoll loop each. Reload builds a new generation and
 * installs it; connections keep the generation they were accepted under
 * until they close. Nothing here blocks a worker.
 */
#ifndef GH_PROXY_PROXY_H
#define GH_PROXY_PROXY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct gh_conf;
struct proxy_gen;

/* Resolves a built-in application name to the local address it listens on;
 * main passes the apps module's resolver so proxy never includes it. */
typedef int (*proxy_app_resolver)(const char *name, struct sockaddr_storage *ss,
                                  socklen_t *len);

/* gen.c */
/* Builds a generation from conf (takes ownership of conf on success).
 * Loads certificates and CA bundles; errors name file:line:col. */
struct proxy_gen *proxy_gen_new(struct gh_conf *conf, proxy_app_resolver apps, char *err,
                                size_t errlen);
void proxy_gen_unref(struct proxy_gen *g);

/* worker.c */
/* A reload in two halves, so that main can prepare every module before it
 * changes any. proxy_prepare opens the listeners g needs that are not open
 * yet (nothing accepts on them) and, the first time, the logs: 0, or -1
 * with err and nothing changed. proxy_commit then makes g current, tells
 * the workers and closes the listeners no longer named; it cannot fail and
 * takes g's reference. proxy_abort closes what prepare opened and drops g. */
int proxy_prepare(struct proxy_gen *g, char *err, size_t errlen);
void proxy_commit(struct proxy_gen *g);
void proxy_abort(struct proxy_gen *g);
/* Starts n workers (0 = one per core) on the installed generation. */
int proxy_start(int n);
/* Stops accepting, lets in-flight requests finish, closes idle keep-alive
 * connections; returns when all workers ended or timeout_ms passed. */
void proxy_drain(long long timeout_ms);
/* A security-log line for a refusal decided by a built-in application. */
void proxy_log_security_app(const char *service, const char *client, const char *host,
                            const char *method, const char *path, int status, const char *reason,
                            const char *detail);
/* Reopens the access and security logs (SIGUSR1). */
void proxy_reopen_logs(void);

struct proxy_stats {
    int workers;
    int healthy_workers; /* loop ran within the last 3 s */
    uint64_t conns_active;
    uint64_t conns_total;
    uint64_t requests;
    uint64_t refused;
    uint64_t generation;
};
void proxy_stats_get(struct proxy_stats *st);

/* persist_key.c */
/* The persistence-cookie keys, from STATE-DIR/persist/cookie.key (the path
 * is taken at the first call, like state-dir). At start: read, or made and
 * written when missing or corrupt (logged). At reload: a changed file is
 * adopted; a missing or corrupt one gets the running keys written back.
 * -1 with err: a file readable by group or others, not a plain file, or
 * one that cannot be read or written (start fails; a reload is refused). */
int proxy_persist_keys_load(const struct gh_conf *c, char *err, size_t errlen);
/* Takes persistence-key-rotation and the longest cookie timeout from c;
 * the first call starts the thread that rotates the keys. 0, or -1 when
 * that thread did not start. Call after proxy_persist_keys_load. */
int proxy_persist_keys_schedule(const struct gh_conf *c);
/* The same at reload, in two halves: prepare reads the file (refusing it as
 * load does, writing the running keys back over a missing or corrupt one)
 * and changes nothing that runs; commit adopts changed keys and takes the
 * schedule from c; abort forgets. */
struct proxy_keys_next;
struct proxy_keys_next *proxy_persist_keys_prepare(const struct gh_conf *c, char *err,
                                                   size_t errlen);
void proxy_persist_keys_commit(struct proxy_keys_next *n, const struct gh_conf *c);
void proxy_persist_keys_abort(struct proxy_keys_next *n);
/* Stops the rotation and clears the keys from memory (exit). */
void proxy_persist_wipe(void);

/* stats.c */
/* Metrics of every service and real server of the installed generation:
 * Prometheus text (json 0) or JSON (json 1). Returns a malloc'd string. */
char *proxy_metrics(int json, size_t *len);

#endif
