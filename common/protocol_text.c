/*
 * The text side of the protocol: UTF-8, the validators of names, ids,
 * nicknames and avatars, nickname folding, and error codes (protocol.h).
 * protocol.c parses requests with them.
 */
#include "protocol.h"

#include <jansson.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------------------ */
/* UTF-8                                                                      */

/*
 * Decodes the code point at s[*i] and advances *i.  Only shortest forms of
 * U+0000..U+10FFFF without surrogates are accepted (RFC 3629).  0 or -1.
 */
static int utf8_next(const unsigned char *s, size_t len, size_t *i, uint32_t *cp)
{
    size_t p = *i;
    uint32_t c = s[p];
    size_t n;
    uint32_t min;

    if (c < 0x80) {
        *cp = c;
        *i = p + 1;
        return 0;
    } else if (c >= 0xc2 && c <= 0xdf) {
        n = 1;
        c &= 0x1f;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 2;
        c &= 0x0f;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 3;
        c &= 0x07;
        min = 0x10000;
    } else {
        return -1; /* continuation byte, C0/C1 overlong lead, or F5..FF */
    }
    if (len - p - 1 < n)
        return -1;
    for (size_t k = 1; k <= n; k++) {
        unsigned char b = s[p + k];
        if ((b & 0xc0) != 0x80)
            return -1;
        c = (c << 6) | (b & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return -1;
    *cp = c;
    *i = p + 1 + n;
    return 0;
}

long chat_utf8_count(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    long count = 0;
    uint32_t cp;

    if (!s && len)
        return -1;
    while (i < len) {
        if (utf8_next(u, len, &i, &cp) < 0)
            return -1;
        count++;
    }
    return count;
}

static bool is_control(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

/* Characters that render as nothing or as blank: not allowed at either end of
 * a nickname, so "bob" and "bob\u00a0" cannot both exist. */
static bool is_blank(uint32_t cp)
{
    return cp == 0x20 || cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200d) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x2060 ||
           cp == 0x3000 || cp == 0xfeff;
}

/*
 * Walks a NUL-terminated string: true when it is valid UTF-8 of min..max code
 * points, with no control character (C0 always, DEL and C1 too unless
 * c0_only).
 */
static bool text_ok(const char *s, long min, long max, bool c0_only)
{
    if (!s)
        return false;
    const unsigned char *u = (const unsigned char *)s;
    size_t len = strlen(s);
    size_t i = 0;
    long count = 0;
    uint32_t cp;

    while (i < len) {
        if (utf8_next(u, len, &i, &cp) < 0)
            return false;
        if (c0_only ? cp < 0x20 : is_control(cp))
            return false;
        if (++count > max)
            return false;
    }
    return count >= min;
}

/* ------------------------------------------------------------------------ */
/* Validators                                                                 */

static bool is_id_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

bool chat_valid_user_id(const char *s)
{
    if (!s)
        return false;
    size_t n = 0;
    for (; s[n]; n++) {
        if (n >= 64 || !is_id_char(s[n]))
            return false;
    }
    return n >= 1;
}

bool chat_valid_room_name(const char *s)
{
    if (!s)
        return false;
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (n >= CHAT_ROOM_MAX || !(alnum || (n > 0 && (c == '_' || c == '-'))))
            return false;
    }
    return n >= 1;
}

const struct chat_default_room chat_default_rooms[CHAT_DEFAULT_ROOMS] = {
    {"general", "Anything goes"},
    {"random", "Off-topic and fun"},
    {"tech", "Code, tools and questions"},
};

bool chat_is_default_room(const char *room)
{
    for (size_t i = 0; i < CHAT_DEFAULT_ROOMS; i++)
        if (strcmp(chat_default_rooms[i].name, room) == 0)
            return true;
    return false;
}

bool chat_valid_nickname(const char *s)
{
    if (!text_ok(s, 1, 32, false))
        return false;
    const unsigned char *u = (const unsigned char *)s;
    size_t len = strlen(s);
    size_t i = 0;
    uint32_t cp = 0;
    bool first = true;

    while (i < len) {
        (void)utf8_next(u, len, &i, &cp); /* validated by text_ok */
        if (first && is_blank(cp))
            return false;
        first = false;
    }
    return !is_blank(cp);
}

bool chat_valid_avatar(const char *s)
{
    return text_ok(s, 0, 2048, true);
}

bool chat_valid_request_id(const char *s)
{
    return text_ok(s, 1, CHAT_REQ_ID_MAX, false);
}

static bool is_b64_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

bool chat_valid_image_url(const char *s, size_t len)
{
    static const char *const types[] = {"png", "jpeg", "gif", "webp"};
    static const char prefix[] = "data:image/";
    static const char marker[] = ";base64,";

    if (!s || len < sizeof(prefix) - 1 || strncasecmp(s, prefix, sizeof(prefix) - 1) != 0)
        return false;
    size_t p = sizeof(prefix) - 1;
    bool typed = false;
    for (size_t t = 0; t < sizeof(types) / sizeof(types[0]) && !typed; t++) {
        size_t tl = strlen(types[t]);
        if (len - p >= tl + sizeof(marker) - 1 && strncasecmp(s + p, types[t], tl) == 0 &&
            strncasecmp(s + p + tl, marker, sizeof(marker) - 1) == 0) {
            p += tl + sizeof(marker) - 1;
            typed = true;
        }
    }
    if (!typed)
        return false;

    /* The payload: base64 characters, then at most two '=' that make the
     * whole a multiple of 4.  Unpadded is fine as long as it is decodable. */
    size_t data = p;
    while (p < len && is_b64_char((unsigned char)s[p]))
        p++;
    size_t chars = p - data;
    size_t pad = 0;
    while (p < len && s[p] == '=' && pad < 2) {
        p++;
        pad++;
    }
    if (p != len || chars == 0)
        return false;
    if (pad > 0)
        return (chars + pad) % 4 == 0;
    return chars % 4 != 1;
}

/* ------------------------------------------------------------------------ */
/* Nickname folding                                                           */

/* Simple case folding (Unicode CaseFolding.txt, status C+S) for the scripts
 * nicknames mostly use; the rest is left alone.  No locale is involved, so the
 * same nickname folds the same way on every node. */
static uint32_t fold_cp(uint32_t c)
{
    if (c >= 'A' && c <= 'Z')
        return c + 32;
    if (c < 0x80)
        return c;
    if (c == 0xb5)
        return 0x3bc; /* micro sign -> Greek mu */
    if (c >= 0xc0 && c <= 0xde && c != 0xd7)
        return c + 32;
    /* Latin Extended-A: mostly upper/lower pairs. */
    if (c >= 0x100 && c <= 0x17f) {
        if (c == 0x130)
            return 'i'; /* I with dot above; lowercases to i */
        if (c == 0x178)
            return 0xff;
        if (c == 0x17f)
            return 's'; /* long s folds to s */
        if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e))
            return (c & 1) ? c + 1 : c;
        if (c == 0x131 || c == 0x138 || c == 0x149)
            return c;
        return (c & 1) ? c : c + 1;
    }
    /* Greek */
    if (c == 0x386)
        return 0x3ac;
    if (c >= 0x388 && c <= 0x38a)
        return c + 37;
    if (c == 0x38c)
        return 0x3cc;
    if (c == 0x38e || c == 0x38f)
        return c + 63;
    if ((c >= 0x391 && c <= 0x3a1) || (c >= 0x3a3 && c <= 0x3ab))
        return c + 32;
    if (c == 0x3c2)
        return 0x3c3; /* final sigma folds to sigma */
    /* Cyrillic */
    if (c >= 0x400 && c <= 0x40f)
        return c + 80;
    if (c >= 0x410 && c <= 0x42f)
        return c + 32;
    if ((c >= 0x460 && c <= 0x481) || (c >= 0x48a && c <= 0x4bf) || (c >= 0x4d0 && c <= 0x52f))
        return (c & 1) ? c : c + 1;
    if (c == 0x4c0)
        return 0x4cf;
    if (c >= 0x4c1 && c <= 0x4ce)
        return (c & 1) ? c + 1 : c;
    return c;
}

