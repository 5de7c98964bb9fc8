/*
 * Key files for the token and config tests, made by the openssl CLI in a
 * temp dir once per run (in the runner, before Check forks the tests), and
 * a libcrypto signer for hand-made RS256 / ES256 tokens.
 */
/* nftw() */
#define _XOPEN_SOURCE 700

#include <check.h>
#include <ftw.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests.h"

static char keys_dir[64];

/* Each command runs in keys_dir with its output quiet; name = what it makes. */
static const char *const key_commands[] = {
    "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.key",
    "openssl pkey -in rsa.key -pubout -out rsa.pub",
    "openssl req -x509 -key rsa.key -subj /CN=test-idp -days 2 -out rsa.crt",
    "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec.key",
    "openssl pkey -in ec.key -pubout -out ec.pub",
    "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out ec384.key",
    "openssl pkey -in ec384.key -pubout -out ec384.pub",
    "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out rsa1024.key",
    "openssl pkey -in rsa1024.key -pubout -out rsa1024.pub",
    "openssl genpkey -algorithm ED25519 -out ed.key",
    "openssl pkey -in ed.key -pubout -out ed.pub",
};

void test_keys_setup(void)
{
    char cmd[512];

    if (keys_dir[0])
        return;
    snprintf(keys_dir, sizeof(keys_dir), "/tmp/chatgw-keys-XXXXXX");
    if (!mkdtemp(keys_dir)) {
        perror("mkdtemp");
        abort();
    }
    for (size_t i = 0; i < sizeof(key_commands) / sizeof(key_commands[0]); i++) {
        snprintf(cmd, sizeof(cmd), "cd '%s' && %s >/dev/null 2>&1", keys_dir, key_commands[i]);
        if (system(cmd) != 0) {
            fprintf(stderr, "test keys: '%s' failed\n", key_commands[i]);
            abort();
        }
    }
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void test_keys_cleanup(void)
{
    if (keys_dir[0])
        nftw(keys_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    keys_dir[0] = '\0';
}

const char *test_key_path(const char *name)
{
    static char path[128];
    ck_assert_msg(keys_dir[0], "test_keys_setup not run");
    snprintf(path, sizeof(path), "%s/%s", keys_dir, name);
    return path;
}

char *test_key_read(const char *name, size_t *len)
{
    FILE *f = fopen(test_key_path(name), "rb");
    ck_assert_ptr_nonnull(f);
    char *buf = malloc(65536);
    ck_assert_ptr_nonnull(buf);
    size_t n = fread(buf, 1, 65535, f);
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

void test_b64url(const unsigned char *in, size_t len, char *out)
{
    int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    for (int i = 0; i < n; i++) {
        if (out[i] == '+')
            out[i] = '-';
        else if (out[i] == '/')
            out[i] = '_';
    }
    while (n > 0 && out[n - 1] == '=')
        n--;
    out[n] = '\0';
}

char *test_sign_pkey(const char *key_name, const char *header, const char *payload)
{
    size_t pemlen;
    char *pem = test_key_read(key_name, &pemlen);
    BIO *bio = BIO_new_mem_buf(pem, (int)pemlen);
    EVP_PKEY *pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    free(pem);
    ck_assert_ptr_nonnull(pkey);

    size_t cap = 4 * (strlen(header) + strlen(payload)) / 3 + 2048;
    char *tok = malloc(cap);
    ck_assert_ptr_nonnull(tok);
    test_b64url((const unsigned char *)header, strlen(header), tok);
    strcat(tok, ".");
    test_b64url((const unsigned char *)payload, strlen(payload), tok + strlen(tok));

    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char sig[1024];
    size_t siglen = sizeof(sig);
    ck_assert_ptr_nonnull(md);
    ck_assert_int_eq(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pkey), 1);
    ck_assert_int_eq(EVP_DigestSign(md, sig, &siglen, (const unsigned char *)tok, strlen(tok)), 1);
    EVP_MD_CTX_free(md);
    if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_EC) {
        /* DER to the r || s of JWS */
        const unsigned char *p = sig;
        ECDSA_SIG *ec = d2i_ECDSA_SIG(NULL, &p, (long)siglen);
        ck_assert_ptr_nonnull(ec);
        int half = (EVP_PKEY_get_bits(pkey) + 7) / 8;
        ck_assert_int_eq(BN_bn2binpad(ECDSA_SIG_get0_r(ec), sig, half), half);
        ck_assert_int_eq(BN_bn2binpad(ECDSA_SIG_get0_s(ec), sig + half, half), half);
        siglen = (size_t)(2 * half);
        ECDSA_SIG_free(ec);
    }
    EVP_PKEY_free(pkey);
    strcat(tok, ".");
    test_b64url(sig, siglen, tok + strlen(tok));
    return tok;
}
