/*
 * Readable lines for server frames.  Every string that came from the network
 * goes through cli_escape, so a peer cannot move the cursor, recolour the
 * terminal or reorder text with bidi controls.
 */
#include "cli.h"

#include <jansson.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

/* Decodes one UTF-8 sequence at s; returns its length, or 0 when it is
 * invalid (overlong, surrogate, above U+10FFFF, truncated). */
static size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
    size_t n;
    uint32_t v, min;

    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if ((s[0] & 0xe0) == 0xc0) {
        n = 2, v = s[0] & 0x1f, min = 0x80;
    } else if ((s[0] & 0xf0) == 0xe0) {
        n = 3, v = s[0] & 0x0f, min = 0x800;
    } else if ((s[0] & 0xf8) == 0xf0) {
        n = 4, v = s[0] & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return n;
}

/* Code points a terminal may act on, or that reorder or split what is shown. */
static bool unsafe_cp(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x061c || cp == 0x200e ||
           cp == 0x200f || (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) ||
           cp == 0xfeff;
}

void cli_escape(FILE *out, const char *s, size_t len, bool multiline)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < len) {
        uint32_t cp;
        size_t n = utf8_decode(p + i, len - i, &cp);

        if (n == 0) {
            fprintf(out, "\\x%02x", p[i]);
            i++;
            continue;
        }
        if (multiline && cp == '\n')
            fputs("\n    ", out);
        else if (multiline && cp == '\t')
            fputc('\t', out);
        else if (cp < 0x80 && unsafe_cp(cp))
            fprintf(out, "\\x%02x", (unsigned)cp);
        else if (unsafe_cp(cp))
            fprintf(out, "\\u{%04X}", (unsigned)cp);
        else
            fwrite(p + i, 1, n, out);
        i += n;
    }
}

