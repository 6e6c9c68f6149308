/*
 * Process-wide set-up of libxml2 and xmlsec1. The OpenSSL backend is linked
 * in (no dynamic crypto loading), and both libraries are told to keep quiet:
 * a hostile response is reported once, by reason, in the security log, not
 * as parser noise on stderr.
 */
#include <libxml/parser.h>
#include <libxml/xmlerror.h>
#include <xmlsec/crypto.h>
#include <xmlsec/errors.h>
#include <xmlsec/xmlsec.h>

#include "../common/common.h"
#include "saml_int.h"

static void quiet_generic(void *ctx, const char *msg, ...)
{
    (void)ctx;
    (void)msg;
}

static void quiet_structured(void *ctx, xmlErrorPtr e)
{
    (void)ctx;
    (void)e;
}

static void xmlsec_errors(const char *file, int line, const char *func, const char *obj,
                          const char *subj, int reason, const char *msg)
{
    (void)obj;
    (void)subj;
    gh_log_debug("xmlsec: %s:%d %s: reason %d: %s", file, line, func, reason, msg ? msg : "");
}

int saml_global_init(void)
{
    xmlInitParser();
    xmlSetGenericErrorFunc(NULL, quiet_generic);
    xmlSetStructuredErrorFunc(NULL, quiet_structured);
    if (xmlSecInit() < 0) {
        gh_log_err("xmlsec: initialisation failed");
        return -1;
    }
    if (xmlSecCheckVersion() != 1) {
        gh_log_err("xmlsec: the library is not the version gatehouse was built with");
        return -1;
    }
    if (xmlSecCryptoAppInit(NULL) < 0 || xmlSecCryptoInit() < 0) {
        gh_log_err("xmlsec: the OpenSSL backend did not initialise");
        return -1;
    }
    xmlSecErrorsSetCallback(xmlsec_errors);
    return 0;
}

void saml_global_fini(void)
{
    xmlSecCryptoShutdown();
    xmlSecCryptoAppShutdown();
    xmlSecShutdown();
    xmlCleanupParser();
}
