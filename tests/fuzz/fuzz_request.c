/*
 * chat_request_parse (common/protocol.c) on arbitrary frames.  Beyond "no
 * sanitizer report" it checks that whatever the parser accepts satisfies the
 * validators of the same module (section 4 of PROTOCOL.md), that fields a type
 * does not use stay NULL, that an error is well formed, and that the accepted
 * JSON re-serialised by jansson parses to the same request.
 */
#include <jansson.h>

#include "fuzz.h"
#include "protocol.h"

static long cps(const char *s)
{
    return chat_utf8_count(s, strlen(s));
}

static bool no_control(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f || (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f))
            return false;
    }
    return true;
}

static void check_content(const struct chat_request *r)
{
    static const char *const names[] = {"text", "code", "image"};
    FUZZ_CHECK(r->kind_name != NULL && r->body != NULL);
    FUZZ_CHECK((unsigned)r->kind <= CHAT_KIND_IMAGE);
    FUZZ_CHECK(strcmp(r->kind_name, names[r->kind]) == 0);
    FUZZ_CHECK(strlen(r->body) == r->body_len); /* no \u0000 gets through */
    long n = chat_utf8_count(r->body, r->body_len);
    switch (r->kind) {
    case CHAT_KIND_TEXT:
        FUZZ_CHECK(n >= 1 && n <= CHAT_TEXT_MAX);
        FUZZ_CHECK(r->lang == NULL);
        break;
    case CHAT_KIND_CODE:
        FUZZ_CHECK(n >= 1 && n <= CHAT_CODE_MAX);
        if (r->lang) {
            long l = cps(r->lang);
            FUZZ_CHECK(l >= 1 && l <= CHAT_LANG_MAX);
            FUZZ_CHECK(no_control(r->lang));
        }
        break;
    case CHAT_KIND_IMAGE:
        FUZZ_CHECK(chat_valid_image_url(r->body, r->body_len));
        FUZZ_CHECK(r->lang == NULL);
        break;
    }
}

/* Which optional pointer fields each type may set. */
enum { F_ROOM = 1, F_TO = 2, F_WITH = 4, F_CONTENT = 8, F_TOPIC = 16, F_Q = 32, F_USER = 64 };

static void check_unused(const struct chat_request *r, unsigned allowed)
{
    if (!(allowed & F_ROOM))
        FUZZ_CHECK(r->room == NULL);
    if (!(allowed & F_TO))
        FUZZ_CHECK(r->to == NULL);
    if (!(allowed & F_WITH))
        FUZZ_CHECK(r->with == NULL);
    if (!(allowed & F_CONTENT)) {
        FUZZ_CHECK(r->kind_name == NULL && r->lang == NULL);
        if (r->type != CHAT_REQ_BROADCAST)
            FUZZ_CHECK(r->body == NULL && r->body_len == 0);
    }
    if (!(allowed & F_TOPIC))
        FUZZ_CHECK(r->topic == NULL);
    if (!(allowed & F_Q))
        FUZZ_CHECK(r->q == NULL);
    if (!(allowed & F_USER))
        FUZZ_CHECK(r->user == NULL);
    if (r->type != CHAT_REQ_JOIN)
        FUZZ_CHECK(!r->has_since && r->since == 0);
    if (r->type != CHAT_REQ_HISTORY && r->type != CHAT_REQ_SEARCH)
        FUZZ_CHECK(!r->has_before && r->before == 0);
    /* section 4 also gives history an `after` and rooms `q`, `after` and
     * `limit`: tolerated there, should the parser learn them */
    if (r->type != CHAT_REQ_SEARCH && r->type != CHAT_REQ_HISTORY && r->type != CHAT_REQ_ROOMS)
        FUZZ_CHECK(!r->has_after && r->after == 0);
    if (r->type != CHAT_REQ_HISTORY && r->type != CHAT_REQ_ROOMS)
        FUZZ_CHECK(r->limit == 0);
    if (r->limit)
        FUZZ_CHECK(r->limit >= 1 && r->limit <= CHAT_HISTORY_LIMIT_MAX);
    if (r->has_after)
        FUZZ_CHECK(r->after >= 0);
}

