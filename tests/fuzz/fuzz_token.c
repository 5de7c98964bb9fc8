/*
 * chat_token_verify (common/token.c) on arbitrary token strings with a fixed
 * key and clock.  An accepted token must carry a valid identity, must not
 * verify under another key, and must survive an issue/verify round trip; a
 * refused one must leave nothing to free.  The seeds include tokens issued by
 * chat_token_issue with this key (see fuzz_seedgen.c), so the fuzzer starts
 * from the accepting path.
 */
#include "token_fixture.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *token = fuzz_strndup(data, size);
    struct chat_identity who;

    int rc = chat_token_verify(FUZZ_SECRET, strlen(FUZZ_SECRET), token, FUZZ_NOW, &who);
    FUZZ_CHECK(rc <= CHAT_TOKEN_OK);
    FUZZ_CHECK(strcmp(chat_token_strerror(rc), "token error") != 0);
    if (rc == CHAT_TOKEN_OK) {
        fuzz_check_identity(&who, FUZZ_NOW);
        FUZZ_CHECK(strlen(token) <= CHAT_TOKEN_MAX);
        struct chat_identity other;
        FUZZ_CHECK(chat_token_verify(FUZZ_OTHER_SECRET, strlen(FUZZ_OTHER_SECRET), token, FUZZ_NOW,
                                     &other) == CHAT_TOKEN_E_SIGNATURE);
        /* expired one second after exp */
        FUZZ_CHECK(chat_token_verify(FUZZ_SECRET, strlen(FUZZ_SECRET), token, who.exp, &other) ==
                   CHAT_TOKEN_E_EXPIRED);
        struct chat_identity copy;
        FUZZ_CHECK(chat_identity_copy(&copy, &who) == 0);
        FUZZ_CHECK(fuzz_same_identity(&copy, &who));
        chat_identity_deinit(&copy);
        fuzz_check_roundtrip(&who, FUZZ_NOW);
        chat_identity_deinit(&who);
    } else {
        FUZZ_CHECK(who.avatar == NULL && who.id[0] == '\0');
        if (strlen(token) > CHAT_TOKEN_MAX)
            FUZZ_CHECK(rc == CHAT_TOKEN_E_TOO_LONG);
        if (token[0] == '\0')
            FUZZ_CHECK(rc == CHAT_TOKEN_E_MISSING);
    }
    free(token);
    return 0;
}
