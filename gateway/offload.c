#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>

#include "offload.h"

STAILQ_HEAD(job_queue, gw_offload_job);

struct gw_offload {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct job_queue todo; /* under lock */
    struct job_queue done; /* under lock */
    bool stopping;         /* under lock */
    int notify[2];         /* the worker writes a byte when done was empty */
    struct event *on_notify;
};

static void *worker(void *arg)
{
    struct gw_offload *o = arg;
    pthread_mutex_lock(&o->lock);
    for (;;) {
        while (!o->stopping && STAILQ_EMPTY(&o->todo))
            pthread_cond_wait(&o->wake, &o->lock);
        if (o->stopping)
            break;
        struct gw_offload_job *job = STAILQ_FIRST(&o->todo);
        STAILQ_REMOVE_HEAD(&o->todo, link);
        pthread_mutex_unlock(&o->lock);
        job->work(job);
        pthread_mutex_lock(&o->lock);
        bool was_empty = STAILQ_EMPTY(&o->done);
        STAILQ_INSERT_TAIL(&o->done, job, link);
        if (was_empty) {
            char byte = 1;
            if (write(o->notify[1], &byte, 1) < 0) {
                /* Full pipe: a wakeup is already pending, all we need. */
            }
        }
    }
    pthread_mutex_unlock(&o->lock);
    return NULL;
}

/* Reports finished jobs; a done callback may submit more. */
static void report_done(struct gw_offload *o)
{
    struct job_queue ready = STAILQ_HEAD_INITIALIZER(ready);
    pthread_mutex_lock(&o->lock);
    STAILQ_CONCAT(&ready, &o->done);
    pthread_mutex_unlock(&o->lock);
    while (!STAILQ_EMPTY(&ready)) {
        struct gw_offload_job *job = STAILQ_FIRST(&ready);
        STAILQ_REMOVE_HEAD(&ready, link);
        job->done(job, false);
    }
}

static void on_notify(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    char buf[64];
    while (read(fd, buf, sizeof(buf)) > 0) {
    }
    report_done(arg);
}

struct gw_offload *gw_offload_new(struct event_base *base)
{
    struct gw_offload *o = calloc(1, sizeof(*o));
    if (!o)
        return NULL;
    STAILQ_INIT(&o->todo);
    STAILQ_INIT(&o->done);
    o->notify[0] = o->notify[1] = -1;
    if (pipe(o->notify) != 0)
        goto fail;
    for (int i = 0; i < 2; i++) {
        if (fcntl(o->notify[i], F_SETFL, O_NONBLOCK) != 0 ||
            fcntl(o->notify[i], F_SETFD, FD_CLOEXEC) != 0)
            goto fail;
    }
    o->on_notify = event_new(base, o->notify[0], EV_READ | EV_PERSIST, on_notify, o);
    if (!o->on_notify || event_add(o->on_notify, NULL) != 0)
        goto fail;
    pthread_mutex_init(&o->lock, NULL);
    pthread_cond_init(&o->wake, NULL);
    if (pthread_create(&o->thread, NULL, worker, o) != 0) {
        pthread_cond_destroy(&o->wake);
        pthread_mutex_destroy(&o->lock);
        goto fail;
    }
    return o;
fail:
    if (o->on_notify)
        event_free(o->on_notify);
    if (o->notify[0] >= 0) {
        close(o->notify[0]);
        close(o->notify[1]);
    }
    free(o);
    return NULL;
}

void gw_offload_submit(struct gw_offload *o, struct gw_offload_job *job)
{
    pthread_mutex_lock(&o->lock);
    bool stopping = o->stopping;
    if (!stopping) {
        STAILQ_INSERT_TAIL(&o->todo, job, link);
        pthread_cond_signal(&o->wake);
    }
    pthread_mutex_unlock(&o->lock);
    if (stopping) /* a done callback of the final report submitted more */
        job->done(job, true);
}

void gw_offload_free(struct gw_offload *o)
{
    if (!o)
        return;
    pthread_mutex_lock(&o->lock);
    o->stopping = true;
    pthread_cond_signal(&o->wake);
    pthread_mutex_unlock(&o->lock);
    pthread_join(o->thread, NULL);
    report_done(o);
    while (!STAILQ_EMPTY(&o->todo)) {
        struct gw_offload_job *job = STAILQ_FIRST(&o->todo);
        STAILQ_REMOVE_HEAD(&o->todo, link);
        job->done(job, true);
    }
    event_free(o->on_notify);
    close(o->notify[0]);
    close(o->notify[1]);
    pthread_cond_destroy(&o->wake);
    pthread_mutex_destroy(&o->lock);
    free(o);
}
