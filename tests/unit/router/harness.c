#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "dict.h"
#include "frame.h"
#include "harness.h"
#include "keys.h"
#include "metrics.h"
#include "router.h"
#include "router_internal.h"
#include "store.h"

static void on_deliver(void *owner, const struct gw_frame *f)
{
    struct h_client *c = owner;
    struct harness *h = c->h;
    ck_assert_uint_lt(h->nlog, H_MAX_DELIVERIES);
    /* The frame header must announce exactly the payload. */
    uint8_t header[10];
    size_t hl = gw_frame_header(header, f->len);
    ck_assert_uint_eq(hl, f->header_len);
    ck_assert_int_eq(memcmp(header, f->header, hl), 0);
    struct h_delivery *d = &h->log[h->nlog++];
    d->to = c;
    d->len = f->len;
    d->payload = malloc(f->len + 1);
    ck_assert_ptr_nonnull(d->payload);
    memcpy(d->payload, f->payload, f->len);
    d->payload[f->len] = '\0';
}

/* As a session does when its socket goes: the client detaches at once, from
 * inside the router's walk. */
static void on_close(void *owner, uint16_t code, const char *reason)
{
    (void)reason;
    struct h_client *c = owner;
    ck_assert_int_eq(c->close_code, 0);
    c->close_code = code;
    h_detach(c->h, c);
}

void h_init(struct harness *h)
{
    memset(h, 0, sizeof(*h));
    snprintf(h->prefix, sizeof(h->prefix), "chat:");
    snprintf(h->node_id, sizeof(h->node_id), "node-t");
    h->cfg.prefix = h->prefix;
    h->cfg.node_id = h->node_id;
    h->cfg.history = 200;
    h->ctx.cfg = &h->cfg;
    h->base = event_base_new();
    ck_assert_ptr_nonnull(h->base);
    h->ctx.base = h->base;
    h->ctx.metrics = gw_metrics_new();
    ck_assert_ptr_nonnull(h->ctx.metrics);
    h->bus = fake_bus_new();
    ck_assert_ptr_nonnull(h->bus);
    h->ctx.bus = h->bus;
    h->ctx.store = gw_store_new(&h->ctx);
    ck_assert_ptr_nonnull(h->ctx.store);
    h->ops.deliver = on_deliver;
    h->ops.close = on_close;
    h->router = gw_router_new(&h->ctx, &h->ops);
    ck_assert_ptr_nonnull(h->router);
    h->ctx.router = h->router;
    fake_bus_set_router(h->bus, h->router);
}

void h_run_timers(struct harness *h, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(h->base, &tv);
    event_base_dispatch(h->base);
}

void h_log_clear(struct harness *h)
{
    for (size_t i = 0; i < h->nlog; i++)
        free(h->log[i].payload);
    h->nlog = 0;
}

void h_fini(struct harness *h)
{
    for (size_t i = 0; i < h->nclients; i++)
        if (h->clients[i].c)
            h_detach(h, &h->clients[i]);
    ck_assert_uint_eq(gw_router_session_count(h->router), 0);
    /* Redis goes away: every repair in flight ends with a NULL reply, which
     * must release whatever it kept. */
    fake_bus_set_router(h->bus, NULL);
    while (fake_bus_pending(h->bus) > 0)
        fake_bus_answer(h->bus, fake_bus_cmd(h->bus, 0), NULL);
    ck_assert_uint_eq(fake_bus_live_channels(h->bus), 0);
    ck_assert_uint_eq(gw_dict_size(h->router->rooms), 0);
    ck_assert_uint_eq(gw_dict_size(h->router->users), 0);
    gw_router_free(h->router);
    gw_store_free(h->ctx.store);
    fake_bus_free(h->bus);
    gw_metrics_free(h->ctx.metrics);
    event_base_free(h->base);
    h_log_clear(h);
    for (size_t i = 0; i < h->nclients; i++)
        chat_identity_deinit(&h->clients[i].who);
}

struct h_client *h_attach(struct harness *h, const char *uid)
{
    ck_assert_uint_lt(h->nclients, H_MAX_CLIENTS);
    struct h_client *c = &h->clients[h->nclients];
    c->h = h;
    snprintf(c->who.id, sizeof(c->who.id), "%s", uid);
    snprintf(c->who.name, sizeof(c->who.name), "%s-name", uid);
    snprintf(c->label, sizeof(c->label), "%s#%zu", uid, h->nclients);
    c->c = NULL;
    c->close_code = 0;
    ck_assert(gw_router_attach(h->router, &c->who, c, &c->c, &c->first, NULL, NULL));
    ck_assert_ptr_nonnull(c->c);
    h->nclients++;
    if (c->first) {
        /* The user channel was subscribed; Redis confirms it.  The first
         * confirmation repairs (what was sent while the session was set up):
         * this user has no conversations yet, so its listing is empty. */
        char ch[GW_KEY_MAX], dms[GW_KEY_MAX];
        fake_bus_confirm(h->bus, h_user_channel(h, uid, ch, sizeof(ch)));
        ck_assert_ptr_nonnull(gw_key_user(dms, sizeof(dms), h->prefix, uid, "dms"));
        struct fake_cmd *list = fake_bus_find(h->bus, "SMEMBERS", dms);
        if (list)
            fake_bus_answer(h->bus, list, fake_reply_array(0));
    }
    return c;
}

