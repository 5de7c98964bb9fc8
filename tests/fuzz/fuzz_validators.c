/*
 * The validators of common/protocol.c against reference implementations
 * written here from the contract in protocol.h (differential), plus the
 * properties of chat_nick_fold: never longer than the input, valid UTF-8,
 * idempotent, and it never writes past outlen.
 *
 * Input: byte 0 picks the fold buffer size; the rest is the string.  Functions
 * that take (pointer, length) get an exact-size buffer without a terminator;
 * the others see the string up to its first NUL.
 */
#include "fuzz.h"
#include "protocol.h"
#include "token.h"

struct cp_walk {
    long n;
    uint32_t first, last;
    bool control; /* C0, DEL or C1 */
    bool c0;
};

static void on_cp(uint32_t cp, void *arg)
{
    struct cp_walk *w = arg;
    if (w->n == 0)
        w->first = cp;
    w->last = cp;
    w->n++;
    if (cp < 0x20)
        w->c0 = true;
    if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
        w->control = true;
}

static bool ref_blank(uint32_t cp)
{
    static const uint32_t blanks[] = {0x20,   0xa0,   0x1680, 0x2028, 0x2029,
                                      0x202f, 0x205f, 0x2060, 0x3000, 0xfeff};
    if (cp >= 0x2000 && cp <= 0x200d)
        return true;
    for (size_t i = 0; i < sizeof(blanks) / sizeof(blanks[0]); i++) {
        if (blanks[i] == cp)
            return true;
    }
    return false;
}

static bool ref_charset(const char *s, size_t min, size_t max, const char *extra, bool room)
{
    size_t n = strlen(s);
    if (n < min || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alnum =
            (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (!room && c >= 'A' && c <= 'Z');
        if (alnum)
            continue;
        if (c == '\0' || !strchr(extra, c) || (room && i == 0))
            return false;
    }
    return true;
}

/* data:image/(png|jpeg|gif|webp);base64, (case-insensitive), then base64 with
 * optional padding to a multiple of 4, or unpadded with a length not 1 mod 4. */
static bool ref_image(const char *s, size_t len)
{
    static const char *const prefixes[] = {"data:image/png;base64,", "data:image/jpeg;base64,",
                                           "data:image/gif;base64,", "data:image/webp;base64,"};
    size_t p = 0;
    for (size_t t = 0; t < 4 && p == 0; t++) {
        size_t pl = strlen(prefixes[t]);
        if (len < pl)
            continue;
        size_t k = 0;
        while (k < pl) {
            char a = s[k], b = prefixes[t][k];
            if (a >= 'A' && a <= 'Z')
                a = (char)(a + 32);
            if (a != b)
                break;
            k++;
        }
        if (k == pl)
            p = pl;
    }
    if (p == 0)
        return false;
    size_t rest = len - p, chars = 0, pad = 0;
    for (size_t i = p; i < len; i++) {
        char c = s[i];
        bool b64 = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                   c == '+' || c == '/';
        if (b64 && pad == 0)
            chars++;
        else if (c == '=' && chars > 0)
            pad++;
        else
            return false;
    }
    if (chars == 0 || pad > 2 || chars + pad != rest)
        return false;
    return pad ? (chars + pad) % 4 == 0 : chars % 4 != 1;
}

static int ref_hexval(char c)
{
    static const char digits[] = "0123456789abcdef";
    char l = (c >= 'A' && c <= 'F') ? (char)(c + 32) : c;
    const char *p = l ? strchr(digits, l) : NULL;
    return p ? (int)(p - digits) : -1;
}

static void check_fold(const char *s, size_t outlen)
{
    size_t len = strlen(s);
    char *out = malloc(outlen ? outlen : 1);
    FUZZ_CHECK(out != NULL);
    int rc = chat_nick_fold(s, out, outlen);
    long n = chat_utf8_count(s, len);
    if (outlen == 0) {
        FUZZ_CHECK(rc == -1);
    } else if (rc == 0) {
        size_t olen = strnlen(out, outlen);
        FUZZ_CHECK(olen < outlen);
        FUZZ_CHECK(olen <= len);
        FUZZ_CHECK(chat_utf8_count(out, olen) == n);
        /* folding is idempotent */
        char *again = malloc(olen + 1);
        FUZZ_CHECK(again != NULL);
        FUZZ_CHECK(chat_nick_fold(out, again, olen + 1) == 0);
        FUZZ_CHECK(strcmp(again, out) == 0);
        free(again);
        /* a nickname stays a nickname (the folded form is used as a key) */
        if (chat_valid_nickname(s))
            FUZZ_CHECK(chat_utf8_count(out, olen) >= 1);
    } else {
        FUZZ_CHECK(out[0] == '\0');
        /* only invalid UTF-8 or a short buffer may fail */
        FUZZ_CHECK(n < 0 || outlen <= len);
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    static const size_t outlens[] = {0, 1, 2, 3, 4, 5, 8, 16, 33, 129, CHAT_NICK_MAX_BYTES + 1};
    size_t outlen = outlens[data[0] % (sizeof(outlens) / sizeof(outlens[0]))];
    bool exact = data[0] >= 0x80; /* fold into a buffer of exactly strlen + 1 */
    data++;
    size--;

    char *raw = fuzz_memdup(data, size);
    char *s = fuzz_strndup(data, size);
    size_t slen = strlen(s);

    /* UTF-8 counting, raw bytes including any NULs */
    long ref = fuzz_ref_utf8((const unsigned char *)raw, size, NULL, NULL);
    FUZZ_CHECK(chat_utf8_count(raw, size) == ref);
    FUZZ_CHECK(chat_utf8_count(NULL, 0) == 0);

    struct cp_walk w = {0};
    long n = fuzz_ref_utf8((const unsigned char *)s, slen, on_cp, &w);
    bool utf8 = n >= 0;

    FUZZ_CHECK(chat_valid_user_id(s) == ref_charset(s, 1, 64, "_-", false));
    FUZZ_CHECK(chat_valid_room_name(s) == ref_charset(s, 1, CHAT_ROOM_MAX, "_-", true));
    FUZZ_CHECK(chat_valid_request_id(s) == (utf8 && n >= 1 && n <= CHAT_REQ_ID_MAX && !w.control));
    FUZZ_CHECK(chat_valid_avatar(s) == (utf8 && n <= CHAT_AVATAR_MAX_CP && !w.c0));
    FUZZ_CHECK(chat_valid_nickname(s) == (utf8 && n >= 1 && n <= CHAT_NICK_MAX_CP && !w.control &&
                                          !ref_blank(w.first) && !ref_blank(w.last)));
    FUZZ_CHECK(chat_valid_image_url(raw, size) == ref_image(raw, size));
    FUZZ_CHECK(!chat_valid_user_id(NULL) && !chat_valid_room_name(NULL) &&
               !chat_valid_nickname(NULL) && !chat_valid_avatar(NULL) &&
               !chat_valid_request_id(NULL) && !chat_valid_image_url(NULL, 0));
    for (size_t i = 0; i < size && i < 16; i++)
        FUZZ_CHECK(chat_hexval(raw[i]) == ref_hexval(raw[i]));

    check_fold(s, exact ? slen + 1 : outlen);
    if (chat_valid_nickname(s)) {
        char key[CHAT_NICK_MAX_BYTES + 1];
        FUZZ_CHECK(chat_nick_fold(s, key, sizeof(key)) == 0);
    }

    free(s);
    free(raw);
    return 0;
}
