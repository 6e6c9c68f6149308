/* Private to saml/: the records saml keeps in the shared store (store/store.h). */
#ifndef GH_SAML_STATE_H
#define GH_SAML_STATE_H

#include <stdint.h>

#include "saml.h"

/* An outstanding AuthnRequest. */
struct saml__request {
    char uuid[40];   /* the IdP it went to */
    char relay[520]; /* where to send the participant afterwards */
    unsigned char binding[32]; /* SHA-256 of the browser's binding cookie */
};

/* state.c */
/* Keys are the request ID ("_" + 40 hex digits, as authn.c makes them). */
int saml__request_put(const char *id, const struct saml__request *rq);
/* Takes the request (once). 0; -1 unknown; -2 already used; -3 the store
 * did not answer. */
int saml__request_take(const char *id, struct saml__request *rq);
/* The same without taking it: for the checks that must come first. */
int saml__request_peek(const char *id, struct saml__request *rq);
/* SHA-256 of a browser-binding value. */
void saml__binding_digest(const char *binding, unsigned char out[32]);
/* 1 when this assertion ID of this IdP was consumed already, 0 not, -3 the
 * store did not answer. */
int saml__replay_seen(const char *uuid, const char *assertion_id);
/* 1 first sighting of this assertion ID for this IdP (kept until expires,
 * unix seconds; durable: replicas confirmed it), 0 seen before, -3 the store
 * did not answer or could not make it durable. */
int saml__replay_mark(const char *uuid, const char *assertion_id, int64_t expires);

/* session_cache.c: sessions verified lately (key: the store key). */
void saml__cache_put(const unsigned char key[33], const struct saml_session *s);
/* 0 and s filled when key was verified within the window. */
int saml__cache_get(const unsigned char key[33], struct saml_session *s);
void saml__cache_drop(const unsigned char key[33]);

#endif
