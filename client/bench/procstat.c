/* chat-bench: RSS and CPU of the watched processes, and of the machine, from /proc. */
#include "bench_internal.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static struct proc_sample proc_read(pid_t pid)
{
    struct proc_sample s = {0};
    char path[64], buf[1024], *p;
    unsigned long utime, stime;
    long rss_pages;
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return s;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: parse after the last ')'. */
    p = strrchr(buf, ')');
    if (!p)
        return s;
    if (sscanf(p + 2,
               "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d %*d %*d "
               "%*u %*u %ld",
               &utime, &stime, &rss_pages) != 3)
        return s;
    s.cpu_ticks = (uint64_t)utime + stime;
    s.rss_kib = (uint64_t)rss_pages * (uint64_t)sysconf(_SC_PAGESIZE) / 1024;
    s.ok = true;
    return s;
}

/* Busy and total jiffies of all CPUs together, from the first line of /proc/stat. */
static void machine_read(uint64_t *busy, uint64_t *total)
{
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");

    *busy = *total = 0;
    if (!f)
        return;
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
               &v[5], &v[6], &v[7]) == 8) {
        for (int i = 0; i < 8; i++)
            *total += v[i];
        *busy = *total - v[3] - v[4]; /* minus idle and iowait */
    }
    fclose(f);
}

void bench_procs_sample(struct bench *b, enum bench_sample which)
{
    for (size_t i = 0; i < b->o.n_pids; i++) {
        struct proc_watch *w = &b->procs[i];
        struct proc_sample s = proc_read(w->pid);
        struct proc_sample *slots[] = {&w->start, &w->connected, &w->measure_start, &w->measure_end,
                                       NULL};

        if (s.ok && s.rss_kib > w->rss_peak_kib)
            w->rss_peak_kib = s.rss_kib;
        if (slots[which])
            *slots[which] = s;
    }
    if (which == BENCH_SAMPLE_MEASURE_START)
        machine_read(&b->machine_busy[0], &b->machine_total[0]);
    else if (which == BENCH_SAMPLE_MEASURE_END)
        machine_read(&b->machine_busy[1], &b->machine_total[1]);
}

int bench_proc_name(pid_t pid, char *comm, size_t len)
{
    char path[64];
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    if (!fgets(comm, (int)len, f))
        comm[0] = '\0';
    comm[strcspn(comm, "\n")] = '\0';
    fclose(f);
    return 0;
}
