#include "token.h"

#include <errno.h>
#include <jansson.h>
#include <jwt.h>
#include <limits.h>
#include <math.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"

const char *chat_token_strerror(int err)
{
    switch (err) {
    case CHAT_TOKEN_OK:
        return "ok";
    case CHAT_TOKEN_E_MISSING:
        return "token missing";
    case CHAT_TOKEN_E_TOO_LONG:
        return "token too long";
    case CHAT_TOKEN_E_MALFORMED:
        return "token malformed";
    case CHAT_TOKEN_E_ALG:
        return "token algorithm not accepted";
    case CHAT_TOKEN_E_SIGNATURE:
        return "token signature invalid";
    case CHAT_TOKEN_E_EXPIRED:
        return "token expired";
    case CHAT_TOKEN_E_NOT_YET:
        return "token not yet valid";
    case CHAT_TOKEN_E_CLAIMS:
        return "token claims invalid";
    case CHAT_TOKEN_E_NOMEM:
        return "out of memory";
    case CHAT_TOKEN_E_ISSUER:
        return "token issuer not accepted";
    case CHAT_TOKEN_E_AUDIENCE:
        return "token audience not accepted";
    }
    return "token error";
}

void chat_identity_deinit(struct chat_identity *who)
{
    if (!who)
        return;
    free(who->avatar);
    memset(who, 0, sizeof(*who));
}

int chat_identity_copy(struct chat_identity *dst, const struct chat_identity *src)
{
    if (!dst || !src)
        return -1;
    char *avatar = NULL;
    if (src->avatar) {
        avatar = strdup(src->avatar);
        if (!avatar)
            return -1;
    }
    /* dst may alias src: copy the avatar before overwriting. */
    struct chat_identity tmp = *src;
    tmp.avatar = avatar;
    *dst = tmp;
    return 0;
}

int chat_random_hex(char *out, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char buf[64];

    if (!out)
        return -1;
    size_t done = 0;
    while (done < n) {
        size_t chunk = n - done < sizeof(buf) ? n - done : sizeof(buf);
        if (RAND_bytes(buf, (int)chunk) != 1) {
            out[0] = '\0';
            return -1;
        }
        for (size_t i = 0; i < chunk; i++) {
            out[2 * (done + i)] = hex[buf[i] >> 4];
            out[2 * (done + i) + 1] = hex[buf[i] & 0x0f];
        }
        done += chunk;
    }
    out[2 * n] = '\0';
    return 0;
}

char *chat_token_issue(const char *secret, size_t secret_len, const struct chat_identity *who,
                       int64_t now, int64_t ttl)
{
    jwt_t *jwt = NULL;
    char *token = NULL;

    if (!secret || secret_len == 0 || secret_len > INT_MAX || !who || ttl <= 0 ||
        !chat_valid_user_id(who->id) || !chat_valid_nickname(who->name) ||
        (who->avatar && !chat_valid_avatar(who->avatar)))
        return NULL;
    if (jwt_new(&jwt) != 0)
        goto fail;
    if (jwt_add_grant(jwt, "sub", who->id) != 0 || jwt_add_grant(jwt, "name", who->name) != 0 ||
        jwt_add_grant_int(jwt, "iat", (long)now) != 0 ||
        jwt_add_grant_int(jwt, "exp", (long)(now + ttl)) != 0)
        goto fail;
    if (who->avatar && jwt_add_grant(jwt, "avatar", who->avatar) != 0)
        goto fail;
    if (who->admin && jwt_add_grant(jwt, "role", "admin") != 0)
        goto fail;
    if (jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)secret, (int)secret_len) != 0)
        goto fail;
    token = jwt_encode_str(jwt);

fail:
    jwt_free(jwt);
    return token;
}

/* ------------------------------------------------------------------------ */
/* Verification                                                               */

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* Decodes unpadded base64url s[0..len) into out (at least len * 3 / 4 + 1
 * bytes).  Returns the decoded length or -1. */
