#ifndef CHAT_FUZZ_TOKEN_FIXTURE_H
#define CHAT_FUZZ_TOKEN_FIXTURE_H

/* The fixed key and clock of the token targets and of fuzz_seedgen, so that
 * the checked-in seeds (issued by chat_token_issue) verify. */
#define FUZZ_SECRET "fuzz-hs256-secret-0123456789-abcdefghij"
#define FUZZ_OTHER_SECRET "another-hs256-secret-0123456789-abcdefg"
#define FUZZ_NOW 1800000000LL

#include "fuzz.h"
#include "protocol.h"
#include "token.h"

/* What chat_token_verify promises about an identity it returns. */
static inline void fuzz_check_identity(const struct chat_identity *who, long long now)
{
    FUZZ_CHECK(chat_valid_user_id(who->id));
    FUZZ_CHECK(chat_valid_nickname(who->name));
    FUZZ_CHECK(who->avatar == NULL || chat_valid_avatar(who->avatar));
    FUZZ_CHECK(who->exp > now);
}

static inline bool fuzz_same_identity(const struct chat_identity *a, const struct chat_identity *b)
{
    bool avatars =
        (!a->avatar && !b->avatar) || (a->avatar && b->avatar && strcmp(a->avatar, b->avatar) == 0);
    return strcmp(a->id, b->id) == 0 && strcmp(a->name, b->name) == 0 && avatars &&
           a->admin == b->admin && a->exp == b->exp;
}

/*
 * Round trip: a token issued for `who` must verify to the same identity (and
 * fail under another key).  who->exp must be > now.
 */
static inline void fuzz_check_roundtrip(const struct chat_identity *who, long long now)
{
    char *tok = chat_token_issue(FUZZ_SECRET, strlen(FUZZ_SECRET), who, now, who->exp - now);
    FUZZ_CHECK(tok != NULL);
    struct chat_identity back;
    int rc = chat_token_verify(FUZZ_SECRET, strlen(FUZZ_SECRET), tok, now, &back);
    FUZZ_CHECK(rc == CHAT_TOKEN_OK);
    FUZZ_CHECK(fuzz_same_identity(who, &back));
    chat_identity_deinit(&back);
    rc = chat_token_verify(FUZZ_OTHER_SECRET, strlen(FUZZ_OTHER_SECRET), tok, now, &back);
    FUZZ_CHECK(rc == CHAT_TOKEN_E_SIGNATURE);
    FUZZ_CHECK(back.avatar == NULL);
    free(tok);
}

#endif
