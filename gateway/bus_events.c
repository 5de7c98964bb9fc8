#include <stdbool.h>
#include <stdlib.h>

#include <event2/event.h>
#include <hiredis/async.h>

#include "bus_internal.h"
#include "gateway.h"

/*
 * hiredis on libevent, written the way conn.c writes to clients.  hiredis's
 * own libevent adapter registers a one-shot read event, so every reply costs
 * an EPOLL_CTL_DEL and an EPOLL_CTL_ADD, and every command adds EV_WRITE and
 * removes it after the write: four epoll_ctl and an extra loop pass per
 * command and reply.  Here the read event persists, and a command only
 * activates an event that writes in the loop pass after this one's (the
 * lowest priority), once for all the commands of the turn.  EV_WRITE is
 * polled only while connecting (hiredis learns of the connection from it)
 * and while the kernel does not take everything.
 */

struct bus_events {
    redisAsyncContext *ac;
    struct event *read;  /* EV_READ | EV_PERSIST */
    struct event *write; /* EV_WRITE | EV_PERSIST: connecting, or the kernel refused */
    struct event *flush; /* activated: write in the pass after this one (lowest priority) */
    bool reading;
    bool polling; /* write is pending */
};

/* The context whose write is on the stack: when hiredis asks it for more
 * writing, the kernel did not take everything.  hiredis may free the context
 * (and these events) inside that write, so the callbacks below leave the
 * events alone once it returns. */
static redisAsyncContext *writing_now;

static void handle_write(redisAsyncContext *ac)
{
    redisAsyncContext *outer = writing_now;
    writing_now = ac;
    redisAsyncHandleWrite(ac);
    writing_now = outer;
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct bus_events *e = arg;
    redisAsyncHandleRead(e->ac);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct bus_events *e = arg;
    handle_write(e->ac);
}

static void add_read(void *data)
{
    struct bus_events *e = data;
    if (e->reading)
        return;
    e->reading = true;
    event_add(e->read, NULL);
}

static void del_read(void *data)
{
    struct bus_events *e = data;
    if (!e->reading)
        return;
    e->reading = false;
    event_del(e->read);
}

static void add_write(void *data)
{
    struct bus_events *e = data;
    if (e->polling)
        return;
    if (!(e->ac->c.flags & REDIS_CONNECTED) || writing_now == e->ac) {
        e->polling = true;
        event_add(e->write, NULL);
        return;
    }
    event_active(e->flush, EV_WRITE, 0);
}

static void del_write(void *data)
{
    struct bus_events *e = data;
    if (!e->polling)
        return;
    e->polling = false;
    event_del(e->write);
}

static void cleanup(void *data)
{
    struct bus_events *e = data;
    event_free(e->read);
    event_free(e->write);
    event_free(e->flush);
    free(e);
}

bool gw_bus_events_attach(redisAsyncContext *ac, struct event_base *base)
{
    struct bus_events *e = calloc(1, sizeof(*e));
    if (!e)
        return false;
    e->ac = ac;
    int fd = ac->c.fd;
    e->read = event_new(base, fd, EV_READ | EV_PERSIST, on_readable, e);
    e->write = event_new(base, fd, EV_WRITE | EV_PERSIST, on_writable, e);
    e->flush = event_new(base, -1, 0, on_writable, e);
    if (!e->read || !e->write || !e->flush) {
        if (e->read)
            event_free(e->read);
        if (e->write)
            event_free(e->write);
        if (e->flush)
            event_free(e->flush);
        free(e);
        return false;
    }
    /* Below the fan-out's writes (gateway.h); a base without priorities
     * (unit tests) keeps the one it has. */
    event_priority_set(e->flush, GW_EVENT_PRIORITY_LAST);
    ac->ev.data = e;
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    ac->ev.cleanup = cleanup;
    /* What hiredis's own adapter does on attach: wait for the connection to
     * complete (writable) and for anything it sends (readable). */
    add_read(e);
    add_write(e);
    return true;
}
