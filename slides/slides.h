/*
 * slides — the conference application's meetings: who may join and as what
 * (the seeds' PIN, SSO, waiting-room and transfer rules, join.c), the
 * meeting store (SQLite in WAL mode, or PostgreSQL shared by several
 * appliances: store.c over db.h), join tokens in the shared
 * key-value store (token.c), and the encrypted slide-content store
 * (content.c): every resource compressed with zlib and encrypted with
 * AES-128-GCM under a key of its own, kept at a 128-bit random name, written
 * durably (temp file, fsync, rename, fsync of the folder) before anyone is
 * told it exists, and shredded with its key when the meeting ends.
 *
 * slides depends on common only; the HTTP side is apps/conference.c.
 */
#ifndef GH_SLIDES_SLIDES_H
#define GH_SLIDES_SLIDES_H

#include <stddef.h>
#include <stdint.h>

/* ---- join decisions (join.c) ---- */

enum slides_role { SLIDES_NO_ROLE, SLIDES_HOST, SLIDES_GUEST };
/* "Participant authentication required for": none, Hosts, Guests, both. */
enum slides_auth { SLIDES_AUTH_NONE, SLIDES_AUTH_HOSTS, SLIDES_AUTH_GUESTS, SLIDES_AUTH_BOTH };
/* "Other participants": Allowed if trusted, or Disallow all. */
enum slides_other { SLIDES_OTHER_ALLOWED_IF_TRUSTED, SLIDES_OTHER_DISALLOW_ALL };
/* A web client (Infinity Connect: can do SSO unless it is too old), or a
 * SIP/H.323 device. */
enum slides_client { SLIDES_CLIENT_WEB, SLIDES_CLIENT_DEVICE };

/* ---- secrets at rest (secrets.c) ---- */

#define SLIDES_VERIFIER_MAX 112
#define SLIDES_COST_MIN 10 /* log2 of scrypt's N */
#define SLIDES_COST_MAX 15 /* 32 MiB: what SCRYPT_MAXMEM (secrets.c) lets scrypt use */
#define SLIDES_PIN_COST 14 /* a few digits: make each guess dear */
#define SLIDES_KEY_COST 10 /* 128 random bits: no guessing reaches them */
#define SLIDES_KEY_LEN 16
#define SLIDES_KEK_LEN 32
#define SLIDES_WRAPPED_LEN (1 + 12 + SLIDES_KEY_LEN + 16)

/* A verifier of secret (scrypt, N = 2^log2n, a fresh salt): 0, or -1. */
int slides_secret_hash(const char *secret, unsigned log2n, char out[SLIDES_VERIFIER_MAX]);
/* 1 when secret matches verifier (constant-time compare); 0 otherwise,
 * also for NULL, "" verifiers and malformed ones. */
int slides_secret_check(const char *verifier, const char *secret);
int slides_secret_is_verifier(const char *v);

struct slides_policy {
    char host_pin_v[SLIDES_VERIFIER_MAX];  /* verifier; "" when none */
    char guest_pin_v[SLIDES_VERIFIER_MAX]; /* verifier; "" when none; only with a host PIN */
    enum slides_auth auth;
    enum slides_other other;
};

struct slides_join_req {
    enum slides_client client;
    int sso_capable;   /* web client new enough for SSO-protected meetings */
    int registered;    /* device registered to this deployment */
    const char *pin;   /* entered, or NULL when none was entered */
    int authenticated; /* holds a participant session ... */
    int idp_in_group;  /* ... from an IdP in the meeting's group */
    int transfer;      /* transferred from another meeting by a Host */
    enum slides_role transfer_role;
};

enum slides_outcome {
    SLIDES_JOIN,             /* in, with decision.role */
    SLIDES_NEED_PIN,         /* ask for the PIN first */
    SLIDES_BAD_PIN,
    SLIDES_NEED_SSO,         /* sign in with the meeting's IdP group */
    SLIDES_CLIENT_NO_SSO,    /* the seed's "client does not support SSO" */
    SLIDES_WAITING_ROOM,     /* wait for a Host; admitted as a Guest */
    SLIDES_TRANSFER_REFUSED, /* the participant stays where they are */
};

struct slides_decision {
    enum slides_outcome outcome;
    enum slides_role role;
    int sso_done; /* the role required SSO and the session satisfied it */
    int pin_matched; /* a PIN was checked and was right (whatever came after) */
};

enum slides_outcome slides_join_decide(const struct slides_policy *m,
                                       const struct slides_join_req *q,
                                       struct slides_decision *d);
/* A Host makes a Guest a Host: no authentication needed (the seeds). */
enum slides_role slides_escalate(enum slides_role current);
const char *slides_outcome_message(enum slides_outcome o);
/* The name a participant is shown with: the IdP's when the role went
 * through SSO and the IdP gave one (then it is fixed), else what they typed.
 * Returns 1 when the name is fixed. */
