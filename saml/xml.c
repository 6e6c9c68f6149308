/*
 * The safe reading of untrusted XML. libxml2 parses with no DTD loading, no
 * entity substitution and no network; a DOCTYPE is refused outright (it
 * stops the parser in the SAX callback, before any declaration inside it is
 * read), which closes billion-laughs and external-entity attacks whatever
 * the document's encoding. IDs are registered by us, and a duplicate is
 * refused, so a signature reference can only ever resolve to one element.
 */
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/valid.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/common.h"
#include "saml_int.h"

#define MAX_DEPTH 48

struct parse_state {
    int doctype;
};

static void on_subset(void *ctx, const xmlChar *name, const xmlChar *ext, const xmlChar *sys)
{
    xmlParserCtxtPtr p = ctx;
    struct parse_state *st = p->_private;

    (void)name;
    (void)ext;
    (void)sys;
    st->doctype = 1;
    xmlStopParser(p);
}

static void on_entity_decl(void *ctx, const xmlChar *name, int type, const xmlChar *pub,
                           const xmlChar *sys, xmlChar *content)
{
    xmlParserCtxtPtr p = ctx;
    struct parse_state *st = p->_private;

    (void)name;
    (void)type;
    (void)pub;
    (void)sys;
    (void)content;
    st->doctype = 1;
    xmlStopParser(p);
}

/* Quiet: a hostile document is reported by reason, not by libxml2 on stderr. */
static void quiet(void *ctx, const char *msg, ...)
{
    (void)ctx;
    (void)msg;
}

