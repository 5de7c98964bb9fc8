/* chat-bench: the loss count and the report, as text or JSON. */
#include "bench_internal.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

struct loss {
    uint64_t expected, lost;
};

/* Every acked seq of a room must have reached every member whose join point
 * is below it; a member that disconnected owes only what came before the
 * last seq it saw. */
static struct loss count_loss(const struct bench *b)
{
    struct loss l = {0, 0};

    for (long r = 0; r < b->o.rooms; r++) {
        const struct room *room = &b->rooms[r];

        for (size_t w = 0; w < room->acked.n_words; w++) {
            uint64_t bits = room->acked.words[w];

            while (bits) {
                uint64_t bit = (uint64_t)w * 64 + (uint64_t)__builtin_ctzll(bits);
                int64_t seq = room->base + 1 + (int64_t)bit;

                bits &= bits - 1;
                for (long i = 0; i < room->n_members; i++) {
                    const struct bclient *c = &b->clients[room->members[i]];

                    if ((c->state != CS_JOINED && c->state != CS_CLOSED) || c->join_seq >= seq)
                        continue;
                    if (c->state == CS_CLOSED && seq > c->max_seq)
                        continue;
                    l.expected++;
                    if (!bench_bitmap_get(&c->seen, bit))
                        l.lost++;
                }
            }
        }
    }
    return l;
}

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

static double secs(uint64_t ns)
{
    return (double)ns / 1e9;
}

static json_t *hist_json(const struct bench_hist *h)
{
    return json_pack("{s:I,s:f,s:f,s:f,s:f,s:f,s:f,s:f}", "count", (json_int_t)h->count, "p50_ms",
                     ms(bench_hist_percentile(h, 50)), "p90_ms", ms(bench_hist_percentile(h, 90)),
                     "p99_ms", ms(bench_hist_percentile(h, 99)), "p99_9_ms",
                     ms(bench_hist_percentile(h, 99.9)), "max_ms", ms(h->count ? h->max : 0),
                     "mean_ms", bench_hist_mean(h) / 1e6, "min_ms", ms(h->count ? h->min : 0));
}

static double cpu_s(const struct proc_sample *a, const struct proc_sample *z)
{
    return (double)(z->cpu_ticks - a->cpu_ticks) / (double)sysconf(_SC_CLK_TCK);
}

static double cpu_pct(const struct proc_sample *a, const struct proc_sample *z, uint64_t ns)
{
    if (!a->ok || !z->ok || ns == 0)
        return 0;
    return (double)(z->cpu_ticks - a->cpu_ticks) / (double)sysconf(_SC_CLK_TCK) / secs(ns) * 100;
}

