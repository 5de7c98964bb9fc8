#ifndef CHAT_TOKEN_H
#define CHAT_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * JWT HS256 issue and verify on top of libjwt 1.10.  libjwt takes the
 * algorithm from the token header and validates no claims, so this module pins
 * HS256 and checks exp/nbf itself (PROTOCOL.md section 3).
 */

#define CHAT_TOKEN_MAX 8192 /* bytes; a longer token is rejected unread */
#define CHAT_TOKEN_NBF_LEEWAY 60

#define CHAT_USER_ID_MAX 64
#define CHAT_NICK_MAX_CP 32 /* code points */
#define CHAT_NICK_MAX_BYTES (CHAT_NICK_MAX_CP * 4)
#define CHAT_AVATAR_MAX_CP 2048

struct chat_identity {
    char id[CHAT_USER_ID_MAX + 1];
    char name[CHAT_NICK_MAX_BYTES + 1];
    char *avatar; /* owned, NULL when absent */
    bool admin;   /* role == "admin" */
    int64_t exp;  /* seconds since the epoch */
};

enum chat_token_error {
    CHAT_TOKEN_OK = 0,
    CHAT_TOKEN_E_MISSING = -1, /* NULL or empty */
    CHAT_TOKEN_E_TOO_LONG = -2,
    CHAT_TOKEN_E_MALFORMED = -3, /* not three base64url parts, bad JSON */
    CHAT_TOKEN_E_ALG = -4,       /* header alg is not HS256 (none, HS512, RS256 ...) */
    CHAT_TOKEN_E_SIGNATURE = -5,
    CHAT_TOKEN_E_EXPIRED = -6, /* exp missing or <= now */
    CHAT_TOKEN_E_NOT_YET = -7, /* nbf > now + leeway */
    CHAT_TOKEN_E_CLAIMS = -8,  /* sub or name missing or invalid */
    CHAT_TOKEN_E_NOMEM = -9,
};

const char *chat_token_strerror(int err);

/*
 * Issues a token for `who` (id, name, avatar, admin) valid from `now` for
 * `ttl` seconds: claims sub, name, exp, iat, and avatar / role when set.
 * Returns a malloc'd NUL-terminated string, or NULL.
 */
char *chat_token_issue(const char *secret, size_t secret_len, const struct chat_identity *who,
                       int64_t now, int64_t ttl);

/*
 * Verifies `token` (borrowed) against `secret` at time `now`.  On
 * CHAT_TOKEN_OK, *out is filled (the caller calls chat_identity_deinit);
 * otherwise *out holds nothing to free.  sub must be a valid user id and name a
 * valid nickname (protocol.h).
 */
int chat_token_verify(const char *secret, size_t secret_len, const char *token, int64_t now,
                      struct chat_identity *out);

void chat_identity_deinit(struct chat_identity *who);
/* Deep copy; 0 or -1. */
int chat_identity_copy(struct chat_identity *dst, const struct chat_identity *src);

/* Fills out with `n` random bytes as lowercase hex (2n chars + NUL) from
 * OpenSSL RAND_bytes.  0 or -1. */
int chat_random_hex(char *out, size_t n);

#endif