static long b64url_decode(const char *s, size_t len, unsigned char *out)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;

    if (len % 4 == 1)
        return -1;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value((unsigned char)s[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    return (long)o;
}

/* Decodes one base64url part holding a JSON object. */
static json_t *decode_part(const char *s, size_t len)
{
    unsigned char *buf = malloc(len * 3 / 4 + 1);
    json_t *obj = NULL;
    if (!buf)
        return NULL;
    long n = b64url_decode(s, len, buf);
    if (n >= 0)
        obj = json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
    free(buf);
    if (obj && !json_is_object(obj)) {
        json_decref(obj);
        obj = NULL;
    }
    return obj;
}

/* A NumericDate claim: a JSON number, read as whole seconds.  0 or -1. */
static int numeric_date(json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!isfinite(d) || d > 9.0e15 || d < -9.0e15)
            return -1;
        *out = (int64_t)d; /* fractions of a second do not matter */
        return 0;
    }
    return -1;
}

#define TOKEN_CLAIM_NAME_MAX 64
#define TOKEN_RSA_MIN_BITS 2048
#define TOKEN_RSA_MAX_BITS 8192
#define TOKEN_ES256_SIG_LEN 64
#define TOKEN_HS256_SIG_B64_LEN 43 /* 32 bytes of base64url, unpadded */

/*
 * Strings are owned by a verifier from chat_token_verifier_new; the one
 * chat_token_verify builds on its stack borrows them and is never freed.
 */
struct chat_token_verifier {
    char *secret; /* NULL: no HS256 */
    size_t secret_len;
    EVP_PKEY *pkey; /* NULL: no RS256 / ES256 */
    int key_alg;    /* CHAT_TOKEN_KEY_*, 0 without a key */
    char *issuer, *audience;
    char *claim_id, *claim_name;
};

static int errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* The public key of a "PUBLIC KEY" block, else of a "CERTIFICATE" block
 * (identity providers publish either). */
static EVP_PKEY *read_public_key(const char *pem, size_t len)
{
    EVP_PKEY *pkey = NULL;
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (bio)
        pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (pkey)
        return pkey;
    /* The first read consumed the buffer looking for a PUBLIC KEY block. */
    bio = BIO_new_mem_buf(pem, (int)len);
    X509 *cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (cert) {
        pkey = X509_get_pubkey(cert);
        X509_free(cert);
    }
    return pkey;
}

/* The algorithm pkey pins, or -1 with err filled. */
static int key_alg_of(EVP_PKEY *pkey, char *err, size_t errlen)
{
    switch (EVP_PKEY_get_base_id(pkey)) {
    case EVP_PKEY_RSA: {
        int bits = EVP_PKEY_get_bits(pkey);
        if (bits < TOKEN_RSA_MIN_BITS || bits > TOKEN_RSA_MAX_BITS)
            return errf(err, errlen, "RSA key of %d bits: %d-%d bits are accepted", bits,
                        TOKEN_RSA_MIN_BITS, TOKEN_RSA_MAX_BITS);
        return CHAT_TOKEN_KEY_RS256;
    }
    case EVP_PKEY_EC: {
        char group[64] = "";
        size_t glen = 0;
        if (EVP_PKEY_get_group_name(pkey, group, sizeof(group), &glen) != 1 ||
            strcmp(group, SN_X9_62_prime256v1) != 0)
            return errf(err, errlen, "EC key on curve %s: only P-256 (ES256) is accepted",
                        group[0] ? group : "unknown");
        return CHAT_TOKEN_KEY_ES256;
    }
    default:
        return errf(err, errlen, "%s key: only RSA (RS256) and EC P-256 (ES256) are accepted",
                    OBJ_nid2sn(EVP_PKEY_get_base_id(pkey)));
    }
}

int chat_token_key_check(const char *pem, size_t len, char *err, size_t errlen)
{
    if (!pem || len == 0 || len > INT_MAX)
        return errf(err, errlen, "empty key");
    EVP_PKEY *pkey = read_public_key(pem, len);
    ERR_clear_error();
    if (!pkey)
        return errf(err, errlen,
                    "no PEM public key or certificate found (a private key? export its public "
                    "half with: openssl pkey -pubout)");
    int alg = key_alg_of(pkey, err, errlen);
    EVP_PKEY_free(pkey);
    return alg;
}

static bool valid_claim_name(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > TOKEN_CLAIM_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)name[i] <= ' ' || (unsigned char)name[i] >= 0x7f)
            return false;
    }
    return true;
}

