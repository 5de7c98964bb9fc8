#ifndef CHAT_PROTOCOL_H
#define CHAT_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The WebSocket message protocol of PROTOCOL.md section 4: validation of
 * names, kinds and sizes, and parsing of client requests (jansson).  No I/O.
 * Lengths are Unicode code points unless a name says _BYTES.
 */

typedef struct json_t json_t; /* jansson; forward-declared to keep it out of users */

#define CHAT_ROOM_MAX 32
#define CHAT_REQ_ID_MAX 64
#define CHAT_TEXT_MAX 4000
#define CHAT_CODE_MAX 20000
#define CHAT_LANG_MAX 32
#define CHAT_TOPIC_MAX 200
#define CHAT_QUERY_MAX 200
#define CHAT_HISTORY_LIMIT_MAX 200
#define CHAT_HISTORY_LIMIT_DEFAULT 50
#define CHAT_ROOMS_LIMIT_DEFAULT 200
#define CHAT_EMOJI_MAX 16
/* Largest seq a request may name: Lua reads at most 15 digits exactly. */
#define CHAT_SEQ_MAX 999999999999999LL

enum chat_req_type {
    CHAT_REQ_JOIN,
    CHAT_REQ_LEAVE,
    CHAT_REQ_MESSAGE,
    CHAT_REQ_PRIVATE,
    CHAT_REQ_HISTORY,
    CHAT_REQ_SEARCH,
    CHAT_REQ_ROOMS,
    CHAT_REQ_CREATE_ROOM,
    CHAT_REQ_USERS,
    CHAT_REQ_TYPING,
    CHAT_REQ_BROADCAST,
    CHAT_REQ_PING,
    CHAT_REQ_READ,
    CHAT_REQ_EDIT,
    CHAT_REQ_DELETE,
    CHAT_REQ_REACT,
};

enum chat_kind { CHAT_KIND_TEXT, CHAT_KIND_CODE, CHAT_KIND_IMAGE };

/* Error codes of section 4, in the order of the table. */
enum chat_err {
    CHAT_ERR_NONE = 0,
    CHAT_ERR_BAD_REQUEST,
    CHAT_ERR_UNAUTHORIZED,
    CHAT_ERR_FORBIDDEN,
    CHAT_ERR_NOT_FOUND,
    CHAT_ERR_NOT_MEMBER,
    CHAT_ERR_CONFLICT,
    CHAT_ERR_TOO_LARGE,
    CHAT_ERR_RATE_LIMITED,
    CHAT_ERR_UNAVAILABLE,
    CHAT_ERR_INTERNAL,
    CHAT_ERR_LIMIT, /* a cap is reached (rooms, reactions on one message) */
};

/* "bad_request", "not_member" ... ; "internal" for anything unknown. */
const char *chat_err_code(enum chat_err err);

/*
 * A parsed, validated client request.  Every const char * points into `root`
 * (owned by the request, released by chat_request_deinit) and is NULL when the
 * field is absent.  Fields not used by the type are NULL / false / 0.
 */
struct chat_request {
    enum chat_req_type type;
    const char *id;   /* valid request id, or NULL (an invalid id refuses the request) */
    const char *room; /* join, leave, message, history, search (filter), create_room, typing */
    const char *after_room; /* rooms: list the names after this one */
    const char *to;         /* private: recipient user id */
    const char *with;       /* history: the other user id of a private conversation */
    enum chat_kind kind;    /* message, private */
    const char *kind_name;  /* "text" / "code" / "image" */
    const char *body;       /* message, private, broadcast */
    size_t body_len;        /* bytes */
    const char *lang;       /* message, private with kind code (ignored otherwise) */
    const char *topic;      /* create_room */
    const char *q;          /* search; rooms: name prefix (NULL: all) */
    const char *user;       /* search: sender id filter */
    bool has_since;         /* join */
    int64_t since;          /*   >= 0 */
    bool has_before;        /* history: seq >= 1; search: ms >= 0 */
    int64_t before;
    bool has_after; /* search: ms >= 0; history: seq >= 0 */
    int64_t after;
    int limit;         /* history: 1..200, default 50; rooms: 1..200, default 200 */
    int64_t seq;       /* read: >= 0; edit, delete, react: >= 1 (room or with names the
                          conversation, exactly one; edit's new text is body) */
    const char *emoji; /* react: 1-16 code points without control characters */
    json_t *root;
};

