#ifndef CHAT_TOKEN_H
#define CHAT_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * JWT issue (HS256) and verify (HS256, and RS256 / ES256 from an identity
 * provider's public key).  libjwt 1.10 takes the algorithm from the token
 * header and validates no claims, so this module decides the algorithm from
 * the key before any signature is checked, and checks exp/nbf/iss/aud itself
 * (PROTOCOL.md section 3).
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
    CHAT_TOKEN_E_ALG = -4,       /* header alg is not one the keys pin (none, HS512 ...) */
    CHAT_TOKEN_E_SIGNATURE = -5,
    CHAT_TOKEN_E_EXPIRED = -6, /* exp missing or <= now */
    CHAT_TOKEN_E_NOT_YET = -7, /* nbf > now + leeway */
    CHAT_TOKEN_E_CLAIMS = -8,  /* id or name claim missing or invalid */
    CHAT_TOKEN_E_NOMEM = -9,
    CHAT_TOKEN_E_ISSUER = -10,   /* iss missing or not the configured issuer */
    CHAT_TOKEN_E_AUDIENCE = -11, /* aud missing or without the configured audience */
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

/*
 * A verifier: the keys and claim rules of one deployment, built once from the
 * configuration and read-only afterwards.
 *
 * The key decides the algorithm, never the token: HS256 tokens are checked
 * with the secret only (our /api/login tokens), RS256 tokens only when the
 * public key is an RSA key, ES256 tokens only when it is an EC P-256 key.
 * An HS256 token is never checked against the public key, so one "signed"
 * with the public key's PEM text as an HMAC secret is refused.
 *
 * issuer, audience and the claim names apply to the tokens checked with the
 * public key (the identity provider's).  HS256 tokens keep the rules of
 * chat_token_verify: id from sub, name from name, no iss/aud.  avatar and
 * role ("admin") are read from both.
 */
struct chat_token_verifier;

struct chat_token_verifier_options {
    const char *secret; /* HS256 key, NULL: HS256 tokens are refused */
    size_t secret_len;
    const char *public_key_pem; /* PEM public key or certificate (RSA >= 2048 bits, or EC
                                   P-256), NULL: RS256/ES256 tokens are refused */
    size_t public_key_len;
    const char *issuer;     /* iss must equal it; NULL: not checked */
    const char *audience;   /* aud (string or array) must hold it; NULL: not checked */
    const char *claim_id;   /* user id claim, NULL: "sub" */
    const char *claim_name; /* display name claim, NULL: "name" */
};

/*
 * Builds a verifier; every option is copied.  At least one of secret and
 * public_key_pem is needed.  Returns 0 and *out, or -1 with a one-line
 * reason in err (a key that does not parse, an unsupported key type ...).
 */
int chat_token_verifier_new(const struct chat_token_verifier_options *opts,
                            struct chat_token_verifier **out, char *err, size_t errlen);
/* NULL is a no-op. */
void chat_token_verifier_free(struct chat_token_verifier *v);

/*
 * Like chat_token_verify, with the verifier's keys and rules.  On
 * CHAT_TOKEN_OK, *out is filled (the caller calls chat_identity_deinit);
 * otherwise *out holds nothing to free.
 */
int chat_token_verify_with(const struct chat_token_verifier *v, const char *token, int64_t now,
                           struct chat_identity *out);

/* Key algorithms a public key pins. */
#define CHAT_TOKEN_KEY_RS256 1
#define CHAT_TOKEN_KEY_ES256 2

/*
 * Parses a PEM public key ("PUBLIC KEY") or certificate and returns the
 * algorithm it pins (CHAT_TOKEN_KEY_*), or -1 with a one-line reason in err.
 */
int chat_token_key_check(const char *pem, size_t len, char *err, size_t errlen);

void chat_identity_deinit(struct chat_identity *who);
/* Deep copy; 0 or -1. */
int chat_identity_copy(struct chat_identity *dst, const struct chat_identity *src);

/* Fills out with `n` random bytes as lowercase hex (2n chars + NUL) from
 * OpenSSL RAND_bytes.  0 or -1. */
int chat_random_hex(char *out, size_t n);

#endif
