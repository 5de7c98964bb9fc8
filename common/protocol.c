#include "protocol.h"

#include <jansson.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------------------ */
/* Request parsing                                                            */

/* The client-facing messages of one field, all static. */
struct field {
    const char *name;
    const char *missing;
    const char *not_string;
    const char *invalid;
};

#define FIELD(n, invalid_text)                                                                     \
    {                                                                                              \
        n, "missing " n, n " must be a string", n " " invalid_text                                 \
    }

static const struct field F_ROOM = FIELD("room", "must be 1-32 of a-z 0-9 _ -, starting with a "
                                                 "letter or digit");
static const struct field F_TO = FIELD("to", "must be a user id (1-64 of A-Z a-z 0-9 _ -)");
static const struct field F_WITH = FIELD("with", "must be a user id (1-64 of A-Z a-z 0-9 _ -)");
static const struct field F_USER = FIELD("user", "must be a user id (1-64 of A-Z a-z 0-9 _ -)");
static const struct field F_KIND = FIELD("kind", "must be text, code or image");
static const struct field F_BODY = FIELD("body", "must not be empty");
static const struct field F_LANG = FIELD("lang", "must be 1-32 characters without control "
                                                 "characters");
static const struct field F_TOPIC = FIELD("topic", "must not contain control characters");
static const struct field F_Q = FIELD("q", "must not be empty");
static const struct field F_AFTER_ROOM = FIELD("after", "must be a room name");
static const struct field F_EMOJI = FIELD("emoji", "must be 1-16 characters without control "
                                                   "characters");

static const struct {
    const char *name;
    enum chat_req_type type;
} req_types[] = {
    {"join", CHAT_REQ_JOIN},           {"leave", CHAT_REQ_LEAVE},
    {"message", CHAT_REQ_MESSAGE},     {"private", CHAT_REQ_PRIVATE},
    {"history", CHAT_REQ_HISTORY},     {"search", CHAT_REQ_SEARCH},
    {"rooms", CHAT_REQ_ROOMS},         {"create_room", CHAT_REQ_CREATE_ROOM},
    {"users", CHAT_REQ_USERS},         {"typing", CHAT_REQ_TYPING},
    {"broadcast", CHAT_REQ_BROADCAST}, {"ping", CHAT_REQ_PING},
    {"read", CHAT_REQ_READ},           {"edit", CHAT_REQ_EDIT},
    {"delete", CHAT_REQ_DELETE},       {"react", CHAT_REQ_REACT},
};

static int fail(struct chat_parse_error *err, enum chat_err code, const char *message)
{
    err->code = code;
    err->message = message;
    return -1;
}

/*
 * Looks up a string field.  Absent and null are the same thing: *out = NULL,
 * and an error only when required.  The string is borrowed from root.
 */
static int get_string(json_t *root, const struct field *f, bool required, const char **out,
                      size_t *len, struct chat_parse_error *err)
{
    json_t *v = json_object_get(root, f->name);
    *out = NULL;
    if (len)
        *len = 0;
    if (!v || json_is_null(v)) {
        if (required)
            return fail(err, CHAT_ERR_BAD_REQUEST, f->missing);
        return 0;
    }
    if (!json_is_string(v))
        return fail(err, CHAT_ERR_BAD_REQUEST, f->not_string);
    /* The parser keeps \u0000 (so that this error can carry the request's
     * id), but no field may hold one: C strings would cut it short. */
    if (strlen(json_string_value(v)) != json_string_length(v))
        return fail(err, CHAT_ERR_BAD_REQUEST, "strings must not contain \\u0000");
    *out = json_string_value(v);
    if (len)
        *len = json_string_length(v);
    return 0;
}

/* A string field checked by a validator of this module. */
static int get_name(json_t *root, const struct field *f, bool required, bool (*valid)(const char *),
                    const char **out, struct chat_parse_error *err)
{
    if (get_string(root, f, required, out, NULL, err) < 0)
        return -1;
    if (*out && !valid(*out))
        return fail(err, CHAT_ERR_BAD_REQUEST, f->invalid);
    return 0;
}

/* An optional JSON integer >= min; floats, strings and booleans are refused. */
static int get_int(json_t *root, const char *name, int64_t min, const char *invalid, bool *has,
                   int64_t *out, struct chat_parse_error *err)
{
    json_t *v = json_object_get(root, name);
    *has = false;
    *out = 0;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < min)
        return fail(err, CHAT_ERR_BAD_REQUEST, invalid);
    *has = true;
    *out = (int64_t)json_integer_value(v);
    return 0;
}

