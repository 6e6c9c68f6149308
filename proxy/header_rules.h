/*
 * A service's header rules (request-header, response-header, rewrite-host,
 * strip-version-headers), compiled once per generation and applied while a
 * head is written from its parsed message. Module-private to proxy/ (and
 * its tests); no I/O, no connection: a head and its rules in, lines out.
 */
#ifndef GH_PROXY_HEADER_RULES_H
#define GH_PROXY_HEADER_RULES_H

#include "../common/buf.h"
#include "../common/conf.h"
#include "http1.h"

struct proxy_hdr_rules;

/* header_rules.c */
/* Compiles cs's rules (already checked by the parser). Returns an object the
 * caller frees with proxy__hdr_rules_free, or NULL with "file:line:col: ..."
 * in err. It borrows nothing from cs. */
struct proxy_hdr_rules *proxy__hdr_rules_new(const char *file, const struct gh_conf_service *cs,
                                             char *err, size_t errlen);
void proxy__hdr_rules_free(struct proxy_hdr_rules *r);
/* Every header line of request m whose kind is in keep (HTTP1_KEEP bits),
 * in order, except the names the rules remove or set; then the rules' own
 * lines. Written where http1_write_fields would write. */
void proxy__hdr_write_req_fields(struct gh_buf *b, const char *head, const struct http1_msg *m,
                                 unsigned keep, const struct proxy_hdr_rules *r);
/* The same for response m, with the version headers stripped and, in a
 * final response (status 200 and up), the rules applied and the internal
 * names of Location, Content-Location and Set-Cookie Domain rewritten.
 * Interim responses get only the stripping. */
void proxy__hdr_write_resp_fields(struct gh_buf *b, const char *head, const struct http1_msg *m,
                                  unsigned keep, const struct proxy_hdr_rules *r);

#endif
