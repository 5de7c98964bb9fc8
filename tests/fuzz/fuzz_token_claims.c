/*
 * chat_token_verify past the signature check.  The fuzzer cannot forge an
 * HMAC, so this target signs for it: the input is a header JSON, a NUL byte
 * and a payload JSON (no NUL: the input is the payload under the header
 * {"alg":"HS256","typ":"JWT"}); both are base64url-encoded and signed with the
 * fixed key, then verified.  That reaches the header checks, libjwt's decode
 * and the claim checks (exp, nbf, sub, name, avatar, role) with arbitrary
 * JSON.  An accepted token must give a valid identity that survives an
 * issue/verify round trip.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "token_fixture.h"

static size_t b64url(const unsigned char *in, size_t len, char *out)
{
    int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    FUZZ_CHECK(n >= 0);
    for (int i = 0; i < n; i++) {
        if (out[i] == '+')
            out[i] = '-';
        else if (out[i] == '/')
            out[i] = '_';
    }
    while (n > 0 && out[n - 1] == '=')
        n--;
    out[n] = '\0';
    return (size_t)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char default_header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    const uint8_t *header = (const uint8_t *)default_header, *payload = data;
    size_t hlen = sizeof(default_header) - 1, plen = size;
    const uint8_t *nul = size ? memchr(data, '\0', size) : NULL;

    if (size > 8192)
        return 0;
    if (nul) {
        header = data;
        hlen = (size_t)(nul - data);
        payload = nul + 1;
        plen = size - hlen - 1;
    }

    size_t cap = (hlen + plen) * 4 / 3 + 64 + 64;
    char *tok = malloc(cap);
    FUZZ_CHECK(tok != NULL);
    size_t n = b64url(header, hlen, tok);
    tok[n++] = '.';
    n += b64url(payload, plen, tok + n);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    FUZZ_CHECK(HMAC(EVP_sha256(), FUZZ_SECRET, (int)strlen(FUZZ_SECRET), (const unsigned char *)tok,
                    n, mac, &maclen) != NULL);
    tok[n++] = '.';
    n += b64url(mac, maclen, tok + n);
    FUZZ_CHECK(n < cap);

    struct chat_identity who;
    int rc = chat_token_verify(FUZZ_SECRET, strlen(FUZZ_SECRET), tok, FUZZ_NOW, &who);
    FUZZ_CHECK(rc <= CHAT_TOKEN_OK);
    FUZZ_CHECK(strcmp(chat_token_strerror(rc), "token error") != 0);
    if (rc == CHAT_TOKEN_OK) {
        fuzz_check_identity(&who, FUZZ_NOW);
        fuzz_check_roundtrip(&who, FUZZ_NOW);
        chat_identity_deinit(&who);
    } else {
        FUZZ_CHECK(who.avatar == NULL && who.id[0] == '\0');
        /* correctly signed: only the content may be refused */
        FUZZ_CHECK(rc != CHAT_TOKEN_E_MISSING && rc != CHAT_TOKEN_E_NOMEM);
    }
    free(tok);
    return 0;
}