static char *dup_or_null(const char *s, bool *failed)
{
    if (!s)
        return NULL;
    char *copy = strdup(s);
    if (!copy)
        *failed = true;
    return copy;
}

/* Long because each option is validated where it is copied, so no
 * half-built verifier escapes. */
int chat_token_verifier_new(const struct chat_token_verifier_options *opts,
                            struct chat_token_verifier **out, char *err, size_t errlen)
{
    struct chat_token_verifier *v = NULL;
    bool nomem = false;

    if (out)
        *out = NULL;
    if (!opts || !out)
        return errf(err, errlen, "no options");
    if (!opts->secret && !opts->public_key_pem)
        return errf(err, errlen, "neither a secret nor a public key");
    if (opts->secret && (opts->secret_len == 0 || opts->secret_len > INT_MAX))
        return errf(err, errlen, "empty secret");
    const char *claim_id = opts->claim_id ? opts->claim_id : "sub";
    const char *claim_name = opts->claim_name ? opts->claim_name : "name";
    if (!valid_claim_name(claim_id) || !valid_claim_name(claim_name))
        return errf(err, errlen, "claim names are 1-%d printable characters without spaces",
                    TOKEN_CLAIM_NAME_MAX);
    if ((opts->issuer && !opts->issuer[0]) || (opts->audience && !opts->audience[0]))
        return errf(err, errlen, "empty issuer or audience");

    v = calloc(1, sizeof(*v));
    if (!v)
        goto nomem;
    if (opts->public_key_pem) {
        if (opts->public_key_len == 0 || opts->public_key_len > INT_MAX) {
            errf(err, errlen, "empty public key");
            goto fail;
        }
        v->pkey = read_public_key(opts->public_key_pem, opts->public_key_len);
        ERR_clear_error();
        if (!v->pkey) {
            chat_token_key_check(opts->public_key_pem, opts->public_key_len, err, errlen);
            goto fail;
        }
        v->key_alg = key_alg_of(v->pkey, err, errlen);
        if (v->key_alg < 0)
            goto fail;
    }
    if (opts->secret) {
        v->secret = malloc(opts->secret_len + 1);
        if (!v->secret)
            goto nomem;
        memcpy(v->secret, opts->secret, opts->secret_len);
        v->secret[opts->secret_len] = '\0';
        v->secret_len = opts->secret_len;
    }
    v->issuer = dup_or_null(opts->issuer, &nomem);
    v->audience = dup_or_null(opts->audience, &nomem);
    v->claim_id = dup_or_null(claim_id, &nomem);
    v->claim_name = dup_or_null(claim_name, &nomem);
    if (nomem)
        goto nomem;
    *out = v;
    return 0;

nomem:
    errf(err, errlen, "out of memory");
fail:
    chat_token_verifier_free(v);
    return -1;
}

void chat_token_verifier_free(struct chat_token_verifier *v)
{
    if (!v)
        return;
    if (v->secret) {
        /* Do not leave the key lying around in freed memory. */
        volatile char *p = v->secret;
        for (size_t i = 0; i < v->secret_len; i++)
            p[i] = '\0';
    }
    free(v->secret);
    EVP_PKEY_free(v->pkey);
    free(v->issuer);
    free(v->audience);
    free(v->claim_id);
    free(v->claim_name);
    free(v);
}

/* aud is a string or an array of strings (RFC 7519 section 4.1.3). */
static bool audience_holds(json_t *aud, const char *want)
{
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), want) == 0;
    if (!json_is_array(aud))
        return false;
    size_t i;
    json_t *e;
    json_array_foreach(aud, i, e)
    {
        if (json_is_string(e) && strcmp(json_string_value(e), want) == 0)
            return true;
    }
    return false;
}

/*
 * exp, nbf, iss/aud (keyed tokens) and the identity claims, from the already
 * authenticated payload.  keyed: checked with the public key, so the
 * verifier's issuer, audience and claim names apply.
 */
