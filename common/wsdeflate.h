#ifndef CHAT_WSDEFLATE_H
#define CHAT_WSDEFLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * permessage-deflate (RFC 7692), shared by the gateway (server side) and
 * libchat_client (client side): the Sec-WebSocket-Extensions negotiation and
 * the compression of one whole message with zlib.  No I/O; the z_streams are
 * the caller's, so a node can share one stream among all its connections
 * (no context takeover: every message starts from an empty window).
 */

struct z_stream_s;

/* What the client offers (libchat_client): no window kept on either side. */
#define CHAT_WSDEFLATE_OFFER "permessage-deflate; client_no_context_takeover"

/* The parameters in force on one connection, as negotiated. */
struct chat_wsdeflate {
    bool on;                         /* the extension was negotiated */
    bool server_no_context_takeover; /* the server compresses every message afresh */
    bool client_no_context_takeover; /* the client does */
    uint8_t server_max_window_bits;  /* 8..15: the server's compression window */
    uint8_t client_max_window_bits;  /* 8..15: the client's */
    bool server_bits_offered;        /* server_max_window_bits was in the offer: the answer
                                        repeats it, even at 15 (RFC 7692 7.1.2.1) */
};

/*
 * Server side.  offers is the Sec-WebSocket-Extensions value of the request
 * (several header lines joined with ", "), or NULL.  Takes the first
 * permessage-deflate offer whose parameters are valid and can be met; an
 * offer with an unknown, repeated or malformed parameter is skipped (RFC 7692
 * 5), never an error.  The answer always has server_no_context_takeover, and
 * client_no_context_takeover (7.1.1.1: a server may ask for it unasked)
 * unless client_context allows the client to keep its window, in which case
 * it has it only when the client offered it.  Returns true and fills *out
 * when one is accepted; false (out->on false) when none is.
 */
bool chat_wsdeflate_negotiate(const char *offers, bool client_context, struct chat_wsdeflate *out);

/* The Sec-WebSocket-Extensions value answering a negotiated *d into out;
 * 0, or -1 when outlen is too small. */
int chat_wsdeflate_response(const struct chat_wsdeflate *d, char *out, size_t outlen);

/*
 * Client side: the server's Sec-WebSocket-Extensions value (NULL when
 * absent).  0 with out->on telling whether permessage-deflate is in force;
 * -1 when the answer is not one the offer CHAT_WSDEFLATE_OFFER allows (an
 * unknown extension or parameter, a bad value), and the client must fail the
 * connection (RFC 7692 5.1).
 */
int chat_wsdeflate_parse_response(const char *value, struct chat_wsdeflate *out);

enum chat_wsdeflate_err {
    CHAT_WSDEFLATE_OK = 0,
    CHAT_WSDEFLATE_E_NOMEM = -1,
    CHAT_WSDEFLATE_E_DATA = -2,    /* not a valid deflate stream */
    CHAT_WSDEFLATE_E_TOO_BIG = -3, /* inflates past the limit */
};

/*
 * Inflates one message (its frames' payloads, concatenated) with zs, an
 * inflateInit2(-15) stream, reset first when fresh (the sender keeps no
 * context: server_no_context_takeover or client_no_context_takeover).  A
 * message that ends in a final block ends there; when not fresh, zs then
 * goes on into a new stream with the window kept.  Stops as soon as the output
 * passes max: a zip bomb costs max + 1 bytes, never what it would inflate to.
 * On OK *out is malloc'd (NUL-terminated, never NULL) with *outlen bytes.
 */
int chat_wsdeflate_inflate(struct z_stream_s *zs, bool fresh, const void *in, size_t len,
                           size_t max, char **out, size_t *outlen);

/*
 * Compresses one message with zs, a deflateInit2 raw stream that is reset
 * first, and drops the final 00 00 ff ff (RFC 7692 7.2.1).  On OK *out is
 * malloc'd with *outlen bytes.
 */
int chat_wsdeflate_deflate(struct z_stream_s *zs, const void *in, size_t len, char **out,
                           size_t *outlen);

#endif
