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

/* saml_cmd.c */
struct gh_conf;
int main_saml_cmd(int argc, char **argv,
                  struct gh_conf *(*load)(const char *path, char *err, size_t errlen));

/* join_cmd.c */
int main_join_cmd(int argc, char **argv);

/* meeting_cmd.c */
int main_meeting_cmd(int argc, char **argv,
                     struct gh_conf *(*load)(const char *path, char *err, size_t errlen));

/* admin_cmd.c */
int main_admin_cmd(int argc, char **argv,
                   struct gh_conf *(*load)(const char *path, char *err, size_t errlen));

#endif