int slides_display_name(const struct slides_decision *d, const char *idp_name,
                        int idp_name_given, const char *typed, char *out, size_t outlen);

/* ---- the meeting store (store.c) ---- */

struct slides_store;

struct slides_meeting {
    int64_t id;
    char alias[65];
    char uri[120];            /* "gh-meet:<alias>.<64 random bits>", from the invitation */
    char conference_key[33];  /* 128 random bits, from the invitation: filled by
                               * slides_meeting_create only; the store keeps key_v */
    char key_v[SLIDES_VERIFIER_MAX]; /* the conference key's verifier */
    struct slides_policy policy;
    char idp_group[128];      /* the identity-provider group SSO uses */
    int64_t epoch;            /* bumped when the meeting ends: tokens die */
    int64_t created;
    int64_t ended;            /* unix seconds it ended; 0 while it takes joins */
    int reception;            /* the Virtual Reception joins it by alias (PIN or SSO
                               * required then, since the invitation's key is not asked) */
};

struct slides_resource {
    char id[33];              /* 128 random bits: the URL and the file name */
    int64_t meeting;
    char name[256];
    int64_t size, stored;     /* plaintext bytes, stored (compressed + encrypted) bytes */
    unsigned char key[16];    /* AES-128 key of this resource alone, unwrapped in memory */
};

struct slides_waiter {
    char id[33];
    int64_t meeting, epoch;
    char name[128];
    int state; /* 0 waiting, 1 admitted, 2 refused, 3 the meeting ended */
};

/* PINs as typed by a Host or an administrator: in memory only, on their
 * way to verifiers. At creation NULL or "" is no PIN; at an update NULL
 * keeps the room's PIN and "" removes it. */
struct slides_pins {
    const char *host, *guest;
};

/* Where a PostgreSQL meeting store is (meetings-store postgresql): a libpq
 * connection string, and the file holding the password (NULL: the conninfo
 * or ~/.pgpass says). */
struct slides_pg {
    const char *conninfo;
    const char *password_file;
    long long timeout_ms; /* a statement's answer and a connection; 0: 5 s */
    int lazy; /* a database that does not answer at the open is not an error: the
               * store connects (and makes its tables) at its first use that can */
};

/* With pg NULL, opens (creating) DIR/meetings.db and DIR/content/, and
 * sweeps the content folder: temp files of interrupted uploads and files no
 * row names go. With pg, the rooms, keys and content are in that
 * PostgreSQL database (its tables made when missing, under an advisory
 * lock, so appliances starting together do not race) and DIR holds only
 * the key-encryption key. The key-encryption key is kek_file, or
 * DIR/slides.kek (made, 0600, when missing); a file group or others may
 * read is refused. A SQLite database from before verifiers and wrapped
 * keys is migrated here, in one transaction, and its WAL truncated. */
struct slides_store *slides_store_open(const char *dir, const char *kek_file,
                                       const struct slides_pg *pg, char *err, size_t errlen);
/* 1 when this thread's last meeting or resource lookup failed because the
 * store did not answer (PostgreSQL away), not because there was no such
 * row: the caller says 503, not 404. slides_store_clear_unavailable at the
 * start of a request. */
int slides_store_unavailable(void);
void slides_store_clear_unavailable(void);
/* What can be checked of a PostgreSQL store without it (gatehouse -t, and
 * before connecting): the conninfo parses (libpq's own parser, URIs too)
 * and holds no password, the password file reads and is 0600. 0, or -1
 * with err. */
int slides_pg_check(const struct slides_pg *pg, char *err, size_t errlen);
/* 1 when the store is PostgreSQL. */
int slides_store_shared(const struct slides_store *st);
/* The configuration's meetings-store as slides_store_open takes it: pg
 * filled (pointing into c) for postgresql, NULL for sqlite. */
struct gh_conf;
const struct slides_pg *slides_pg_of(const struct gh_conf *c, struct slides_pg *pg);
/* Each room's alias and identity-provider group ("" for none) from
 * DIR/meetings.db, opened read-only, or from the PostgreSQL store: nothing
 * is made or migrated (gatehouse -t, and the check at start). 0, also
 * without a database; -1 with err. */
int slides_rooms_scan(const char *dir, const struct slides_pg *pg,
                      void (*fn)(const char *alias, const char *group, void *arg), void *arg,
                      char *err, size_t errlen);
/* The operator's key-encryption key file as slides_store_open would read
 * it (gatehouse -t): 0, or -1 with err. */