static void check_request(const struct chat_request *r)
{
    FUZZ_CHECK(r->root != NULL);
    FUZZ_CHECK(r->id == NULL || chat_valid_request_id(r->id));
    switch (r->type) {
    case CHAT_REQ_JOIN:
        FUZZ_CHECK(chat_valid_room_name(r->room));
        FUZZ_CHECK(r->has_since ? r->since >= 0 : r->since == 0);
        check_unused(r, F_ROOM);
        break;
    case CHAT_REQ_LEAVE:
    case CHAT_REQ_TYPING:
        FUZZ_CHECK(chat_valid_room_name(r->room));
        check_unused(r, F_ROOM);
        break;
    case CHAT_REQ_MESSAGE:
        FUZZ_CHECK(chat_valid_room_name(r->room));
        check_content(r);
        check_unused(r, F_ROOM | F_CONTENT);
        break;
    case CHAT_REQ_PRIVATE:
        FUZZ_CHECK(chat_valid_user_id(r->to));
        check_content(r);
        check_unused(r, F_TO | F_CONTENT);
        break;
    case CHAT_REQ_HISTORY:
        FUZZ_CHECK((r->room != NULL) != (r->with != NULL));
        FUZZ_CHECK(!r->room || chat_valid_room_name(r->room));
        FUZZ_CHECK(!r->with || chat_valid_user_id(r->with));
        FUZZ_CHECK(r->limit >= 1 && r->limit <= CHAT_HISTORY_LIMIT_MAX);
        FUZZ_CHECK(r->has_before ? r->before >= 1 : r->before == 0);
        check_unused(r, F_ROOM | F_WITH);
        break;
    case CHAT_REQ_SEARCH: {
        FUZZ_CHECK(r->q != NULL);
        long n = cps(r->q);
        FUZZ_CHECK(n >= 1 && n <= CHAT_QUERY_MAX);
        FUZZ_CHECK(!r->room || chat_valid_room_name(r->room));
        FUZZ_CHECK(!r->user || chat_valid_user_id(r->user));
        FUZZ_CHECK(r->has_before ? r->before >= 0 : r->before == 0);
        FUZZ_CHECK(r->has_after ? r->after >= 0 : r->after == 0);
        check_unused(r, F_ROOM | F_Q | F_USER);
        break;
    }
    case CHAT_REQ_CREATE_ROOM:
        FUZZ_CHECK(chat_valid_room_name(r->room));
        if (r->topic) {
            long n = cps(r->topic);
            FUZZ_CHECK(n >= 0 && n <= CHAT_TOPIC_MAX);
            FUZZ_CHECK(no_control(r->topic));
        }
        check_unused(r, F_ROOM | F_TOPIC);
        break;
    case CHAT_REQ_BROADCAST: {
        FUZZ_CHECK(r->body != NULL && strlen(r->body) == r->body_len);
        long n = chat_utf8_count(r->body, r->body_len);
        FUZZ_CHECK(n >= 1 && n <= CHAT_TEXT_MAX);
        check_unused(r, 0);
        break;
    }
    case CHAT_REQ_ROOMS:
        FUZZ_CHECK(!r->q || cps(r->q) >= 0);
        check_unused(r, F_Q | F_ROOM);
        break;
    case CHAT_REQ_USERS:
    case CHAT_REQ_PING:
        check_unused(r, 0);
        break;
    case CHAT_REQ_READ:
    case CHAT_REQ_EDIT:
    case CHAT_REQ_DELETE:
    case CHAT_REQ_REACT:
        /* one conversation: a room or a peer, never both */
        FUZZ_CHECK((r->room == NULL) != (r->with == NULL));
        FUZZ_CHECK(!r->room || chat_valid_room_name(r->room));
        FUZZ_CHECK(!r->with || chat_valid_user_id(r->with));
        FUZZ_CHECK(r->seq >= (r->type == CHAT_REQ_READ ? 0 : 1));
        FUZZ_CHECK(r->type == CHAT_REQ_REACT ? r->emoji && cps(r->emoji) >= 1 : !r->emoji);
        FUZZ_CHECK(r->type == CHAT_REQ_EDIT ? r->body != NULL : r->body == NULL);
        check_unused(r, F_ROOM | F_WITH | (r->type == CHAT_REQ_EDIT ? F_CONTENT : 0));
        break;
    default:
        FUZZ_CHECK(!"unknown request type");
    }
}

static void check_error(const struct chat_parse_error *e)
{
    FUZZ_CHECK(e->code == CHAT_ERR_BAD_REQUEST || e->code == CHAT_ERR_TOO_LARGE);
    FUZZ_CHECK(e->message != NULL && e->message[0] != '\0');
    FUZZ_CHECK(memchr(e->id, '\0', sizeof(e->id)) != NULL);
    FUZZ_CHECK(e->id[0] == '\0' || chat_valid_request_id(e->id));
}

static bool same_str(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

/* The request jansson re-serialises must mean the same thing. */
static void check_reparse(const struct chat_request *r)
{
    char *text = json_dumps(r->root, JSON_COMPACT);
    FUZZ_CHECK(text != NULL);
    struct chat_request r2;
    struct chat_parse_error e2;
    int rc = chat_request_parse(text, strlen(text), &r2, &e2);
    FUZZ_CHECK(rc == 0);
    FUZZ_CHECK(r2.type == r->type && r2.kind == r->kind);
    FUZZ_CHECK(same_str(r2.id, r->id) && same_str(r2.room, r->room) && same_str(r2.to, r->to) &&
               same_str(r2.with, r->with) && same_str(r2.body, r->body) &&
               same_str(r2.lang, r->lang) && same_str(r2.topic, r->topic) && same_str(r2.q, r->q) &&
               same_str(r2.user, r->user));
    FUZZ_CHECK(r2.body_len == r->body_len && r2.since == r->since && r2.before == r->before &&
               r2.after == r->after && r2.limit == r->limit);
    chat_request_deinit(&r2);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct chat_request r;
    struct chat_parse_error e;
    char *frame = fuzz_memdup(data, size); /* not NUL-terminated, like a wslay message */

    if (chat_request_parse(frame, size, &r, &e) == 0) {
        check_request(&r);
        check_reparse(&r);
    } else {
        check_error(&e);
        FUZZ_CHECK(r.root == NULL && r.id == NULL && r.room == NULL && r.body == NULL);
        FUZZ_CHECK(strcmp(chat_err_code(e.code), "internal") != 0);
    }
    chat_request_deinit(&r);
    chat_request_deinit(&r); /* idempotent */
    free(frame);
    return 0;
}