static int check_claims(const struct chat_token_verifier *v, bool keyed, json_t *claims,
                        int64_t now, struct chat_identity *out)
{
    int64_t exp, nbf;
    json_t *val = json_object_get(claims, "exp");
    if (!val || numeric_date(val, &exp) < 0 || exp <= now)
        return CHAT_TOKEN_E_EXPIRED;
    val = json_object_get(claims, "nbf");
    if (val) {
        if (numeric_date(val, &nbf) < 0)
            return CHAT_TOKEN_E_CLAIMS;
        if (nbf > now + CHAT_TOKEN_NBF_LEEWAY)
            return CHAT_TOKEN_E_NOT_YET;
    }
    if (keyed && v->issuer) {
        const char *iss = json_string_value(json_object_get(claims, "iss"));
        if (!iss || strcmp(iss, v->issuer) != 0)
            return CHAT_TOKEN_E_ISSUER;
    }
    if (keyed && v->audience && !audience_holds(json_object_get(claims, "aud"), v->audience))
        return CHAT_TOKEN_E_AUDIENCE;

    const char *sub = json_string_value(json_object_get(claims, keyed ? v->claim_id : "sub"));
    const char *name = json_string_value(json_object_get(claims, keyed ? v->claim_name : "name"));
    if (!chat_valid_user_id(sub) || !chat_valid_nickname(name))
        return CHAT_TOKEN_E_CLAIMS;
    const char *avatar = NULL;
    val = json_object_get(claims, "avatar");
    if (val && !json_is_null(val)) {
        avatar = json_string_value(val);
        if (!chat_valid_avatar(avatar))
            return CHAT_TOKEN_E_CLAIMS;
    }
    const char *role = json_string_value(json_object_get(claims, "role"));

    memset(out, 0, sizeof(*out));
    /* Lengths are bounded by the validators above. */
    memcpy(out->id, sub, strlen(sub) + 1);
    memcpy(out->name, name, strlen(name) + 1);
    out->admin = role && strcmp(role, "admin") == 0;
    out->exp = exp;
    if (avatar) {
        out->avatar = strdup(avatar);
        if (!out->avatar)
            return CHAT_TOKEN_E_NOMEM;
    }
    return CHAT_TOKEN_OK;
}

/* HS256 through libjwt, with the secret only. */
static int verify_hs256(const struct chat_token_verifier *v, const char *token, const char *sig)
{
    jwt_t *jwt = NULL;

    if (strlen(sig) != TOKEN_HS256_SIG_B64_LEN)
        return CHAT_TOKEN_E_SIGNATURE;
    int jrc = jwt_decode(&jwt, token, (const unsigned char *)v->secret, (int)v->secret_len);
    int rc = CHAT_TOKEN_OK;
    if (jrc == ENOMEM)
        rc = CHAT_TOKEN_E_NOMEM;
    else if (jrc != 0 || !jwt || jwt_get_alg(jwt) != JWT_ALG_HS256)
        rc = CHAT_TOKEN_E_SIGNATURE;
    jwt_free(jwt);
    return rc;
}

/*
 * RS256 / ES256 with libcrypto directly on the key parsed once: libjwt 1.10
 * would re-read the PEM on every token and refuses headers whose typ is not
 * "JWT" (identity providers send "at+jwt").  signing_input is header.payload.
 */
static int verify_pkey(const struct chat_token_verifier *v, const char *signing_input,
                       size_t input_len, const char *sig_b64)
{
    size_t b64len = strlen(sig_b64);
    unsigned char *raw = malloc(b64len * 3 / 4 + 1);
    unsigned char *der = NULL;
    ECDSA_SIG *ec = NULL;
    EVP_MD_CTX *md = NULL;
    int rc = CHAT_TOKEN_E_SIGNATURE;

    if (!raw)
        return CHAT_TOKEN_E_NOMEM;
    long n = b64url_decode(sig_b64, b64len, raw);
    if (n <= 0)
        goto done;
    const unsigned char *sig = raw;
    size_t sig_len = (size_t)n;
    if (v->key_alg == CHAT_TOKEN_KEY_RS256) {
        if (sig_len != (size_t)EVP_PKEY_get_size(v->pkey))
            goto done;
    } else {
        /* JWS carries ECDSA as r || s (RFC 7518 section 3.4); libcrypto
         * verifies DER. */
        if (sig_len != TOKEN_ES256_SIG_LEN)
            goto done;
        BIGNUM *r = BN_bin2bn(raw, TOKEN_ES256_SIG_LEN / 2, NULL);
        BIGNUM *s = BN_bin2bn(raw + TOKEN_ES256_SIG_LEN / 2, TOKEN_ES256_SIG_LEN / 2, NULL);
        ec = ECDSA_SIG_new();
        if (!r || !s || !ec || ECDSA_SIG_set0(ec, r, s) != 1) {
            BN_free(r);
            BN_free(s);
            rc = CHAT_TOKEN_E_NOMEM;
            goto done;
        }
        int dlen = i2d_ECDSA_SIG(ec, &der);
        if (dlen <= 0) {
            rc = CHAT_TOKEN_E_NOMEM;
            goto done;
        }
        sig = der;
        sig_len = (size_t)dlen;
    }
    md = EVP_MD_CTX_new();
    if (!md) {
        rc = CHAT_TOKEN_E_NOMEM;
        goto done;
    }
    if (EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, v->pkey) == 1 &&
        EVP_DigestVerify(md, sig, sig_len, (const unsigned char *)signing_input, input_len) == 1)
        rc = CHAT_TOKEN_OK;

