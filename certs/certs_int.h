/* Private to certs/. */
#ifndef GH_CERTS_CERTS_INT_H
#define GH_CERTS_CERTS_INT_H

#include "certs.h"

/* tls_ctx.c */
/* The leaf certificate of a source (caller frees), or NULL with err set. */
X509 *certs__read_leaf(const struct certs_source *src, char *err, size_t errlen);

#endif
