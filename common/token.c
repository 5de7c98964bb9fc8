#include "token.h"

#include <errno.h>
#include <jansson.h>
#include <jwt.h>
#include <limits.h>
#include <math.h>
#include <openssl/rand.h>
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
        return "token algorithm is not HS256";
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

/* exp, nbf and the identity claims, from the (already authenticated) payload. */
static int check_claims(json_t *claims, int64_t now, struct chat_identity *out)
{
    int64_t exp, nbf;
    json_t *v = json_object_get(claims, "exp");
    if (!v || numeric_date(v, &exp) < 0 || exp <= now)
        return CHAT_TOKEN_E_EXPIRED;
    v = json_object_get(claims, "nbf");
    if (v) {
        if (numeric_date(v, &nbf) < 0)
            return CHAT_TOKEN_E_CLAIMS;
        if (nbf > now + CHAT_TOKEN_NBF_LEEWAY)
            return CHAT_TOKEN_E_NOT_YET;
    }

    const char *sub = json_string_value(json_object_get(claims, "sub"));
    const char *name = json_string_value(json_object_get(claims, "name"));
    if (!chat_valid_user_id(sub) || !chat_valid_nickname(name))
        return CHAT_TOKEN_E_CLAIMS;
    const char *avatar = NULL;
    v = json_object_get(claims, "avatar");
    if (v && !json_is_null(v)) {
        avatar = json_string_value(v);
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

/*
 * The header is decoded and checked here, before libjwt sees the token:
 * libjwt 1.10 picks the algorithm from the header, so a token saying "none"
 * or "HS512" must never reach it.  libjwt then checks the HS256 signature,
 * and the claims are read from our own decode of the payload.
 */
int chat_token_verify(const char *secret, size_t secret_len, const char *token, int64_t now,
                      struct chat_identity *out)
{
    json_t *header = NULL, *claims = NULL;
    jwt_t *jwt = NULL;
    int rc;

    if (out)
        memset(out, 0, sizeof(*out));
    if (!token || !token[0])
        return CHAT_TOKEN_E_MISSING;
    if (!out || !secret || secret_len == 0 || secret_len > INT_MAX)
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
    if (!alg || strcmp(alg, "HS256") != 0) {
        rc = CHAT_TOKEN_E_ALG;
        goto fail;
    }
    /* An HS256 signature is 32 bytes: 43 base64url characters. */
    if (strlen(dot2 + 1) != 43) {
        rc = CHAT_TOKEN_E_SIGNATURE;
        goto fail;
    }

    int jrc = jwt_decode(&jwt, token, (const unsigned char *)secret, (int)secret_len);
    if (jrc == ENOMEM) {
        rc = CHAT_TOKEN_E_NOMEM;
        goto fail;
    }
    if (jrc != 0 || !jwt || jwt_get_alg(jwt) != JWT_ALG_HS256) {
        rc = CHAT_TOKEN_E_SIGNATURE;
        goto fail;
    }

    rc = check_claims(claims, now, out);
    if (rc != CHAT_TOKEN_OK)
        chat_identity_deinit(out);

fail:
    jwt_free(jwt);
    json_decref(header);
    json_decref(claims);
    return rc;
}