static const char *str_field(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static void put_str(FILE *out, const char *s)
{
    cli_escape(out, s ? s : "?", strlen(s ? s : "?"), false);
}

static void put_string_value(FILE *out, const json_t *s, bool multiline)
{
    if (json_is_string(s))
        cli_escape(out, json_string_value(s), json_string_length(s), multiline);
    else
        fputc('?', out);
}

/* "[HH:MM:SS] " from the frame's ts (ms), or from now when it has none. */
static void put_time(FILE *out, const json_t *obj)
{
    const json_t *ts = json_object_get(obj, "ts");
    time_t t = json_is_integer(ts) ? (time_t)(json_integer_value(ts) / 1000) : time(NULL);
    struct tm tm;
    char buf[32];

    if (localtime_r(&t, &tm) && strftime(buf, sizeof(buf), "%H:%M:%S", &tm) > 0)
        fprintf(out, "[%s] ", buf);
    else
        fputs("[--:--:--] ", out);
}

/* A user object's name, falling back to its id. */
static void put_user(FILE *out, const json_t *user)
{
    const json_t *name = json_object_get(user, "name");

    put_string_value(out, json_is_string(name) ? name : json_object_get(user, "id"), false);
}

static void put_body(FILE *out, const json_t *msg)
{
    const char *kind = str_field(msg, "kind");
    const json_t *body = json_object_get(msg, "body");

    if (json_is_true(json_object_get(msg, "deleted"))) {
        fputs("(message deleted)", out);
    } else if (!kind || strcmp(kind, "text") == 0) {
        put_string_value(out, body, true);
    } else if (strcmp(kind, "code") == 0) {
        const char *lang = str_field(msg, "lang");

        fputs("code", out);
        if (lang) {
            fputs(" (", out);
            put_str(out, lang);
            fputc(')', out);
        }
        fputs(":\n    ", out);
        put_string_value(out, body, true);
    } else if (strcmp(kind, "image") == 0) {
        const char *url = json_string_value(body);
        const char *semi = url ? strchr(url, ';') : NULL;

        fputs("[image", out);
        if (url && semi && strncmp(url, "data:", 5) == 0) {
            fputc(' ', out);
            cli_escape(out, url + 5, (size_t)(semi - url - 5), false);
        }
        fprintf(out, ", %zu bytes]", url ? json_string_length(body) : (size_t)0);
    } else {
        fputc('[', out);
        put_str(out, kind);
        fputs("] ", out);
        put_string_value(out, body, true);
    }
}

/* One stored or live message: a room message or a private one. */
static void put_message(FILE *out, const json_t *msg, const char *self_id)
{
    const char *type = str_field(msg, "type");
    const json_t *from = json_object_get(msg, "from");

    const json_t *seq = json_object_get(msg, "seq");

    put_time(out, msg);
    /* the seq is what /edit, /delete and /react name */
    if (json_is_integer(seq))
        fprintf(out, "(%lld) ", (long long)json_integer_value(seq));
    if (type && strcmp(type, "private") == 0) {
        const json_t *to = json_object_get(msg, "to");
        const char *from_id = str_field(from, "id");
        const char *to_id = str_field(to, "id");

        if (self_id && from_id && to_id && strcmp(from_id, self_id) == 0 &&
            strcmp(to_id, self_id) != 0) {
            fputs("(private to ", out);
            put_user(out, to);
            fputs(") <", out);
        } else {
            fputs("(private) <", out);
        }
    } else {
        fputc('#', out);
        put_str(out, str_field(msg, "room"));
        fputs(" <", out);
    }
    put_user(out, from);
    fputs("> ", out);
    put_body(out, msg);
    if (json_is_true(json_object_get(msg, "edited")))
        fputs(" (edited)", out);
    fputc('\n', out);
}

/* "#room 3" or "private 3 with <id>": which message an event is about. */
static void put_target(FILE *out, const json_t *f)
{
    const char *room = str_field(f, "room");
    const json_t *seq = json_object_get(f, "seq");

    if (room) {
        fputc('#', out);
        put_str(out, room);
    } else {
        fputs("private with ", out);
        put_str(out, str_field(f, "with"));
    }
    fprintf(out, " (%lld)", json_is_integer(seq) ? (long long)json_integer_value(seq) : 0LL);
}

/* edited, deleted, reaction: what changed in a stored message. */
static bool render_change(FILE *out, const json_t *f, const char *type)
{
    if (strcmp(type, "edited") == 0) {
        fputs("* ", out);
        put_target(out, f);
        fputs(" edited: ", out);
        put_string_value(out, json_object_get(f, "body"), true);
    } else if (strcmp(type, "deleted") == 0) {
        fputs("* ", out);
        put_target(out, f);
        fputs(" deleted", out);
    } else if (strcmp(type, "reaction") == 0) {
        fputs("* ", out);
        put_str(out, str_field(f, "user"));
        fputs(json_is_true(json_object_get(f, "on")) ? " reacted " : " took back ", out);
        put_str(out, str_field(f, "emoji"));
        fputs(" on ", out);
        put_target(out, f);
    } else {
        return false;
    }
    fputc('\n', out);
    return true;
}

static void put_messages(FILE *out, const json_t *list, const char *self_id)
{
    size_t i;
    const json_t *m;

    json_array_foreach(list, i, m)
    {
        put_message(out, m, self_id);
    }
}

/* "#name (N members) topic" */
static void put_room_summary(FILE *out, const json_t *room)
{
    const json_t *members = json_object_get(room, "members");
    const char *topic = str_field(room, "topic");

    fputc('#', out);
    put_str(out, str_field(room, "name"));
    if (json_is_integer(members))
        fprintf(out, " (%lld member%s)", (long long)json_integer_value(members),
                json_integer_value(members) == 1 ? "" : "s");
    if (topic && *topic) {
        fputs(" ", out);
        put_str(out, topic);
    }
}

/* " a, b, c": users by name, or rooms as #name. */
static void put_names(FILE *out, const json_t *list, bool rooms)
{
    const json_t *e;
    size_t i;

    json_array_foreach(list, i, e)
    {
        fputs(i ? ", " : " ", out);
        if (rooms) {
            fputc('#', out);
            put_str(out, str_field(e, "name"));
        } else {
            put_user(out, e);
        }
    }
}

static void render_welcome(FILE *out, const json_t *f)
{
    const json_t *user = json_object_get(f, "user");

    fputs("* connected to ", out);
    put_str(out, str_field(f, "node"));
    fputs(" as ", out);
    put_user(out, user);
    fputs(" (id ", out);
    put_str(out, str_field(user, "id"));
    fputs(")\n* rooms:", out);
    put_names(out, json_object_get(f, "rooms"), true);
    fputs("\n* type /help for commands\n", out);
}

static void render_joined(FILE *out, const json_t *f, const char *self_id)
{
    const char *topic = str_field(f, "topic");

    fputs("* now in #", out);
    put_str(out, str_field(f, "room"));
    if (topic && *topic) {
        fputs(" (", out);
        put_str(out, topic);
        fputc(')', out);
    }
    fputs(", members:", out);
    put_names(out, json_object_get(f, "members"), false);
    fputc('\n', out);
    put_messages(out, json_object_get(f, "messages"), self_id);
}

static void render_list(FILE *out, const json_t *f, const char *type)
{
    const json_t *list = json_object_get(f, type);
    const json_t *e;
    size_t i;

    if (strcmp(type, "users") == 0) {
        fprintf(out, "* online users (%zu):\n", json_array_size(list));
        json_array_foreach(list, i, e)
        {
            fputs("    ", out);
            put_user(out, e);
            fputs(" (id ", out);
            put_str(out, str_field(e, "id"));
            fputs(")\n", out);
        }
        return;
    }
    fprintf(out, "* rooms (%zu):\n", json_array_size(list));
    json_array_foreach(list, i, e)
    {
        fputs("    ", out);
        put_room_summary(out, e);
        fputc('\n', out);
    }
}

static void render_history(FILE *out, const json_t *f, const char *type, const char *self_id)
{
    const json_t *msgs = json_object_get(f, "messages");
    const char *room = str_field(f, "room");

    if (strcmp(type, "results") == 0) {
        fprintf(out, "* search: %zu result(s)\n", json_array_size(msgs));
    } else {
        fputs(room ? "* history of #" : "* history with ", out);
        put_str(out, room ? room : str_field(f, "with"));
        fprintf(out, ": %zu message(s)\n", json_array_size(msgs));
    }
    put_messages(out, msgs, self_id);
}

/* A presence_batch as the online/offline lines it stands for: the online
 * users, then the offline ones (a user is in one list at most). */
static void render_presence_batch(FILE *out, const json_t *f)
{
    static const char *const kinds[] = {"online", "offline"};
    size_t i;
    const json_t *user;

    for (size_t k = 0; k < 2; k++)
        json_array_foreach(json_object_get(f, kinds[k]), i, user)
        {
            put_time(out, f);
            fputs("* ", out);
            put_user(out, user);
            fprintf(out, " is %s\n", kinds[k]);
        }
}

/* Presence, online/offline, room creation and deletion, purges and
 * broadcasts: timestamped one-liners. */
static bool render_notice(FILE *out, const json_t *f, const char *type)
{
    if (strcmp(type, "presence") == 0) {
        const char *ev = str_field(f, "event");

        put_time(out, f);
        fputs("* ", out);
        put_user(out, json_object_get(f, "user"));
        fputs(ev && strcmp(ev, "leave") == 0 ? " left #" : " joined #", out);
        put_str(out, str_field(f, "room"));
    } else if (strcmp(type, "online") == 0 || strcmp(type, "offline") == 0) {
        put_time(out, f);
        fputs("* ", out);
        put_user(out, json_object_get(f, "user"));
        fprintf(out, " is %s", type);
    } else if (strcmp(type, "room_created") == 0) {
        const char *topic = str_field(f, "topic");

        put_time(out, f);
        fputs("* ", out);
        put_user(out, json_object_get(f, "by"));
        fputs(" created #", out);
        put_str(out, str_field(f, "room"));
        if (topic && *topic) {
            fputs(": ", out);
            put_str(out, topic);
        }
    } else if (strcmp(type, "room_deleted") == 0) {
        put_time(out, f);
        fputs("* #", out);
        put_str(out, str_field(f, "room"));
        fputs(" was deleted by an operator", out);
    } else if (strcmp(type, "room_purged") == 0) {
        const json_t *seq = json_object_get(f, "seq");

        put_time(out, f);
        fputs("* an operator purged the history of #", out);
        put_str(out, str_field(f, "room"));
        /* the room's seq goes on from there: say where, for anyone comparing seqs */
        if (json_is_integer(seq))
            fprintf(out, " up to seq %lld", (long long)json_integer_value(seq));
    } else if (strcmp(type, "broadcast") == 0) {
        put_time(out, f);
        fputs("[broadcast] <", out);
        put_user(out, json_object_get(f, "from"));
        fputs("> ", out);
        put_string_value(out, json_object_get(f, "body"), true);
    } else {
        return false;
    }
    fputc('\n', out);
    return true;
}

void cli_render_frame(FILE *out, const json_t *frame, const char *self_id)
{
    const char *type = str_field(frame, "type");

    if (!type) {
        fputs("? frame without a type\n", out);
    } else if (strcmp(type, "message") == 0 || strcmp(type, "private") == 0) {
        put_message(out, frame, self_id);
    } else if (strcmp(type, "ack") == 0 || strcmp(type, "typing") == 0 ||
               strcmp(type, "read") == 0) {
        /* read: another device of ours caught up; nothing to show in a log of lines */
        /* the echo of our message, or noise: nothing to show */
    } else if (strcmp(type, "error") == 0) {
        fputs("! ", out);
        put_str(out, str_field(frame, "code"));
        fputs(": ", out);
        put_str(out, str_field(frame, "message"));
        fputc('\n', out);
    } else if (strcmp(type, "welcome") == 0) {
        render_welcome(out, frame);
    } else if (strcmp(type, "joined") == 0) {
        render_joined(out, frame, self_id);
    } else if (strcmp(type, "left") == 0) {
        fputs("* left #", out);
        put_str(out, str_field(frame, "room"));
        fputc('\n', out);
    } else if (strcmp(type, "users") == 0 || strcmp(type, "rooms") == 0) {
        render_list(out, frame, type);
    } else if (strcmp(type, "history") == 0 || strcmp(type, "results") == 0) {
        render_history(out, frame, type, self_id);
    } else if (strcmp(type, "pong") == 0) {
        fputs("* pong\n", out);
    } else if (strcmp(type, "presence_batch") == 0) {
        render_presence_batch(out, frame);
    } else if (!render_notice(out, frame, type) && !render_change(out, frame, type)) {
        fputs("? unknown frame type ", out);
        put_str(out, type);
        fputc('\n', out);
    }
}

void cli_render_raw(FILE *out, const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)data[i];

        if (c == '\n' || c == '\r' || c == '\t')
            fputc(' ', out);
        else if (c < 0x20 || c == 0x7f)
            fprintf(out, "\\u%04x", c);
        else
            fputc(c, out);
    }
    fputc('\n', out);
}