void h_detach(struct harness *h, struct h_client *c)
{
    ck_assert_ptr_nonnull(c->c);
    gw_router_detach(h->router, c->c);
    c->c = NULL;
}

static void on_join_ready(bool ok, void *arg)
{
    struct h_join *j = arg;
    j->ready_calls++;
    j->ready_ok = ok;
}

void h_join(struct harness *h, struct h_client *c, const char *room, struct h_join *j)
{
    memset(j, 0, sizeof(*j));
    ck_assert(gw_router_join(h->router, c->c, room, &j->member, on_join_ready, j));
    ck_assert_ptr_nonnull(j->member);
    ck_assert(!gw_member_joined(j->member));
}

struct gw_member *h_join_full(struct harness *h, struct h_client *c, const char *room,
                              int64_t snapshot_seq)
{
    struct h_join j;
    h_join(h, c, room, &j);
    if (j.ready_calls == 0) {
        char ch[GW_KEY_MAX];
        fake_bus_confirm(h->bus, h_room_channel(h, room, ch, sizeof(ch)));
    }
    ck_assert_int_eq(j.ready_calls, 1);
    ck_assert(j.ready_ok);
    gw_router_join_done(h->router, j.member, snapshot_seq);
    ck_assert(gw_member_joined(j.member));
    return j.member;
}

const char *h_room_channel(struct harness *h, const char *room, char *buf, size_t len)
{
    const char *r = gw_key_room(buf, len, h->prefix, room, NULL);
    ck_assert_ptr_nonnull(r);
    return r;
}

const char *h_user_channel(struct harness *h, const char *uid, char *buf, size_t len)
{
    const char *r = gw_key_user(buf, len, h->prefix, uid, NULL);
    ck_assert_ptr_nonnull(r);
    return r;
}

const char *h_room_msg(char *buf, size_t len, const char *room, int64_t seq)
{
    int n = snprintf(buf, len,
                     "{\"type\":\"message\",\"room\":\"%s\",\"seq\":%lld,\"ts\":%lld,"
                     "\"from\":{\"id\":\"zed\",\"name\":\"zed\",\"avatar\":null},"
                     "\"kind\":\"text\",\"body\":\"m%lld\"}",
                     room, (long long)seq, 1764028800000LL + seq, (long long)seq);
    ck_assert(n > 0 && (size_t)n < len);
    return buf;
}

const char *h_private_msg(char *buf, size_t len, const char *from, const char *to, int64_t seq,
                          int64_t ts)
{
    int n = snprintf(buf, len,
                     "{\"type\":\"private\",\"seq\":%lld,\"ts\":%lld,"
                     "\"from\":{\"id\":\"%s\",\"name\":\"%s\",\"avatar\":null},"
                     "\"to\":{\"id\":\"%s\",\"name\":\"%s\",\"avatar\":null},"
                     "\"kind\":\"text\",\"body\":\"%s->%s #%lld\"}",
                     (long long)seq, (long long)ts, from, from, to, to, from, to, (long long)seq);
    ck_assert(n > 0 && (size_t)n < len);
    return buf;
}

void h_publish(struct harness *h, const char *channel, const char *payload)
{
    /* An exact-size copy, so an over-read shows under ASan. */
    size_t len = strlen(payload);
    char *copy = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, payload, len);
    gw_router_on_message(h->router, channel, strlen(channel), copy, len);
    free(copy);
}

void h_publish_room_msg(struct harness *h, const char *room, int64_t seq)
{
    char ch[GW_KEY_MAX], msg[512];
    h_publish(h, h_room_channel(h, room, ch, sizeof(ch)), h_room_msg(msg, sizeof(msg), room, seq));
}

struct redisReply *h_room_history(const char *room, int64_t current, int64_t first, int64_t last)
{
    size_t n = last >= first ? (size_t)(last - first + 1) : 0;
    redisReply *r = fake_reply_array(1 + n);
    r->element[0] = fake_reply_int(current);
    for (size_t i = 0; i < n; i++) {
        char msg[512];
        r->element[1 + i] = fake_reply_str(h_room_msg(msg, sizeof(msg), room, first + (int64_t)i));
    }
    return r;
}

const char *h_seqs(const struct harness *h, const struct h_client *c, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < h->nlog; i++) {
        const struct h_delivery *d = &h->log[i];
        if (d->to != c)
            continue;
        int64_t seq = gw_router_message_seq(d->payload, d->len);
        int n = seq >= 0
                    ? snprintf(buf + used, len - used, "%s%lld", used ? "," : "", (long long)seq)
                    : snprintf(buf + used, len - used, "%s-", used ? "," : "");
        ck_assert(n > 0 && (size_t)n < len - used);
        used += (size_t)n;
    }
    return buf;
}

size_t h_count(const struct harness *h, const struct h_client *c)
{
    size_t n = 0;
    for (size_t i = 0; i < h->nlog; i++)
        if (h->log[i].to == c)
            n++;
    return n;
}

size_t h_count_payload(const struct harness *h, const struct h_client *c, const char *payload)
{
    size_t n = 0;
    for (size_t i = 0; i < h->nlog; i++)
        if (h->log[i].to == c && strcmp(h->log[i].payload, payload) == 0)
            n++;
    return n;
}
