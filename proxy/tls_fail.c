/*
 * Failed client TLS handshakes: why, counted per service, and a security-log
 * line per failure, rate-limited per worker.
 *
 * The reason comes from the OpenSSL error queue as the failed
 * SSL_do_handshake left it. These are the codes OpenSSL 3.0 puts there on
 * the server side (each tried with s_client, curl or a raw socket):
 *
 *   no suite in common (TLS 1.2, a non-AEAD suite)   SSL_R_NO_SHARED_CIPHER
 *   a version we do not enable (TLS 1.1 client)      SSL_R_UNSUPPORTED_PROTOCOL
 *   ALPN offered without http/1.1 or http/1.0        SSL_R_NO_APPLICATION_PROTOCOL
 *   "GET / HTTP/1.1" sent to the TLS port            SSL_R_HTTP_REQUEST
 *   "CONNECT host:443 ..." sent to it                SSL_R_HTTPS_PROXY_REQUEST
 *   TCP connect, then close                          SSL_R_UNEXPECTED_EOF_WHILE_READING
 *   TCP connect, then reset                          SSL_ERROR_SYSCALL, ECONNRESET
 *
 * The rest of each group (version too low, the client's protocol_version
 * alert, a missing or refused client certificate) follows from OpenSSL's
 * sources rather than a run: gatehouse asks clients for no certificate yet,
 * so client-certificate is ready for when it does. Anything else, such as
 * a client refusing our certificate (its unknown_ca alert), is "other"; the
 * debug log names OpenSSL's own reason for those.
 *
 * Counting is never limited. Lines are: at most PROXY_TLS_LOG_PER_SEC per
 * worker per second (a scan or a misconfigured client fleet would otherwise
 * write a line per connection); failures past that only add to a count,
 * which the next line carries as "suppressed":N, or, when the worker sees
 * no further failure, a line written at the next tick for the last
 * suppressed failure (N then counts the others). So lines plus the sum of
 * the suppressed fields equal the failures counted.
 */
#include "proxy_int.h"

#include <errno.h>
#include <string.h>

#include <openssl/err.h>

static const char *const words[PROXY_TLS_FAIL_MAX] = {
#define PROXY_TLS_FAIL_WORD(e, word) word,
    PROXY_TLS_FAILS(PROXY_TLS_FAIL_WORD)
#undef PROXY_TLS_FAIL_WORD
};

const char *proxy__tls_fail_name(enum proxy_tls_fail why)
{
    return (unsigned)why < PROXY_TLS_FAIL_MAX ? words[why] : "other";
}

/* One queued error's reason, or PROXY_TLS_FAIL_MAX when it names none of
 * ours (the caller then looks at the next one). */
static enum proxy_tls_fail from_code(unsigned long e)
{
    if (ERR_GET_LIB(e) != ERR_LIB_SSL)
        return PROXY_TLS_FAIL_MAX;
    switch (ERR_GET_REASON(e)) {
    case SSL_R_NO_SHARED_CIPHER:
        return PROXY_TLS_FAIL_NO_SHARED_CIPHER;
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_VERSION_TOO_HIGH:
    case SSL_R_NO_PROTOCOLS_AVAILABLE:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
        return PROXY_TLS_FAIL_PROTOCOL_VERSION;
    case SSL_R_NO_APPLICATION_PROTOCOL:
        return PROXY_TLS_FAIL_NO_APP_PROTOCOL;
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
        return PROXY_TLS_FAIL_HTTP_ON_TLS;
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
        return PROXY_TLS_FAIL_CLIENT_CERT;
    case SSL_R_UNEXPECTED_EOF_WHILE_READING:
        return PROXY_TLS_FAIL_CLOSED;
    default:
        return PROXY_TLS_FAIL_MAX;
    }
}

/* Reads and empties the error queue; the first entry with a reason of ours
 * decides. first gets the first entry, for the debug log. */
static enum proxy_tls_fail classify(int ssl_error, int err_no, unsigned long *first)
{
    enum proxy_tls_fail why = PROXY_TLS_FAIL_MAX;
    unsigned long e;

    *first = 0;
    while ((e = ERR_get_error()) != 0) {
        if (*first == 0)
            *first = e;
        if (why == PROXY_TLS_FAIL_MAX)
            why = from_code(e);
    }
    if (why != PROXY_TLS_FAIL_MAX)
        return why;
    /* Nothing in the queue: a close_notify, or the socket itself. */
    if (ssl_error == SSL_ERROR_ZERO_RETURN)
        return PROXY_TLS_FAIL_CLOSED;
    if (ssl_error == SSL_ERROR_SYSCALL && *first == 0 &&
        (err_no == 0 || err_no == ECONNRESET || err_no == EPIPE))
        return PROXY_TLS_FAIL_CLOSED;
    return PROXY_TLS_FAIL_OTHER;
}

/* Writes a line for the failure now, or counts it as suppressed. */
static void note(struct proxy_conn *c, enum proxy_tls_fail why)
{
    struct proxy_tls_log *t = &c->w->tls_log;
    uint64_t sec = gh_now_ms() / 1000;
    const char *sni = SSL_get_servername(c->cli.ssl, TLSEXT_NAMETYPE_host_name);

    if (sni == NULL)
        sni = c->sni;
    if (sec != t->sec) {
        t->sec = sec;
        t->lines = 0;
    }
    if (t->lines < PROXY_TLS_LOG_PER_SEC) {
        t->lines++;
        proxy__log_security_tls(c->svc->conf->name, c->peer, sni, words[why], t->suppressed);
        t->suppressed = 0;
        return;
    }
    t->suppressed++;
    t->last_why = why;
    gh_strlcpy(t->last_service, c->svc->conf->name, sizeof(t->last_service));
    gh_strlcpy(t->last_client, c->peer, sizeof(t->last_client));
    gh_strlcpy(t->last_sni, sni, sizeof(t->last_sni));
}

static void failed(struct proxy_conn *c, enum proxy_tls_fail why)
{
    atomic_fetch_add(&c->svc->st->tls_failed[why], 1);
    note(c, why);
}

void proxy__tls_failed(struct proxy_conn *c, int ssl_error)
{
    int err_no = errno;
    unsigned long first;
    enum proxy_tls_fail why = classify(ssl_error, err_no, &first);
    char detail[256] = "";

    if (first != 0)
        ERR_error_string_n(first, detail, sizeof(detail));
    gh_log_debug("conn %s: client TLS handshake failed: %s (SSL_get_error %d, %s)", c->peer,
                 words[why], ssl_error, first != 0 ? detail : strerror(err_no));
    failed(c, why);
}

void proxy__tls_timed_out(struct proxy_conn *c)
{
    ERR_clear_error();
    gh_log_debug("conn %s: client TLS handshake timed out", c->peer);
    failed(c, PROXY_TLS_FAIL_TIMEOUT);
}

void proxy__tls_log_tick(struct proxy_worker *w, uint64_t now)
{
    struct proxy_tls_log *t = &w->tls_log;

    if (t->suppressed == 0 || now / 1000 == t->sec)
        return;
    /* The last suppressed failure gets the line; N counts the others. */
    t->sec = now / 1000;
    t->lines = 1;
    proxy__log_security_tls(t->last_service, t->last_client, t->last_sni, words[t->last_why],
                            t->suppressed - 1);
    t->suppressed = 0;
}
