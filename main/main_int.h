/* Private to main/. */
#ifndef GH_MAIN_MAIN_INT_H
#define GH_MAIN_MAIN_INT_H

#include <stddef.h>
#include <stdio.h>

/* help.c */
/* -h or --help anywhere in argv[1..]. */
int main_help_asked(int argc, char **argv);
/* Where a usage text goes (stdout when asked for) and the exit status (0
 * when asked for, 2 after bad arguments). */
FILE *main_usage_out(int argc, char **argv);
int main_usage_rc(int argc, char **argv);

/* default_conf.c */
/* The embedded default topology, as config text. */
extern const char main_default_conf[];
/* The SANs of the default server certificate. */
extern const char main_default_sans[];

/* signals.c */
/* Blocks the signals main handles, before any thread starts, so they are
 * delivered only to main's sigwait loop. */
void main_signals_block(void);
/* Waits for the next handled signal and returns it. */
int main_signals_wait(void);

/* candidate.c: the one configuration pipeline (see its top comment). */
struct gh_conf;
enum main_cand_mode {
    MAIN_CAND_CHECK, /* gatehouse -t: built, checked, thrown away */
    MAIN_CAND_RUN,   /* a start or reload: the listeners opened too */
};
struct main_cand {
    struct gh_conf *c;       /* the model (the generation's, once there is one) */
    struct apps_next *apps;  /* the SAML service provider and settings */
    struct proxy_keys_next *keys; /* the persistence keys (run mode) */
    struct proxy_gen *g;     /* the proxy generation */
    char version[17];        /* of the text the model came from */
};
/* Takes c (parsed from text); 0 with every module's next state in k, or -1
 * with err, c freed and nothing that runs changed. */
int main_cand_build(struct gh_conf *c, const char *text, size_t len, enum main_cand_mode mode,
                    struct main_cand *k, char *err, size_t errlen);
/* Every module swaps to its prepared state (also(c) first, when set); no
 * step can fail. */
void main_cand_commit(struct main_cand *k, void (*also)(const struct gh_conf *c));
void main_cand_abort(struct main_cand *k);

/* saml_cmd.c */
int main_saml_cmd(int argc, char **argv,
                  struct gh_conf *(*load)(const char *path, char *err, size_t errlen));

/* join_cmd.c */
int main_join_cmd(int argc, char **argv);

/* meeting_cmd.c */
int main_meeting_cmd(int argc, char **argv,
                     struct gh_conf *(*load)(const char *path, char *err, size_t errlen));

/* store_setup.c */
struct store_conf;
struct store;
/* The store's settings from c (the password read from its file). */
int main_store_conf(const struct gh_conf *c, struct store_conf *k, char *err, size_t errlen);
/* Makes the process's store (store_use) and says in the log whether it
 * answers; NULL with err when the settings are unusable. */
struct store *main_store_open(const struct gh_conf *c, char *err, size_t errlen);
/* The same without the first question (a command that only needs it for
 * what it changes, such as gatehouse meeting's epoch marks). */
struct store *main_store_attach(const struct gh_conf *c, char *err, size_t errlen);
/* -t (running 0): the settings must be usable. A reload (running 1): a
 * changed store is logged as waiting for a restart; never refuses. */
int main_store_check(const struct gh_conf *c, int running, char *err, size_t errlen);

/* cluster_conf.c: the configuration shared by a cluster's appliances (see
 * its top comment). */
struct gh_sbuf;
struct main_cluster_hooks {
    /* Makes text this appliance's running configuration and its file, as a
     * reload does: 0, or -1 with err and nothing changed. */
    int (*apply)(const char *text, size_t len, char *err, size_t errlen);
};
/* A file's text as this appliance's own statements and the shared rest. */
int main_cluster_split(const char *text, size_t len, struct gh_sbuf *local,
                       struct gh_sbuf *shared, char *err, size_t errlen);
/* -t and every candidate: share-config needs store redis; a valid name. */
int main_cluster_check(const struct gh_conf *c, char *err, size_t errlen);
/* At start, before c goes to the first generation: what the cluster
 * thread needs of it. */
void main_cluster_prepare(const struct gh_conf *c);
/* With share-config on: the thread that publishes and follows (text: the
 * configuration that started). 0 also when nothing is shared. */
int main_cluster_start(const char *conf_path, const char *text, size_t len,
                       const struct main_cluster_hooks *hooks);
/* A change made here is running (the admin application, SIGHUP): its
 * shared part goes to the cluster unless it is the cluster's already. */
void main_cluster_changed(const char *text, size_t len);
void main_cluster_stop(void);
/* The appliances and their running versions, as JSON (malloc'd). */
char *main_cluster_json(size_t *len);

/* admin_cmd.c */
int main_admin_cmd(int argc, char **argv,
                   struct gh_conf *(*load)(const char *path, char *err, size_t errlen));

#endif
