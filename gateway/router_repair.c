#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "bus.h"
#include "config.h"
#include "dict.h"
#include "frame.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "router.h"
#include "router_internal.h"
#include "store.h"

/* Repair of a room's lost pub/sub messages: a gap or a (re)subscription reads
 * history, delivers what is missing, then the live traffic held meanwhile; a
 * failed read is retried with backoff; a gap history cannot fill sends
 * resync; a seq below the live one means Redis lost the room and numbering
 * starts over. */

static void on_repair_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct room *room = arg;
    struct gw_router *r = room->router;
    room->repairing = false;
    if (room->nmembers == 0) {
        /* Nobody left to repair for. */
        if (room->pending_joins == 0)
            gw_router_room_backlog_clear(room);
        gw_router_room_maybe_free(r, room);
        return;
    }
    gw_router_start_repair(r, room);
}

/* The history read failed (Redis down, or it timed out): the held live
 * traffic stays held and the read is tried again, backing off up to 5 s,
 * rather than moving past a gap nobody filled. */
static bool repair_retry_later(struct gw_router *r, struct room *room)
{
    if (!room->retry)
        room->retry = evtimer_new(r->ctx->base, on_repair_retry, room);
    if (!room->retry)
        return false;
    room->retry_ms = room->retry_ms ? room->retry_ms * 2 : 100;
    if (room->retry_ms > 5000)
        room->retry_ms = 5000;
    gw_metrics_add(r->ctx->metrics, GW_M_REPAIR_RETRIES, 1);
    chat_log(CHAT_LOG_WARN, "gap_repair_retry room=%s in_ms=%d", room->name, room->retry_ms);
    struct timeval tv = {room->retry_ms / 1000, (room->retry_ms % 1000) * 1000};
    evtimer_add(room->retry, &tv);
    return true;
}

/* Messages between live_seq and the oldest one history still holds were
 * trimmed: no repair can deliver them, so the room's members are told to
 * resync (PROTOCOL.md `resync`: join again with `since`, or page history). */
static void room_resync(struct gw_router *r, struct room *room)
{
    char ev[128];
    int n = snprintf(ev, sizeof(ev), "{\"type\":\"resync\",\"room\":\"%s\"}", room->name);
    if (n < 0 || (size_t)n >= sizeof(ev))
        return;
    chat_log(CHAT_LOG_WARN, "resync room=%s after_seq=%lld", room->name, (long long)room->live_seq);
    gw_metrics_add(r->ctx->metrics, GW_M_RESYNCS, 1);
    gw_router_room_event(room, ev, (size_t)n, NULL, 0);
}

/* Redis came back without this room's data (no persistence): seqs start
 * again, so forget what we saw or new messages look old.  Everything in the
 * new history is new to a member whose last seq belongs to the old
 * numbering. */
static void repair_seq_reset(struct room *room, int64_t current)
{
    chat_log(CHAT_LOG_WARN, "seq_reset room=%s was=%lld now=%lld", room->name,
             (long long)room->live_seq, (long long)current);
    room->live_seq = 0;
    struct gw_member *m;
    LIST_FOREACH(m, &room->members, in_room)
    if (m->last_seq > current)
        m->last_seq = 0;
}

/* The lowest seq a joined member of the room was sent: a member that
 * joined later than the others may miss what they had (its snapshot read
 * before a message that others got live). */
static int64_t room_floor_seq(const struct room *room)
{
    int64_t floor = room->live_seq;
    const struct gw_member *m;
    LIST_FOREACH(m, &room->members, in_room)
    if (m->state == MEMBER_JOINED && m->last_seq < floor)
        floor = m->last_seq;
    return floor;
}

/* The read came back (seq, then history): delivers what the room's members
 * missed, in order, or tells them to resync when history cannot fill the
 * gap.  Returns the room's seq at the read. */