int bench_report(struct bench *b)
{
    struct loss l = count_loss(b);
    uint64_t measured_ns = b->t_send_end > b->t_measure ? b->t_send_end - b->t_measure : 0;
    double deliv_rate = measured_ns ? (double)b->n.delivered_meas / secs(measured_ns) : 0;
    double send_rate =
        b->t_send_end > b->t_send ? (double)b->n.sent / secs(b->t_send_end - b->t_send) : 0;
    struct rusage ru;
    double self_cpu;
    uint64_t rss_start = 0, rss_conn = 0;
    double per_conn_kib = 0;
    int status = 0;
    uint64_t mt = b->machine_total[1] - b->machine_total[0];
    double machine_pct =
        mt ? (double)(b->machine_busy[1] - b->machine_busy[0]) / (double)mt * 100 : 0;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    uint64_t wire_in = b->wire_in[1] - b->wire_in[0];
    uint64_t wire_out = b->wire_out[1] - b->wire_out[0];

    getrusage(RUSAGE_SELF, &ru);
    self_cpu = (double)(ru.ru_utime.tv_sec - b->ru_start.ru_utime.tv_sec + ru.ru_stime.tv_sec -
                        b->ru_start.ru_stime.tv_sec) +
               (double)(ru.ru_utime.tv_usec - b->ru_start.ru_utime.tv_usec + ru.ru_stime.tv_usec -
                        b->ru_start.ru_stime.tv_usec) /
                   1e6;
    for (size_t i = 0; i < b->o.n_pids; i++) {
        rss_start += b->procs[i].start.rss_kib;
        rss_conn += b->procs[i].connected.rss_kib;
    }
    if (b->n.connected && rss_conn > rss_start)
        per_conn_kib = (double)(rss_conn - rss_start) / (double)b->n.connected;
    if (b->n.rate_limited)
        fprintf(stderr,
                "chat-bench: the gateways rate-limited %" PRIu64 " frames; start them with a "
                "larger --rate (e.g. --rate 1000000/1000000)\n",
                b->n.rate_limited);
    if (l.lost || b->n.duplicated || b->n.out_of_order)
        status = 1;
    else if (b->n.failed || b->n.disconnected || b->interrupted)
        status = 3;

    if (b->o.json) {
        json_t *root = json_object(), *procs = json_array(), *urls = json_array();

        for (size_t i = 0; i < b->o.n_urls; i++)
            json_array_append_new(urls, json_string(b->o.urls[i]));
        for (size_t i = 0; i < b->o.n_pids; i++) {
            const struct proc_watch *w = &b->procs[i];

            json_array_append_new(
                procs, json_pack("{s:i,s:s,s:I,s:I,s:I,s:I,s:f,s:f}", "pid", (int)w->pid, "name",
                                 w->comm, "rss_start_kib", (json_int_t)w->start.rss_kib,
                                 "rss_connected_kib", (json_int_t)w->connected.rss_kib,
                                 "rss_end_kib", (json_int_t)w->measure_end.rss_kib, "rss_peak_kib",
                                 (json_int_t)w->rss_peak_kib, "cpu_pct",
                                 cpu_pct(&w->measure_start, &w->measure_end, measured_ns),
                                 "cpu_s_per_million_deliveries",
                                 b->n.delivered_meas ? cpu_s(&w->measure_start, &w->measure_end) /
                                                           (double)b->n.delivered_meas * 1e6
                                                     : 0.0));
        }
        json_object_set_new(root, "config",
                            json_pack("{s:o,s:I,s:I,s:f,s:b,s:I,s:I,s:f,s:f,s:f}", "urls", urls,
                                      "clients", (json_int_t)b->o.clients, "rooms",
                                      (json_int_t)b->o.rooms, "rate", b->o.rate, "max", b->o.max,
                                      "window", (json_int_t)b->o.window, "size",
                                      (json_int_t)b->o.size, "duration_s", b->o.duration,
                                      "warmup_s", b->o.warmup, "ramp", b->o.ramp));
        json_object_set_new(root, "connected", json_integer((json_int_t)b->n.connected));
        json_object_set_new(root, "failed", json_integer((json_int_t)b->n.failed));
        json_object_set_new(root, "disconnected", json_integer((json_int_t)b->n.disconnected));
        json_object_set_new(root, "setup_s", json_real(secs(b->t_ramp_done - b->t0)));
        json_object_set_new(root, "login", hist_json(&b->login_lat));
        json_object_set_new(root, "connect", hist_json(&b->connect_lat));
        json_object_set_new(root, "sent", json_integer((json_int_t)b->n.sent));
        json_object_set_new(root, "acked", json_integer((json_int_t)b->n.acked));
        json_object_set_new(root, "send_errors", json_integer((json_int_t)b->n.send_errors));
        json_object_set_new(root, "rate_limited", json_integer((json_int_t)b->n.rate_limited));
        json_object_set_new(root, "other_errors", json_integer((json_int_t)b->n.other_errors));
        json_object_set_new(root, "expected", json_integer((json_int_t)l.expected));
        json_object_set_new(root, "delivered", json_integer((json_int_t)b->n.delivered));
        json_object_set_new(root, "lost", json_integer((json_int_t)l.lost));
        json_object_set_new(root, "duplicated", json_integer((json_int_t)b->n.duplicated));
        json_object_set_new(root, "out_of_order", json_integer((json_int_t)b->n.out_of_order));
        json_object_set_new(root, "foreign", json_integer((json_int_t)b->n.foreign));
        json_object_set_new(root, "bad_frames", json_integer((json_int_t)b->n.bad_frames));
        json_object_set_new(root, "events", json_integer((json_int_t)b->n.events));
        json_object_set_new(root, "measured_s", json_real(secs(measured_ns)));
        json_object_set_new(root, "sent_per_s", json_real(send_rate));
        json_object_set_new(root, "delivered_per_s", json_real(deliv_rate));
        json_object_set_new(root, "latency", hist_json(&b->lat));
        json_object_set_new(root, "latency_same_gateway", hist_json(&b->lat_same));
        json_object_set_new(root, "latency_cross_gateway", hist_json(&b->lat_cross));
        json_object_set_new(root, "ack_latency", hist_json(&b->ack_lat));
        json_object_set_new(root, "processes", procs);
        json_object_set_new(root, "memory_per_connection_kib", json_real(per_conn_kib));
        json_object_set_new(root, "wire_in_bytes", json_integer((json_int_t)wire_in));
        json_object_set_new(root, "wire_out_bytes", json_integer((json_int_t)wire_out));
        json_object_set_new(
            root, "wire_in_per_delivery",
            json_real(b->n.delivered_meas ? (double)wire_in / (double)b->n.delivered_meas : 0));
        json_object_set_new(root, "deflate_clients", json_integer((json_int_t)b->deflate_clients));
        json_object_set_new(root, "bench_cpu_s", json_real(self_cpu));
        json_object_set_new(root, "machine_cpu_busy_pct", json_real(machine_pct));
        json_object_set_new(root, "machine_cpus", json_integer(ncpu));
        json_object_set_new(root, "exit_status", json_integer(status));
        json_dumpf(root, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
        fputc('\n', stdout);
        json_decref(root);
        return status;
    }

    printf("chat-bench  %ld clients on %zu gateway(s), %ld room(s), ", b->o.clients, b->o.n_urls,
           b->o.rooms);
    if (b->o.max)
        printf("--max (window %ld per room)", b->o.window);
    else
        printf("%.0f msgs/s", b->o.rate);
    printf(", %ld B, warmup %.0f s, duration %.0f s\n", b->o.size, b->o.warmup, b->o.duration);
    printf("connect     %" PRIu64 " joined, %" PRIu64 " failed, %" PRIu64
           " disconnected; setup %.2f s\n",
           b->n.connected, b->n.failed, b->n.disconnected, secs(b->t_ramp_done - b->t0));
    printf("            login p50 %.2f ms p99 %.2f ms; connect+welcome p50 %.2f ms p99 %.2f ms\n",
           ms(bench_hist_percentile(&b->login_lat, 50)),
           ms(bench_hist_percentile(&b->login_lat, 99)),
           ms(bench_hist_percentile(&b->connect_lat, 50)),
           ms(bench_hist_percentile(&b->connect_lat, 99)));
    printf("messages    sent %" PRIu64 " (%.0f/s), acked %" PRIu64 ", errors %" PRIu64
           " (rate_limited %" PRIu64 ")\n",
           b->n.sent, send_rate, b->n.acked, b->n.send_errors + b->n.other_errors,
           b->n.rate_limited);
    printf("deliveries  expected %" PRIu64 ", delivered %" PRIu64 ", lost %" PRIu64
           ", duplicated %" PRIu64 ", out of order %" PRIu64 "\n",
           l.expected, b->n.delivered, l.lost, b->n.duplicated, b->n.out_of_order);
    printf("throughput  %.0f delivered msgs/s over %.1f s measured\n", deliv_rate,
           secs(measured_ns));
    printf("events      %" PRIu64 " other frames received (presence, online, room_created ...)\n",
           b->n.events);
    printf("latency     p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms"
           "  (%" PRIu64 " samples)\n",
           ms(bench_hist_percentile(&b->lat, 50)), ms(bench_hist_percentile(&b->lat, 90)),
           ms(bench_hist_percentile(&b->lat, 99)), ms(bench_hist_percentile(&b->lat, 99.9)),
           ms(b->lat.count ? b->lat.max : 0), b->lat.count);
    if (b->o.n_urls > 1)
        for (int i = 0; i < 2; i++) {
            const struct bench_hist *h = i ? &b->lat_cross : &b->lat_same;

            printf("  %s p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms\n",
                   i ? "cross-gw" : "same-gw ", ms(bench_hist_percentile(h, 50)),
                   ms(bench_hist_percentile(h, 90)), ms(bench_hist_percentile(h, 99)),
                   ms(bench_hist_percentile(h, 99.9)), ms(h->count ? h->max : 0));
        }
    printf("ack         p50 %.2f ms  p99 %.2f ms\n", ms(bench_hist_percentile(&b->ack_lat, 50)),
           ms(bench_hist_percentile(&b->ack_lat, 99)));
    for (size_t i = 0; i < b->o.n_pids; i++) {
        const struct proc_watch *w = &b->procs[i];

        printf("process     %d %-14s rss %.1f -> %.1f MiB (peak %.1f), cpu %.0f %%\n", (int)w->pid,
               w->comm, (double)w->start.rss_kib / 1024, (double)w->connected.rss_kib / 1024,
               (double)w->rss_peak_kib / 1024,
               cpu_pct(&w->measure_start, &w->measure_end, measured_ns));
    }
    if (b->o.n_pids)
        printf("memory      %.1f KiB per connection (rss growth while connecting / joined)\n",
               per_conn_kib);
    for (size_t i = 0; i < b->o.n_pids && b->n.delivered_meas; i++)
        printf("cpu/deliv   %d %.2f s per million deliveries\n", (int)b->procs[i].pid,
               cpu_s(&b->procs[i].measure_start, &b->procs[i].measure_end) /
                   (double)b->n.delivered_meas * 1e6);
    printf("wire        %.0f bytes read per delivery (%.1f MiB in, %.1f MiB out while "
           "measuring); deflate on %ld of %ld clients\n",
           b->n.delivered_meas ? (double)wire_in / (double)b->n.delivered_meas : 0,
           (double)wire_in / 1048576, (double)wire_out / 1048576, b->deflate_clients, b->o.clients);
    printf("bench       %.1f s cpu; machine %.0f %% busy over %ld cpus while measuring\n", self_cpu,
           machine_pct, ncpu);
    printf("result      %s\n", status == 0   ? "OK"
                               : status == 1 ? "FAIL: lost, duplicated or out-of-order deliveries"
                                             : "INCOMPLETE: some clients failed or disconnected");
    return status;
}
