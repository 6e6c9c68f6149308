#!/bin/sh
# Makes every certificate, key and CA file that docs/examples/*.conf name,
# into DIR, so `cd DIR && gatehouse -t -c .../docs/examples/X.conf` passes
# (the examples name their files relative to the working directory).
# Test stand-ins only: two throwaway CAs play the public CA and the site's
# internal PKI; production files come from real CAs and IdPs.
#
# usage: scripts/example-certs.sh DIR   (GATEHOUSE=path overrides build/gatehouse)
# DIR should be new: gatehouse certs never overwrites a file.
set -eu

dir=${1:?usage: scripts/example-certs.sh DIR}
gh=${GATEHOUSE:-$(cd "$(dirname "$0")/.." && pwd)/build/gatehouse}
if [ ! -x "$gh" ]; then
    echo "example-certs.sh: no gatehouse binary at $gh (make build/gatehouse)" >&2
    exit 1
fi
mkdir -p "$dir"
cd "$dir"

certs() { "$gh" certs "$@" >/dev/null; }

# The CAs: the public one signs what clients see, the internal one what the
# real servers show gatehouse (ca blocks name only internal-ca.pem).
certs ca --out public-ca --cn "example public CA (test only)"
certs ca --out internal-ca --cn "MYCLOUD.AG internal CA (test only)"

# lync-reverse-proxy.conf: one certificate per virtual service, each with
# every allowed host of its service as a SAN (certificate-coverage).
ws_ext_sans=DNS:ws-ext.mycloud.ag,DNS:meet.mycloud.ag,DNS:dialin.mycloud.ag
ws_ext_sans=$ws_ext_sans,DNS:scheduler.mycloud.ag,DNS:lyncdiscover.mycloud.ag
certs server --ca public-ca --out ws-ext --cn ws-ext.mycloud.ag --san "$ws_ext_sans"
certs server --ca public-ca --out fepool-ext --cn fepool-ext.mycloud.ag \
    --san DNS:fepool-ext.mycloud.ag

# lync-edge-l4.conf names no file: the Edge servers hold their certificates.

# pexip.conf: the public name, the nodes' internal certificate, our SAML
# key pair (RSA: IdPs encrypt assertions to it) and the IdPs' signing
# certificates (only the certificate: an IdP keeps its key).
certs server --ca public-ca --out pexip --cn pexip.mycloud.ag --san DNS:pexip.mycloud.ag
certs server --ca internal-ca --out pexip-node --cn pexip.mycloud.ag --san DNS:pexip.mycloud.ag
certs selfsigned --out pexip-sp --cn pexip.mycloud.ag --san DNS:pexip.mycloud.ag --rsa 2048
for idp in adfs-signing azure-signing azure-signing-next; do
    certs selfsigned --out "$idp" --cn "$idp (test only)" --rsa 2048
    rm -f "$idp.key"
done
echo "example certificates in $(pwd)"
