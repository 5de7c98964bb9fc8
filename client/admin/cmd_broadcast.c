/*
 * chat-admin broadcast: one WebSocket connection as an admin identity made
 * from the secret; after the welcome, one broadcast request, then its ack or
 * error, then the closing handshake.
 */
#include "admin.h"
#include "chat_client.h"
#include "token.h"

#include <event2/event.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BROADCAST_REQ_ID "admin-broadcast-1"
#define BROADCAST_CLOSE_WAIT_MS 2000

enum broadcast_state { BC_CONNECTING, BC_WAITING_ACK, BC_CLOSING, BC_DONE };

struct broadcast {
    const struct admin_options *o;
    struct event_base *base;
    struct chat_client *client;
    struct event *deadline;
    enum broadcast_state state;
    int rc;
    char why[512]; /* the failure, printed once the loop ends */
};

static void finish(struct broadcast *b, int rc)
{
    b->rc = rc;
    b->state = BC_DONE;
    event_base_loopexit(b->base, NULL);
}

static void fail(struct broadcast *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(struct broadcast *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->why, sizeof(b->why), fmt, ap);
    va_end(ap);
    finish(b, ADMIN_EXIT_FAIL);
}

static void send_broadcast(struct broadcast *b)
{
    json_t *req = json_pack("{s:s, s:s, s:s}", "type", "broadcast", "id", BROADCAST_REQ_ID, "body",
                            b->o->text);
    char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!text || chat_client_send_text(b->client, text, strlen(text)) != 0)
        fail(b, "cannot send the broadcast");
    else
        b->state = BC_WAITING_ACK;
    free(text);
}

static void on_message(struct chat_client *c, bool binary, const char *data, size_t len, void *arg)
{
    struct broadcast *b = arg;
    (void)c;
    if (binary || b->state == BC_DONE)
        return;
    json_t *msg = json_loadb(data, len, 0, NULL);
    const char *type = json_string_value(json_object_get(msg, "type"));
    const char *id = json_string_value(json_object_get(msg, "id"));
    bool ours = id && strcmp(id, BROADCAST_REQ_ID) == 0;

    if (!type) {
        /* not ours to judge */
    } else if (b->state == BC_CONNECTING && strcmp(type, "welcome") == 0) {
        send_broadcast(b);
    } else if (b->state == BC_WAITING_ACK && ours && strcmp(type, "ack") == 0) {
        struct timeval tv = {BROADCAST_CLOSE_WAIT_MS / 1000,
                             (BROADCAST_CLOSE_WAIT_MS % 1000) * 1000};
        b->rc = ADMIN_EXIT_OK;
        b->state = BC_CLOSING;
        evtimer_add(b->deadline, &tv);
        chat_client_close(b->client, 1000, "done");
    } else if (ours && strcmp(type, "error") == 0) {
        const char *code = json_string_value(json_object_get(msg, "code"));
        const char *why = json_string_value(json_object_get(msg, "message"));
        fail(b, "the gateway refused the broadcast: %s (%s)", why ? why : "no reason",
             code ? code : "error");
    }
    json_decref(msg);
}

static void on_event(struct chat_client *c, enum chat_client_event ev, int code, void *arg)
{
    struct broadcast *b = arg;
    (void)c;
    if (b->state == BC_DONE)
        return;
    if (ev == CHAT_CLIENT_REFUSED) {
        if (code == 0)
            fail(b, "cannot connect to %s", b->o->url);
        else if (code == 401)
            fail(b, "%s refused the token (HTTP 401): is --jwt-secret the gateways' secret?",
                 b->o->url);
        else
            fail(b, "%s refused the WebSocket upgrade: HTTP %d", b->o->url, code);
    } else if (ev == CHAT_CLIENT_CLOSED) {
        if (b->state == BC_CLOSING)
            finish(b, ADMIN_EXIT_OK);
        else if (code == 4009)
            fail(b, "the name '%s' is held by another online user; pick another with --name",
                 b->o->name);
        else
            fail(b, "the gateway closed the connection before the ack (code %d)", code);
    }
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct broadcast *b = arg;
    (void)fd;
    (void)what;
    if (b->state == BC_CLOSING) {
        /* Acked: the closing handshake is a courtesy. */
        finish(b, ADMIN_EXIT_OK);
        return;
    }
    fail(b, "no %s from %s within %d s", b->state == BC_CONNECTING ? "welcome" : "ack", b->o->url,
         b->o->timeout_ms / 1000);
}

int admin_cmd_broadcast(const struct admin_options *o)
{
    struct broadcast b = {.o = o, .rc = ADMIN_EXIT_FAIL};
    struct chat_identity who = {.admin = true, .avatar = (char *)o->avatar};
    int64_t now = admin_now_ms() / 1000;
    char *token = NULL;

    /* libevent writes do not block SIGPIPE (chat_client.h). */
    signal(SIGPIPE, SIG_IGN);
    snprintf(who.id, sizeof(who.id), "%s", o->user_id);
    snprintf(who.name, sizeof(who.name), "%s", o->name);
    token = chat_token_issue(o->secret, strlen(o->secret), &who, now, ADMIN_BROADCAST_TTL);
    if (!token)
        return admin_fail("cannot issue the admin token");
    b.base = event_base_new();
    b.deadline = b.base ? evtimer_new(b.base, on_deadline, &b) : NULL;
    if (!b.deadline) {
        admin_fail("out of memory");
        goto done;
    }
    struct chat_client_options copts = {
        .url = o->url, .token = token, .on_message = on_message, .on_event = on_event, .arg = &b};
    b.client = chat_client_new(b.base, &copts);
    if (!b.client) {
        admin_fail("bad --url '%s' (ws://host:port/path)", o->url);
        goto done;
    }
    struct timeval tv = {o->timeout_ms / 1000, (o->timeout_ms % 1000) * 1000};
    evtimer_add(b.deadline, &tv);
    event_base_dispatch(b.base);
    if (b.state != BC_DONE) {
        admin_fail("event loop ended early");
        b.rc = ADMIN_EXIT_FAIL;
    } else if (b.rc != ADMIN_EXIT_OK) {
        admin_fail("%s", b.why);
    } else if (o->json) {
        b.rc = admin_print_json(json_pack("{s:b, s:s, s:{s:s, s:s}}", "ok", 1, "body", o->text,
                                          "from", "id", who.id, "name", who.name));
    } else {
        printf("broadcast sent as %s (%s)\n", who.name, who.id);
    }

done:
    chat_client_free(b.client);
    if (b.deadline)
        event_free(b.deadline);
    if (b.base)
        event_base_free(b.base);
    free(token);
    return b.rc;
}