static size_t utf8_put(uint32_t c, unsigned char *o)
{
    if (c < 0x80) {
        o[0] = (unsigned char)c;
        return 1;
    }
    if (c < 0x800) {
        o[0] = (unsigned char)(0xc0 | (c >> 6));
        o[1] = (unsigned char)(0x80 | (c & 0x3f));
        return 2;
    }
    if (c < 0x10000) {
        o[0] = (unsigned char)(0xe0 | (c >> 12));
        o[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3f));
        o[2] = (unsigned char)(0x80 | (c & 0x3f));
        return 3;
    }
    o[0] = (unsigned char)(0xf0 | (c >> 18));
    o[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3f));
    o[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3f));
    o[3] = (unsigned char)(0x80 | (c & 0x3f));
    return 4;
}

int chat_nick_fold(const char *nick, char *out, size_t outlen)
{
    if (!nick || !out || outlen == 0)
        return -1;
    const unsigned char *u = (const unsigned char *)nick;
    size_t len = strlen(nick);
    size_t i = 0, o = 0;
    uint32_t cp;
    unsigned char buf[4];

    while (i < len) {
        if (utf8_next(u, len, &i, &cp) < 0)
            goto fail;
        size_t n = utf8_put(fold_cp(cp), buf);
        if (outlen - o <= n)
            goto fail;
        memcpy(out + o, buf, n);
        o += n;
    }
    out[o] = '\0';
    return 0;

fail:
    out[0] = '\0';
    return -1;
}

/* ------------------------------------------------------------------------ */
/* Error codes                                                                */

const char *chat_err_code(enum chat_err err)
{
    switch (err) {
    case CHAT_ERR_NONE:
        return "none";
    case CHAT_ERR_BAD_REQUEST:
        return "bad_request";
    case CHAT_ERR_UNAUTHORIZED:
        return "unauthorized";
    case CHAT_ERR_FORBIDDEN:
        return "forbidden";
    case CHAT_ERR_NOT_FOUND:
        return "not_found";
    case CHAT_ERR_NOT_MEMBER:
        return "not_member";
    case CHAT_ERR_CONFLICT:
        return "conflict";
    case CHAT_ERR_TOO_LARGE:
        return "too_large";
    case CHAT_ERR_RATE_LIMITED:
        return "rate_limited";
    case CHAT_ERR_UNAVAILABLE:
        return "unavailable";
    case CHAT_ERR_INTERNAL:
        return "internal";
    case CHAT_ERR_LIMIT:
        return "limit";
    }
    return "internal";
}

bool chat_valid_emoji(const char *s)
{
    return text_ok(s, 1, CHAT_EMOJI_MAX, false);
}

int chat_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}
