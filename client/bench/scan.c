#include "scan.h"

#include <string.h>

struct cursor {
    const char *p, *end;
};

static void skip_ws(struct cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

/* At an opening quote: moves past the closing one and returns the contents.
 * memchr finds the candidates (bodies are long, escapes rare); a quote is
 * the closing one when an even number of backslashes precedes it. */
static int read_string(struct cursor *c, struct bench_str *out)
{
    const char *start, *q;

    if (c->p >= c->end || *c->p != '"')
        return -1;
    start = ++c->p;
    for (;;) {
        const char *bs;

        q = memchr(c->p, '"', (size_t)(c->end - c->p));
        if (!q)
            return -1;
        for (bs = q; bs > start && bs[-1] == '\\'; bs--)
            ;
        if ((q - bs) % 2 == 0)
            break;
        c->p = q + 1;
    }
    out->p = start;
    out->len = (size_t)(q - start);
    c->p = q + 1;
    return 0;
}

static bool is_delim(char ch)
{
    switch (ch) {
    case ' ':
    case '\t':
    case '\r':
    case '\n':
    case ',':
    case ':':
    case ']':
    case '}':
    case '"':
        return true;
    default:
        return false;
    }
}

/* Skips one value of any kind; nesting is tracked by depth only, since a
 * frame that is not valid JSON in some other way is the server's bug and
 * changes nothing the bench counts. */
static int skip_value(struct cursor *c)
{
    struct bench_str ignored;
    int depth = 0;

    do {
        skip_ws(c);
        if (c->p >= c->end)
            return -1;
        switch (*c->p) {
        case '"':
            if (read_string(c, &ignored) != 0)
                return -1;
            break;
        case '{':
        case '[':
            depth++;
            c->p++;
            break;
        case '}':
        case ']':
            if (depth == 0)
                return -1;
            depth--;
            c->p++;
            break;
        case ',':
        case ':':
            if (depth == 0)
                return -1;
            c->p++;
            break;
        default:
            while (c->p < c->end && !is_delim(*c->p))
                c->p++;
            break;
        }
    } while (depth > 0);
    return 0;
}

static int64_t parse_seq(const char *p, const char *end)
{
    int64_t v = 0;

    if (p == end)
        return -1;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9' || v > (INT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (*p - '0');
    }
    return v;
}

int bench_scan_frame(const char *data, size_t len, struct bench_frame *f)
{
    struct cursor c = {data, data + len};

    memset(f, 0, sizeof(*f));
    f->seq = -1;
    skip_ws(&c);
    if (c.p >= c.end || *c.p != '{')
        return -1;
    c.p++;
    skip_ws(&c);
    if (c.p < c.end && *c.p == '}')
        return 0;
    for (;;) {
        struct bench_str key, *slot = NULL;
        const char *vstart;

        skip_ws(&c);
        if (read_string(&c, &key) != 0)
            return -1;
        skip_ws(&c);
        if (c.p >= c.end || *c.p != ':')
            return -1;
        c.p++;
        skip_ws(&c);
        vstart = c.p;
        if (bench_str_is(key, "type"))
            slot = &f->type;
        else if (bench_str_is(key, "room"))
            slot = &f->room;
        else if (bench_str_is(key, "id"))
            slot = &f->id;
        else if (bench_str_is(key, "body"))
            slot = &f->body;
        else if (bench_str_is(key, "code"))
            slot = &f->code;
        if (slot && c.p < c.end && *c.p == '"') {
            if (read_string(&c, slot) != 0)
                return -1;
        } else {
            if (skip_value(&c) != 0)
                return -1;
            if (bench_str_is(key, "seq"))
                f->seq = parse_seq(vstart, c.p);
        }
        skip_ws(&c);
        if (c.p >= c.end)
            return -1;
        if (*c.p == '}')
            return 0;
        if (*c.p != ',')
            return -1;
        c.p++;
    }
}

bool bench_str_is(struct bench_str s, const char *lit)
{
    size_t n = strlen(lit);

    return s.p && s.len == n && memcmp(s.p, lit, n) == 0;
}