/* A free-text field of at most max code points (too_large above that). */
static int check_text_len(const char *s, size_t len, long min, long max, const struct field *f,
                          const char *too_long, struct chat_parse_error *err)
{
    long n = chat_utf8_count(s, len);
    if (n < 0)
        return fail(err, CHAT_ERR_BAD_REQUEST, "invalid UTF-8");
    if (n > max)
        return fail(err, CHAT_ERR_TOO_LARGE, too_long);
    if (n < min)
        return fail(err, CHAT_ERR_BAD_REQUEST, f->invalid);
    return 0;
}

static bool has_control(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            return true;
        /* C1 controls are U+0080..U+009F, encoded as C2 80..C2 9F. */
        if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
            return true;
    }
    return false;
}

/* kind, body and lang of message / private. */
static int parse_content(json_t *root, struct chat_request *r, struct chat_parse_error *err)
{
    if (get_string(root, &F_KIND, true, &r->kind_name, NULL, err) < 0)
        return -1;
    if (strcmp(r->kind_name, "text") == 0)
        r->kind = CHAT_KIND_TEXT;
    else if (strcmp(r->kind_name, "code") == 0)
        r->kind = CHAT_KIND_CODE;
    else if (strcmp(r->kind_name, "image") == 0)
        r->kind = CHAT_KIND_IMAGE;
    else
        return fail(err, CHAT_ERR_BAD_REQUEST, F_KIND.invalid);

    if (get_string(root, &F_BODY, true, &r->body, &r->body_len, err) < 0)
        return -1;
    switch (r->kind) {
    case CHAT_KIND_TEXT:
        return check_text_len(r->body, r->body_len, 1, CHAT_TEXT_MAX, &F_BODY,
                              "text body is over 4000 characters", err);
    case CHAT_KIND_CODE:
        if (check_text_len(r->body, r->body_len, 1, CHAT_CODE_MAX, &F_BODY,
                           "code body is over 20000 characters", err) < 0)
            return -1;
        if (get_string(root, &F_LANG, false, &r->lang, NULL, err) < 0)
            return -1;
        if (r->lang) {
            size_t n = strlen(r->lang);
            if (check_text_len(r->lang, n, 0, CHAT_LANG_MAX, &F_LANG, "lang is over 32 characters",
                               err) < 0)
                return -1;
            if (has_control(r->lang))
                return fail(err, CHAT_ERR_BAD_REQUEST, F_LANG.invalid);
            if (n == 0)
                r->lang = NULL;
        }
        return 0;
    case CHAT_KIND_IMAGE:
        if (r->body_len == 0)
            return fail(err, CHAT_ERR_BAD_REQUEST, F_BODY.invalid);
        if (!chat_valid_image_url(r->body, r->body_len))
            return fail(err, CHAT_ERR_BAD_REQUEST,
                        "image body must be a data:image/png|jpeg|gif|webp;base64 URL");
        return 0;
    }
    return 0;
}

/* limit: 1..200, default `dflt`. */
static int get_limit(json_t *root, int dflt, struct chat_request *r, struct chat_parse_error *err)
{
    bool has_limit;
    int64_t limit;
    if (get_int(root, "limit", 1, "limit must be an integer 1-200", &has_limit, &limit, err) < 0)
        return -1;
    if (has_limit && limit > CHAT_HISTORY_LIMIT_MAX)
        return fail(err, CHAT_ERR_BAD_REQUEST, "limit must be an integer 1-200");
    r->limit = has_limit ? (int)limit : dflt;
    return 0;
}

static int parse_history(json_t *root, struct chat_request *r, struct chat_parse_error *err)
{
    if (get_name(root, &F_ROOM, false, chat_valid_room_name, &r->room, err) < 0 ||
        get_name(root, &F_WITH, false, chat_valid_user_id, &r->with, err) < 0)
        return -1;
    if ((r->room == NULL) == (r->with == NULL))
        return fail(err, CHAT_ERR_BAD_REQUEST, "history needs exactly one of room or with");
    if (get_int(root, "before", 1, "before must be an integer >= 1", &r->has_before, &r->before,
                err) < 0 ||
        get_int(root, "after", 0, "after must be an integer >= 0", &r->has_after, &r->after, err) <
            0)
        return -1;
    if (r->has_before && r->has_after)
        return fail(err, CHAT_ERR_BAD_REQUEST, "history takes before or after, not both");
    return get_limit(root, CHAT_HISTORY_LIMIT_DEFAULT, r, err);
}

