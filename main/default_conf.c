/*
 * The embedded default topology: what `gatehouse` runs with no arguments.
 * The public service on 127.0.0.1:8443 re-encrypts to two conference
 * services on 127.0.0.1:4443 and :4444 running the conference application
 * (so balancing and health are visible; with no identity provider declared
 * its SAML paths answer 404); the management service listens on 127.0.0.1:9443. Certificates
 * are generated into the state folder on first start.
 */
#include "main_int.h"

const char main_default_sans[] = "DNS:localhost,IP:127.0.0.1";

const char main_default_conf[] =
    "# gatehouse embedded default topology (loopback only)\n"
    "state-dir gatehouse-state\n"
    "\n"
    "certificate default {\n"
    "    cert gatehouse-state/server.pem\n"
    "    key gatehouse-state/server.key\n"
    "}\n"
    "ca internal {\n"
    "    file gatehouse-state/ca.pem\n"
    "}\n"
    "\n"
    "service public {\n"
    "    listen 127.0.0.1:8443\n"
    "    certificate default\n"
    "    allowed-hosts localhost 127.0.0.1\n"
    "    allowed-dirs /*\n"
    "    reencrypt verify internal\n"
    "    check get /healthcheck.html interval 2s rise 2 fall 3 start up\n"
    "    server conference-a 127.0.0.1:4443\n"
    "    server conference-b 127.0.0.1:4444\n"
    "}\n"
    "service conference-a {\n"
    "    listen 127.0.0.1:4443\n"
    "    certificate default\n"
    "    allowed-hosts localhost 127.0.0.1\n"
    "    allowed-dirs /*\n"
    "    trusted-proxies 127.0.0.1/32\n"
    "    app conference\n"
    "}\n"
    "service conference-b {\n"
    "    listen 127.0.0.1:4444\n"
    "    certificate default\n"
    "    allowed-hosts localhost 127.0.0.1\n"
    "    allowed-dirs /*\n"
    "    trusted-proxies 127.0.0.1/32\n"
    "    app conference\n"
    "}\n"
    "service management {\n"
    "    listen 127.0.0.1:9443\n"
    "    certificate default\n"
    "    allowed-hosts localhost 127.0.0.1\n"
    "    allowed-dirs /*\n"
    "    app admin\n"
    "}\n";
