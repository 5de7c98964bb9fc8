#ifndef GW_OFFLOAD_H
#define GW_OFFLOAD_H

#include <stdbool.h>
#include <sys/queue.h>

/*
 * One worker thread for pure CPU work that would stall the event loop: a
 * request of a megabyte takes jansson ~20 ms to parse, and every other
 * connection of the node would wait that long for its next frame.  A job's
 * work runs on the worker and must touch nothing but the job; its done runs
 * afterwards on the loop thread, in submission order.
 */

struct event_base;
struct gw_offload;

struct gw_offload_job {
    void (*work)(struct gw_offload_job *job);
    /* cancelled: the offload is being freed and work may not have run. */
    void (*done)(struct gw_offload_job *job, bool cancelled);
    STAILQ_ENTRY(gw_offload_job) link;
};

struct gw_offload *gw_offload_new(struct event_base *base);
/* Stops the worker and runs done for every job not yet finished (cancelled)
 * or not yet reported, on the calling thread. */
void gw_offload_free(struct gw_offload *o);
void gw_offload_submit(struct gw_offload *o, struct gw_offload_job *job);

#endif