xmlDocPtr saml__parse(const char *buf, size_t len, enum saml_reason *why)
{
    xmlParserCtxtPtr p;
    struct parse_state st = {0};
    xmlDocPtr doc;
    int ok;

    if (len > 16 * 1024 * 1024) {
        *why = SAML_TOO_LARGE;
        return NULL;
    }
    p = xmlCreateMemoryParserCtxt(buf, (int)len);
    if (p == NULL) {
        *why = SAML_XML_MALFORMED;
        return NULL;
    }
    p->_private = &st;
    p->sax->internalSubset = on_subset;
    p->sax->externalSubset = on_subset;
    p->sax->entityDecl = on_entity_decl;
    p->sax->error = quiet;
    p->sax->warning = quiet;
    p->sax->serror = NULL;
    p->vctxt.error = quiet;
    p->vctxt.warning = quiet;
    xmlCtxtUseOptions(p, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    p->replaceEntities = 0;
    p->loadsubset = 0;
    p->validate = 0;
    xmlParseDocument(p);
    ok = p->wellFormed && !st.doctype;
    doc = p->myDoc;
    p->myDoc = NULL;
    xmlFreeParserCtxt(p);
    if (!ok || doc == NULL || xmlDocGetRootElement(doc) == NULL) {
        if (doc != NULL)
            xmlFreeDoc(doc);
        *why = st.doctype ? SAML_XML_DOCTYPE : SAML_XML_MALFORMED;
        return NULL;
    }
    if (doc->intSubset != NULL || doc->extSubset != NULL) {
        xmlFreeDoc(doc);
        *why = SAML_XML_DOCTYPE;
        return NULL;
    }
    *why = SAML_OK;
    return doc;
}

int saml__is(xmlNodePtr n, const char *ns, const char *name)
{
    return n != NULL && n->type == XML_ELEMENT_NODE && n->ns != NULL && n->ns->href != NULL &&
           strcmp((const char *)n->ns->href, ns) == 0 && strcmp((const char *)n->name, name) == 0;
}

static enum saml_reason register_ids(xmlDocPtr doc, xmlNodePtr n)
{
    xmlAttrPtr a;

    for (a = n->properties; a != NULL; a = a->next) {
        int is_id = 0;
        xmlChar *v;
        if (a->ns == NULL && (strcmp((const char *)a->name, "ID") == 0 ||
                              strcmp((const char *)a->name, "Id") == 0 ||
                              strcmp((const char *)a->name, "id") == 0))
            is_id = 1;
        else if (a->ns != NULL && a->ns->href != NULL &&
                 strcmp((const char *)a->ns->href, "http://www.w3.org/XML/1998/namespace") == 0 &&
                 strcmp((const char *)a->name, "id") == 0)
            is_id = 1;
        if (!is_id)
            continue;
        v = xmlNodeListGetString(doc, a->children, 1);
        if (v == NULL || v[0] == '\0') {
            xmlFree(v);
            return SAML_DUPLICATE_ID; /* an empty ID can only be there to confuse */
        }
        {
            xmlAttrPtr known = xmlGetID(doc, v);
            if (known != NULL && known != a) {
                xmlFree(v);
                return SAML_DUPLICATE_ID;
            }
            if (known == NULL && xmlAddID(NULL, doc, v, a) == NULL) {
                xmlFree(v);
                return SAML_DUPLICATE_ID;
            }
        }
        xmlFree(v);
    }
    return SAML_OK;
}

static enum saml_reason walk(xmlDocPtr doc, xmlNodePtr n, int depth, const char *ns,
                             const char *name, const char *ns2, const char *name2, int *count)
{
    enum saml_reason r;

    if (depth > MAX_DEPTH)
        return SAML_XML_MALFORMED;
    for (; n != NULL; n = n->next) {
        switch (n->type) {
        case XML_COMMENT_NODE:
        case XML_PI_NODE:
            return SAML_XML_COMMENT;
        case XML_ENTITY_REF_NODE:
        case XML_ENTITY_NODE:
        case XML_ENTITY_DECL:
        case XML_DTD_NODE:
        case XML_XINCLUDE_START:
        case XML_XINCLUDE_END:
            return SAML_XML_DOCTYPE;
        case XML_ELEMENT_NODE:
            if ((r = register_ids(doc, n)) != SAML_OK)
                return r;
            if (count != NULL && (saml__is(n, ns, name) || (ns2 && saml__is(n, ns2, name2))))
                (*count)++;
            if ((r = walk(doc, n->children, depth + 1, ns, name, ns2, name2, count)) != SAML_OK)
                return r;
            break;
        default:
            break;
        }
    }
    return SAML_OK;
}

enum saml_reason saml__walk(xmlDocPtr doc, xmlNodePtr top, const char *ns, const char *name,
                            const char *ns2, const char *name2, int *count)
{
    xmlNodePtr next = top->next;
    enum saml_reason r;

    /* Walk top and its subtree only, not its following siblings. */
    top->next = NULL;
    r = walk(doc, top, 0, ns, name, ns2, name2, count);
    top->next = next;
    return r;
}

xmlNodePtr saml__child(xmlNodePtr parent, const char *ns, const char *name, int *dups)
{
    xmlNodePtr c, found = NULL;

    if (dups != NULL)
        *dups = 0;
    for (c = parent->children; c != NULL; c = c->next)
        if (saml__is(c, ns, name)) {
            if (found == NULL)
                found = c;
            else if (dups != NULL)
                (*dups)++;
        }
    return found;
}

int saml__text(xmlNodePtr n, char *out, size_t outlen)
{
    xmlNodePtr c;
    size_t len = 0;
    const char *s, *e;
    char *tmp;

    tmp = gh_calloc(1, outlen + 1);
    for (c = n->children; c != NULL; c = c->next) {
        size_t l;
        if (c->type != XML_TEXT_NODE && c->type != XML_CDATA_SECTION_NODE) {
            free(tmp);
            return -1; /* elements, comments: not a plain value */
        }
        l = strlen((const char *)c->content);
        if (len + l > outlen) {
            free(tmp);
            return -1;
        }
        memcpy(tmp + len, c->content, l);
        len += l;
    }
    tmp[len] = '\0';
    s = tmp;
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    e = tmp + len;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
        e--;
    if ((size_t)(e - s) >= outlen) {
        free(tmp);
        return -1;
    }
    memcpy(out, s, (size_t)(e - s));
    out[e - s] = '\0';
    free(tmp);
    return 0;
}

int saml__attr(xmlNodePtr n, const char *name, char *out, size_t outlen)
{
    xmlChar *v = xmlGetNoNsProp(n, (const xmlChar *)name);
    int rc;

    if (v == NULL)
        return -1;
    rc = gh_strlcpy(out, (const char *)v, outlen);
    xmlFree(v);
    return rc;
}

static int digits(const char *s, int n, int *out)
{
    int i, v = 0;

    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int saml__time(const char *s, int64_t *out)
{
    struct tm tm;
    int y, mo, d, h, mi, se;
    const char *p;

    /* SAML 2.0 core 1.3.3: xs:dateTime in UTC, no time zone other than Z. */
    if (strlen(s) < 20 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) ||
        s[7] != '-' || digits(s + 8, 2, &d) || s[10] != 'T' || digits(s + 11, 2, &h) ||
        s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' || digits(s + 17, 2, &se))
        return -1;
    p = s + 19;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return -1;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (strcmp(p, "Z") != 0)
        return -1;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return -1;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    *out = (int64_t)timegm(&tm);
    return 0;
}

void saml__time_fmt(int64_t t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

long saml__b64dec(const char *in, size_t inlen, unsigned char *out, size_t outcap)
{
    size_t i, n = 0, chars = 0;
    unsigned acc = 0;
    int bits = 0, pad = 0;

    for (i = 0; i < inlen; i++) {
        unsigned char c = (unsigned char)in[i];
        int v;
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            continue;
        if (c == '=') {
            pad++;
            continue;
        }
        if (pad || (v = b64val(c)) < 0)
            return -1; /* data after padding, or a byte outside the alphabet */
        acc = (acc << 6) | (unsigned)v;
        chars++;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n >= outcap)
                return -1;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    /* Padding only where it completes the last group of four. */
    if (pad > 2 || bits >= 6 || chars % 4 == 1 || (pad && (chars + (size_t)pad) % 4 != 0))
        return -1;
    return (long)n;
}

char *saml__b64enc(const unsigned char *in, size_t len)
{
    char *out = gh_calloc(1, 4 * ((len + 2) / 3) + 1);

    EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    return out;
}