static int64_t repair_fill(struct gw_router *r, struct room *room, const redisReply *reply)
{
    const redisReply *cur = reply->element[0];
    int64_t current = cur->type == REDIS_REPLY_INTEGER ? cur->integer : 0;
    if (current < room->live_seq)
        repair_seq_reset(room, current);
    int64_t oldest = reply->elements > 1 && reply->element[1]->type == REDIS_REPLY_STRING
                         ? gw_router_message_seq(reply->element[1]->str, reply->element[1]->len)
                         : current + 1;
    if (room->synced && oldest > room->live_seq + 1 && current > room->live_seq)
        room_resync(r, room);
    int64_t floor = room_floor_seq(room);
    for (size_t i = 1; i < reply->elements; i++) {
        redisReply *e = reply->element[i];
        if (e->type != REDIS_REPLY_STRING)
            continue;
        int64_t seq = gw_router_message_seq(e->str, e->len);
        if (seq <= floor)
            continue;
        struct gw_frame_z z = {0};
        struct gw_frame f;
        gw_frame_text_shared(&f, &z, e->str, e->len);
        gw_router_deliver_seq(room, seq, &f);
        gw_frame_z_deinit(&z);
        if (seq > room->live_seq)
            room->live_seq = seq;
    }
    gw_metrics_add(r->ctx->metrics, GW_M_GAP_RECOVERIES, 1);
    return current;
}

static void on_repair_history(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct room *room = arg;
    struct gw_router *r = room->router;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements == 0) {
        if (room->nmembers > 0 && repair_retry_later(r, room))
            return;
    } else {
        room->retry_ms = 0;
    }
    bool read = reply && reply->type == REDIS_REPLY_ARRAY && reply->elements > 0;
    int64_t read_seq = read ? repair_fill(r, room, reply) : 0;
    if (room->repair_again) {
        /* The subscriber was away again while this read ran: read again
         * before the held live traffic goes out, or a gap would hide behind
         * a higher seq. */
        room->repair_again = false;
        room->repairing = false;
        gw_router_start_repair(r, room);
        if (room->repairing)
            return;
    }
    struct backlog_entry *e;
    STAILQ_FOREACH(e, &room->backlog, link)
    {
        if (read && e->seq > room->live_seq + 1 && e->seq > read_seq && room->nmembers > 0) {
            /* What lies below e was stored after this read and is not here
             * yet (--durability replica publishes once WAIT confirms, so
             * out of seq order): read again rather than deliver past it,
             * or it would be taken for a repeat when it comes. */
            room->repairing = false;
            gw_router_start_repair(r, room);
            if (room->repairing)
                return;
        }
        struct gw_frame_z z = {0};
        struct gw_frame f;
        gw_frame_text_shared(&f, &z, e->data, e->len);
        gw_router_deliver_seq(room, e->seq, &f);
        gw_frame_z_deinit(&z);
        if (e->seq > room->live_seq)
            room->live_seq = e->seq;
    }
    room->repairing = false;
    if (room->pending_joins == 0)
        gw_router_room_backlog_clear(room);
    gw_router_room_maybe_free(r, room);
}

void gw_router_start_repair(struct gw_router *r, struct room *room)
{
    if (room->repairing) {
        /* This repair's read may predate what was lost just now. */
        room->repair_again = true;
        return;
    }
    const char *prefix = r->ctx->cfg->prefix;
    char seq_key[GW_KEY_MAX], hist_key[GW_KEY_MAX];
    if (!gw_key_room(seq_key, sizeof(seq_key), prefix, room->name, "seq") ||
        !gw_key_room(hist_key, sizeof(hist_key), prefix, room->name, "history"))
        return;
    room->repairing = true;
    chat_log(CHAT_LOG_INFO, "gap_repair room=%s after_seq=%lld", room->name,
             (long long)room->live_seq);
    const char *argv[] = {seq_key, hist_key};
    gw_store_eval(r->ctx->store, "history_since", 2, 2, argv, NULL, on_repair_history, room);
}

void gw_router_on_subscribed(struct gw_router *r, const char *channel)
{
    struct room *room = gw_dict_get(r->rooms, channel);
    if (room) {
        if (room->synced)
            gw_router_start_repair(r, room);
        return;
    }
    struct user *u = gw_dict_get(r->users, channel);
    if (u)
        gw_router_user_subscribed(r, u);
}