int slides_kek_check(const char *path, char *err, size_t errlen);
void slides_store_close(struct slides_store *st);
/* A consistent copy of the meeting database for a backup: rooms, PIN and
 * key verifiers, slide keys wrapped under the key-encryption key, which is
 * not in it. malloc'd (*len bytes), or NULL with err. */
unsigned char *slides_store_snapshot(struct slides_store *st, size_t *len, char *err,
                                     size_t errlen);
/* Replaces the meeting database with a snapshot in one step, or with
 * dry_run only checks that it would: an SQLite meeting database of this
 * version whose every slide key unwraps under this store's key-encryption
 * key. Content files the restored database does not name are removed;
 * content the snapshot names but this appliance lacks stays missing (the
 * bundle carries no slides). 0, or -1 with err and nothing changed. */
int slides_store_restore(struct slides_store *st, const unsigned char *data, size_t len,
                         int dry_run, char *err, size_t errlen);
/* Fills m->uri, conference_key (the only time it is known), key_v, the PIN
 * verifiers, id and created. -1 with err (validation). */
int slides_meeting_create(struct slides_store *st, struct slides_meeting *m,
                          const struct slides_pins *pins, char *err, size_t errlen);
/* Sets the PINs (pins; m->policy holds the room's current verifiers, as
 * read from the store), authentication, Other participants and
 * m->idp_group of room m->id, checked as at creation; the alias, URI and
 * key of the invitation stay. revoke_tokens bumps the epoch: everyone in
 * the meeting must join again under the new rules. -1 with err. */
int slides_meeting_update(struct slides_store *st, struct slides_meeting *m,
                          const struct slides_pins *pins, int revoke_tokens, char *err,
                          size_t errlen);
/* 1 when key is the room's conference key. */
int slides_meeting_key_ok(const struct slides_meeting *m, const char *key);
int slides_meeting_by_uri(struct slides_store *st, const char *uri, struct slides_meeting *m);
int slides_meeting_by_alias(struct slides_store *st, const char *alias,
                            struct slides_meeting *m);
int slides_meeting_by_id(struct slides_store *st, int64_t id, struct slides_meeting *m);
int slides_meeting_list(struct slides_store *st,
                        void (*fn)(const struct slides_meeting *m, void *arg), void *arg);
/* What ending a meeting did, for the one who ended it. */
struct slides_end_report {
    int resources;  /* keys and files shredded */
    int waiting;    /* participants still waiting, told it ended */
    int64_t epoch;  /* the new epoch: tokens of any before it are dead */
};
/* Ends the meeting: resource keys and rows deleted (secure_delete, WAL
 * truncated), files unlinked, epoch bumped (every token revoked), ended
 * set: joins, tokens and waiters then get "meeting ended" until it is
 * reopened. With delete_room the room itself goes too. rep may be NULL. */
int slides_meeting_end(struct slides_store *st, int64_t id, int delete_room,
                       struct slides_end_report *rep);
/* An ended room takes joins again (old tokens stay dead). 0, or -1 when
 * the room had not ended. */
int slides_meeting_reopen(struct slides_store *st, int64_t id);
/* Each resource with its key unwrapped (wiped after fn returns); a key that
 * does not unwrap (another key-encryption key) is logged and its resource
 * left out. */
int slides_resource_list(struct slides_store *st, int64_t meeting,
                         void (*fn)(const struct slides_resource *r, void *arg), void *arg);
/* Without the key. */
int slides_resource_get(struct slides_store *st, const char *id, struct slides_resource *r);
int slides_waiting_add(struct slides_store *st, const struct slides_meeting *m, const char *name,
                       char id[33]);
int slides_waiting_list(struct slides_store *st, int64_t meeting,
                        void (*fn)(const struct slides_waiter *w, void *arg), void *arg);
int slides_waiting_get(struct slides_store *st, const char *id, struct slides_waiter *w);
/* A Host admits (1) or refuses (2) a waiting participant: 0, or -1 when no
 * such participant waits in that meeting. */
int slides_waiting_set(struct slides_store *st, int64_t meeting, const char *id, int state);
int slides_waiting_take(struct slides_store *st, const char *id);

/* PIN back-off (token.c): the generation that is part of every back-off
 * key of a meeting (in the shared store), and the reset that moves it on
 * (a Host's or an operator's "let them try again"). */
int64_t slides_pin_generation(int64_t meeting);
void slides_pin_backoff_reset(int64_t meeting);

/* ---- participants (store.c): who holds a token, for the Hosts' list ---- */