/* rooms: q (a name prefix), after (a name), limit. */
static int parse_rooms(json_t *root, struct chat_request *r, struct chat_parse_error *err)
{
    if (get_string(root, &F_Q, false, &r->q, NULL, err) < 0 ||
        get_name(root, &F_AFTER_ROOM, false, chat_valid_room_name, &r->after_room, err) < 0)
        return -1;
    if (r->q && (strlen(r->q) > CHAT_ROOM_MAX || has_control(r->q)))
        return fail(err, CHAT_ERR_BAD_REQUEST, "q must be a room name prefix");
    return get_limit(root, CHAT_ROOMS_LIMIT_DEFAULT, r, err);
}

static int parse_search(json_t *root, struct chat_request *r, struct chat_parse_error *err)
{
    size_t qlen;

    if (get_string(root, &F_Q, true, &r->q, &qlen, err) < 0 ||
        check_text_len(r->q, qlen, 1, CHAT_QUERY_MAX, &F_Q, "q is over 200 characters", err) < 0)
        return -1;
    if (get_name(root, &F_ROOM, false, chat_valid_room_name, &r->room, err) < 0 ||
        get_name(root, &F_USER, false, chat_valid_user_id, &r->user, err) < 0)
        return -1;
    if (get_int(root, "after", 0, "after must be an integer >= 0", &r->has_after, &r->after, err) <
            0 ||
        get_int(root, "before", 0, "before must be an integer >= 0", &r->has_before, &r->before,
                err) < 0)
        return -1;
    return 0;
}

/*
 * read, edit, delete, react: the conversation (room or with, exactly one), the
 * message's seq, and what the type adds.  The edit body's kind is the stored
 * message's, unknown here: the code limit is checked here, the text limit and
 * "no image" by message_edit.lua.
 */
static int parse_mark(json_t *root, struct chat_request *r, struct chat_parse_error *err)
{
    bool has_seq;
    size_t len;

    if (get_name(root, &F_ROOM, false, chat_valid_room_name, &r->room, err) < 0 ||
        get_name(root, &F_WITH, false, chat_valid_user_id, &r->with, err) < 0)
        return -1;
    if ((r->room == NULL) == (r->with == NULL))
        return fail(err, CHAT_ERR_BAD_REQUEST, "needs exactly one of room or with");
    int64_t min = r->type == CHAT_REQ_READ ? 0 : 1;
    const char *bad_seq = min ? "seq must be an integer >= 1" : "seq must be an integer >= 0";
    if (get_int(root, "seq", min, bad_seq, &has_seq, &r->seq, err) < 0)
        return -1;
    if (!has_seq)
        return fail(err, CHAT_ERR_BAD_REQUEST, "missing seq");
    if (r->seq > CHAT_SEQ_MAX)
        return fail(err, CHAT_ERR_BAD_REQUEST, bad_seq);
    switch (r->type) {
    case CHAT_REQ_EDIT:
        if (get_string(root, &F_BODY, true, &r->body, &r->body_len, err) < 0)
            return -1;
        return check_text_len(r->body, r->body_len, 1, CHAT_CODE_MAX, &F_BODY,
                              "body is over 20000 characters", err);
    case CHAT_REQ_REACT:
        if (get_string(root, &F_EMOJI, true, &r->emoji, &len, err) < 0)
            return -1;
        if (!chat_valid_emoji(r->emoji))
            return fail(err, CHAT_ERR_BAD_REQUEST, F_EMOJI.invalid);
        return 0;
    default:
        return 0;
    }
}