done:
    /* A failed verification leaves entries on the thread's error queue. */
    ERR_clear_error();
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    ECDSA_SIG_free(ec);
    free(raw);
    return rc;
}

/*
 * The header is decoded and checked here, before any key is used: the
 * header's alg must be one the verifier's keys pin, so a token saying "none",
 * "HS512", or "HS256" to a verifier without a secret never reaches a
 * signature check.  The claims are read from our own decode of the payload.
 */
int chat_token_verify_with(const struct chat_token_verifier *v, const char *token, int64_t now,
                           struct chat_identity *out)
{
    json_t *header = NULL, *claims = NULL;
    int rc;

    if (out)
        memset(out, 0, sizeof(*out));
    if (!token || !token[0])
        return CHAT_TOKEN_E_MISSING;
    if (!out || !v)
        return CHAT_TOKEN_E_SIGNATURE;
    size_t len = strnlen(token, CHAT_TOKEN_MAX + 1);
    if (len > CHAT_TOKEN_MAX)
        return CHAT_TOKEN_E_TOO_LONG;

    const char *dot1 = memchr(token, '.', len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) || dot1 == token ||
        dot2 == dot1 + 1) {
        rc = CHAT_TOKEN_E_MALFORMED;
        goto fail;
    }
    header = decode_part(token, (size_t)(dot1 - token));
    claims = decode_part(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    if (!header || !claims) {
        rc = CHAT_TOKEN_E_MALFORMED;
        goto fail;
    }
    const char *alg = json_string_value(json_object_get(header, "alg"));
    bool keyed;
    if (alg && strcmp(alg, "HS256") == 0 && v->secret) {
        keyed = false;
        rc = verify_hs256(v, token, dot2 + 1);
    } else if (alg && ((strcmp(alg, "RS256") == 0 && v->key_alg == CHAT_TOKEN_KEY_RS256) ||
                       (strcmp(alg, "ES256") == 0 && v->key_alg == CHAT_TOKEN_KEY_ES256))) {
        keyed = true;
        rc = verify_pkey(v, token, (size_t)(dot2 - token), dot2 + 1);
    } else {
        rc = CHAT_TOKEN_E_ALG;
        goto fail;
    }
    if (rc != CHAT_TOKEN_OK)
        goto fail;

    rc = check_claims(v, keyed, claims, now, out);
    if (rc != CHAT_TOKEN_OK)
        chat_identity_deinit(out);

fail:
    json_decref(header);
    json_decref(claims);
    return rc;
}

int chat_token_verify(const char *secret, size_t secret_len, const char *token, int64_t now,
                      struct chat_identity *out)
{
    if (out)
        memset(out, 0, sizeof(*out));
    if (!token || !token[0])
        return CHAT_TOKEN_E_MISSING;
    if (!out || !secret || secret_len == 0 || secret_len > INT_MAX)
        return CHAT_TOKEN_E_SIGNATURE;
    /* Borrowed, never written nor freed. */
    struct chat_token_verifier v = {
        .secret = (char *)secret,
        .secret_len = secret_len,
        .claim_id = (char *)"sub",
        .claim_name = (char *)"name",
    };
    return chat_token_verify_with(&v, token, now, out);
}
