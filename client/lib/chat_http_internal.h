#ifndef CHAT_HTTP_INTERNAL_H
#define CHAT_HTTP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Pieces of libchat_client shared by the WebSocket client and the blocking
 * HTTP helpers, exposed so tests can check them without a network.
 */

/* A parsed ws:// or http:// URL.  Every string is malloc'd. */
struct chat_url {
    char *host;        /* without brackets: "::1", "127.0.0.1", "localhost" */
    char *port;        /* decimal, 1-65535 */
    char *path;        /* path and query, always starting with '/' */
    char *host_header; /* "host:port", "[::1]:port" */
};

/* Parses url (ws:// or http://, port defaults to 80).  Rejects other schemes,
 * empty hosts, bad ports and any byte that could break a request line (space,
 * control characters).  0, or -1 with *out zeroed. */
int chat_url_parse(const char *url, struct chat_url *out);
void chat_url_deinit(struct chat_url *u);

/* Status code of a response head ("HTTP/1.x NNN ..."), or -1. */
int chat_http_head_status(const char *head);

/* Finds header `name` (case-insensitive) in a NUL-terminated response head
 * and copies its value, trimmed, into out.  False when absent or too long. */
bool chat_http_head_value(const char *head, const char *name, char *out, size_t out_size);

/* Length of the head including the blank line, or 0 while incomplete. */
size_t chat_http_head_length(const char *buf, size_t len);

/* Decodes a chunked body in place; returns the decoded length or -1. */
long chat_http_dechunk(char *body, size_t len);

/* True for a string without CR, LF or other control characters, so it can be
 * placed in a header value. */
bool chat_http_safe_value(const char *s);

#endif