static int parse_fields(json_t *root, struct chat_request *r, struct chat_parse_error *err)
{
    size_t len;

    switch (r->type) {
    case CHAT_REQ_JOIN:
        if (get_name(root, &F_ROOM, true, chat_valid_room_name, &r->room, err) < 0)
            return -1;
        return get_int(root, "since", 0, "since must be an integer >= 0", &r->has_since, &r->since,
                       err);
    case CHAT_REQ_LEAVE:
    case CHAT_REQ_TYPING:
        return get_name(root, &F_ROOM, true, chat_valid_room_name, &r->room, err);
    case CHAT_REQ_MESSAGE:
        if (get_name(root, &F_ROOM, true, chat_valid_room_name, &r->room, err) < 0)
            return -1;
        return parse_content(root, r, err);
    case CHAT_REQ_PRIVATE:
        if (get_name(root, &F_TO, true, chat_valid_user_id, &r->to, err) < 0)
            return -1;
        return parse_content(root, r, err);
    case CHAT_REQ_HISTORY:
        return parse_history(root, r, err);
    case CHAT_REQ_SEARCH:
        return parse_search(root, r, err);
    case CHAT_REQ_CREATE_ROOM:
        if (get_name(root, &F_ROOM, true, chat_valid_room_name, &r->room, err) < 0 ||
            get_string(root, &F_TOPIC, false, &r->topic, &len, err) < 0)
            return -1;
        if (r->topic) {
            if (check_text_len(r->topic, len, 0, CHAT_TOPIC_MAX, &F_TOPIC,
                               "topic is over 200 characters", err) < 0)
                return -1;
            if (has_control(r->topic))
                return fail(err, CHAT_ERR_BAD_REQUEST, F_TOPIC.invalid);
        }
        return 0;
    case CHAT_REQ_BROADCAST:
        if (get_string(root, &F_BODY, true, &r->body, &r->body_len, err) < 0)
            return -1;
        r->kind = CHAT_KIND_TEXT;
        return check_text_len(r->body, r->body_len, 1, CHAT_TEXT_MAX, &F_BODY,
                              "body is over 4000 characters", err);
    case CHAT_REQ_ROOMS:
        return parse_rooms(root, r, err);
    case CHAT_REQ_USERS:
    case CHAT_REQ_PING:
        return 0;
    case CHAT_REQ_READ:
    case CHAT_REQ_EDIT:
    case CHAT_REQ_DELETE:
    case CHAT_REQ_REACT:
        return parse_mark(root, r, err);
    }
    return fail(err, CHAT_ERR_BAD_REQUEST, "unknown type");
}

/* The order of the checks is the contract of the errors (the id first, so
 * every later error carries it), hence one function. */
int chat_request_parse(const char *data, size_t len, struct chat_request *out,
                       struct chat_parse_error *err)
{
    json_error_t jerr;
    json_t *root = NULL;

    memset(out, 0, sizeof(*out));
    memset(err, 0, sizeof(*err));
    err->code = CHAT_ERR_BAD_REQUEST;
    err->message = "bad request";
    if (!data) {
        fail(err, CHAT_ERR_BAD_REQUEST, "malformed JSON");
        goto fail;
    }

    /* Duplicate keys would let a request mean two things to two readers.
     * \u0000 is parsed, and refused field by field, so that the error
     * carries the request's id. */
    root = json_loadb(data, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!root) {
        fail(err, CHAT_ERR_BAD_REQUEST, "malformed JSON");
        goto fail;
    }
    if (!json_is_object(root)) {
        fail(err, CHAT_ERR_BAD_REQUEST, "expected a JSON object");
        goto fail;
    }

    /* The id first, so that every later error can carry it back.  A
     * present but invalid id refuses the request: answered without an id,
     * the client could not tell which request it was about. */
    json_t *id = json_object_get(root, "id");
    if (id) {
        if (!json_is_string(id) || strlen(json_string_value(id)) != json_string_length(id) ||
            !chat_valid_request_id(json_string_value(id))) {
            fail(err, CHAT_ERR_BAD_REQUEST, "id must be a string of 1-64 characters");
            goto fail;
        }
        out->id = json_string_value(id);
        size_t n = strlen(out->id);
        if (n < sizeof(err->id))
            memcpy(err->id, out->id, n + 1);
    }

    json_t *type = json_object_get(root, "type");
    if (!type) {
        fail(err, CHAT_ERR_BAD_REQUEST, "missing type");
        goto fail;
    }
    if (!json_is_string(type) || strlen(json_string_value(type)) != json_string_length(type)) {
        fail(err, CHAT_ERR_BAD_REQUEST, "type must be a string");
        goto fail;
    }
    bool known = false;
    for (size_t i = 0; i < sizeof(req_types) / sizeof(req_types[0]); i++) {
        if (strcmp(json_string_value(type), req_types[i].name) == 0) {
            out->type = req_types[i].type;
            known = true;
            break;
        }
    }
    if (!known) {
        fail(err, CHAT_ERR_BAD_REQUEST, "unknown type");
        goto fail;
    }

    if (parse_fields(root, out, err) < 0)
        goto fail;
    out->root = root;
    return 0;

fail:
    json_decref(root);
    memset(out, 0, sizeof(*out));
    return -1;
}

void chat_request_deinit(struct chat_request *req)
{
    if (!req)
        return;
    json_decref(req->root);
    memset(req, 0, sizeof(*req));
}

const char *chat_request_type_name(enum chat_req_type type)
{
    for (size_t i = 0; i < sizeof(req_types) / sizeof(req_types[0]); i++)
        if (req_types[i].type == type)
            return req_types[i].name;
    return "unknown";
}