/* Why a request was refused; message is a static string fit for the client. */
struct chat_parse_error {
    enum chat_err code;               /* CHAT_ERR_BAD_REQUEST or CHAT_ERR_TOO_LARGE */
    const char *message;              /* e.g. "room must be 1-32 of a-z 0-9 _ -" */
    char id[CHAT_REQ_ID_MAX * 4 + 1]; /* the request's id when it had a valid one, else "" */
};

/*
 * Parses one text frame (data need not be NUL-terminated; it is valid UTF-8,
 * wslay checked that).  Validates the type, the id and every field the type
 * uses, per section 4: names, kinds, body limits (text 4000, code 20000 code
 * points, lang 32; image a data URL of png/jpeg/gif/webp with base64 payload),
 * numbers (integers in range).  Returns 0 and fills *out (caller calls
 * chat_request_deinit), or -1 and fills *err (nothing to free).
 */
int chat_request_parse(const char *data, size_t len, struct chat_request *out,
                       struct chat_parse_error *err);
void chat_request_deinit(struct chat_request *req);

/* The value of a hex digit (0-9, a-f, A-F), or -1. */
int chat_hexval(char c);

/* Code points in s[0..len), or -1 when it is not valid UTF-8 (overlongs,
 * surrogates and values above U+10FFFF are invalid). */
long chat_utf8_count(const char *s, size_t len);

/* Validators of section 3 and 4; all take NUL-terminated strings, NULL is invalid. */
bool chat_valid_user_id(const char *s);    /* 1-64 of A-Z a-z 0-9 _ - */
bool chat_valid_nickname(const char *s);   /* 1-32 code points, no control characters
                                              (C0, DEL, C1), no leading/trailing space
                                              (nor NBSP, ideographic or zero-width space) */
bool chat_valid_avatar(const char *s);     /* valid UTF-8, at most 2048 code points, no C0 */
bool chat_valid_room_name(const char *s);  /* 1-32 of a-z 0-9 _ -, first a letter or digit */
bool chat_valid_request_id(const char *s); /* 1-64 code points, valid UTF-8, no control chars */
/* A reaction: 1-16 code points of valid UTF-8 without control characters. */
bool chat_valid_emoji(const char *s);
bool chat_valid_image_url(const char *s, size_t len); /* data:image/(png|jpeg|gif|webp);base64,
                                                         non-empty base64 */

/* The rooms that exist from the start (PROTOCOL.md: general, random, tech), with
 * their topics: the gateway creates them, they never expire, and chat-admin
 * refuses to delete them. */
struct chat_default_room {
    const char *name;
    const char *topic;
};
#define CHAT_DEFAULT_ROOMS 3
extern const struct chat_default_room chat_default_rooms[CHAT_DEFAULT_ROOMS];
bool chat_is_default_room(const char *room);

/* Lowercases a nickname for the chat:nick: key: simple case folding of ASCII,
 * Latin-1, Latin Extended-A, Greek (final sigma folds to sigma) and Cyrillic,
 * done by hand so that it is the same on every node whatever the locale; other
 * code points are kept.  The result is written to out (outlen bytes,
 * NUL-terminated; never longer than the input).  0, or -1 on invalid UTF-8 or
 * a short buffer. */
int chat_nick_fold(const char *nick, char *out, size_t outlen);

/* The wire name of a request type ("join", "message" ...): a static string. */
const char *chat_request_type_name(enum chat_req_type type);

#endif