struct slides_participant {
    char id[33];       /* from the token (slides_token_participant): no token kept */
    int64_t meeting, epoch;
    enum slides_role role;
    char name[128];
    int name_fixed;    /* the IdP gave the name */
    int64_t joined, expires; /* unix seconds; the token's expiry */
};
/* Recorded when a token is issued; replaced under the same id. 0, or -1. */
int slides_participant_add(struct slides_store *st, const struct slides_participant *p);
/* One participant by id (not expired): 0, or -1. */
int slides_participant_get(struct slides_store *st, const char *id, struct slides_participant *p);
int slides_participant_set_role(struct slides_store *st, const char *id, enum slides_role role);
/* When the token is revoked (leave, escalation). */
void slides_participant_remove(struct slides_store *st, const char *id);
/* Those in meeting m now: its epoch, tokens not expired; in join order. */
int slides_participant_list(struct slides_store *st, const struct slides_meeting *m,
                            void (*fn)(const struct slides_participant *p, void *arg), void *arg);

/* ---- content (content.c) ---- */

/* Stored form: "GHS1", 12-byte IV, AES-128-GCM(zlib(plaintext)), 16-byte tag. */
#define SLIDES_MAGIC "GHS1"
#define SLIDES_HEADER 16
#define SLIDES_TAG 16

struct slides_upload;
struct slides_upload *slides_upload_begin(struct slides_store *st, int64_t meeting,
                                          const char *name, char *err, size_t errlen);
/* -1 with err (a full disk says so). */
int slides_upload_write(struct slides_upload *up, const void *data, size_t len, char *err,
                        size_t errlen);
/* Durable before it returns 0: file fsynced, renamed, folder fsynced, row
 * committed. id receives the resource id. The upload is freed either way. */
int slides_upload_finish(struct slides_upload *up, char id[33], char *err, size_t errlen);
void slides_upload_abort(struct slides_upload *up);
int64_t slides_upload_size(const struct slides_upload *up);
/* A stored resource to read (its stored form, as slides_decrypt takes it):
 * NULL when there is none. size receives its length. */
struct slides_reader;
struct slides_reader *slides_content_reader(struct slides_store *st, const char *id,
                                            int64_t *size);
/* Up to len bytes at off: the count (0 past the end), or -1 (the store
 * failed, or the resource went: a meeting ended under a download). */
long slides_reader_pread(struct slides_reader *rd, int64_t off, void *buf, size_t len);
void slides_reader_close(struct slides_reader *rd);
/* A Range header (RFC 9110 14.1.2) for a resource of size bytes: one
 * "bytes=a-b", "bytes=a-" or "bytes=-n". 0 with the span; 1 to send the
 * whole (no header, or a form we do not serve partially, such as several
 * ranges); -1 unsatisfiable (416). */
int slides_parse_range(const char *h, int64_t size, int64_t *off, int64_t *len);
/* Decrypts and inflates a stored resource with its key (the client side;
 * also what tests and gatehouse join use). malloc'd plaintext of at most
 * max_out bytes (more: NULL, so a deflate bomb stops there), or NULL. Every
 * intermediate copy is wiped. */
unsigned char *slides_decrypt(const unsigned char *stored, size_t len, const unsigned char key[16],
                              size_t max_out, size_t *outlen);

/* ---- join tokens (token.c) ---- */

struct slides_token {
    int64_t meeting, epoch;
    enum slides_role role;
    char name[128];
    int name_fixed;
    int64_t expires; /* unix seconds */
};
#define SLIDES_TOKEN_HEX 32
/* A fresh 128-bit token in the shared store; out receives 32 hex digits. */
int slides_token_issue(const struct slides_token *t, int64_t ttl_ms,
                       char out[SLIDES_TOKEN_HEX + 1]);
/* 0 when the token exists, has not expired, and its meeting still has the
 * epoch it was issued in; m receives the meeting. SLIDES_ENDED when its
 * meeting has ended since (m filled), -1 otherwise. */
#define SLIDES_ENDED (-2)
int slides_token_check(struct slides_store *st, const char *tok, struct slides_token *t,
                       struct slides_meeting *m);
/* 0 revoked (or unknown), -1 the store did not answer: it may still work. */
int slides_token_revoke(const char *tok);
/* The participant id of a token: 32 hex digits of a keyed digest, so the
 * list shown to Hosts names each participant without holding their token. */
void slides_token_participant(const char *tok, char id[33]);
/* An epoch of a meeting is over (state GH_EPOCH_ENDED or GH_EPOCH_GONE of
 * common/join_token.h): marked where an edge service (validate-join-token)
 * looks before it forwards a token. A failure is logged; the conference
 * service's own check stays the one that decides. */
void slides_token_epoch_mark(int64_t meeting, int64_t epoch, int state);
/* The seeds: a Host makes a Guest a Host, no authentication needed. From
 * then on the participant's token (of that id) checks as a Host's. */
int slides_token_promote(const char *participant, int64_t ttl_ms);

#endif
