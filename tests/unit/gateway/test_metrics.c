#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "metrics.h"
#include "tests.h"

#define MAX_FAMILIES 64
#define MAX_SAMPLES 256

struct family {
    char name[96];
    char type[32];
    bool help;
};

struct sample {
    char name[96];   /* series name as written (with _bucket, _sum ...) */
    char family[96]; /* the family it belongs to */
    char labels[160];
    double value;
};

struct exposition {
    struct family fam[MAX_FAMILIES];
    int nfam;
    struct sample s[MAX_SAMPLES];
    int ns;
};

static struct family *find_family(struct exposition *e, const char *name)
{
    for (int i = 0; i < e->nfam; i++)
        if (strcmp(e->fam[i].name, name) == 0)
            return &e->fam[i];
    return NULL;
}

/* The family a series belongs to: itself, or for histograms and summaries
 * the name without _bucket, _sum or _count. */
static struct family *family_of(struct exposition *e, const char *series)
{
    struct family *f = find_family(e, series);
    if (f)
        return f;
    static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(series), k = strlen(suffixes[i]);
        if (n > k && strcmp(series + n - k, suffixes[i]) == 0) {
            char base[96];
            snprintf(base, sizeof(base), "%.*s", (int)(n - k), series);
            f = find_family(e, base);
            if (f && (strcmp(f->type, "histogram") == 0 || strcmp(f->type, "summary") == 0))
                return f;
        }
    }
    return NULL;
}

static bool valid_name(const char *s)
{
    if (!*s)
        return false;
    for (const char *p = s; *p; p++) {
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' || *p == ':' ||
                  (p != s && *p >= '0' && *p <= '9');
        if (!ok)
            return false;
    }
    return true;
}

/* Parses the text format strictly enough to catch what Prometheus rejects:
 * every sample belongs to a family with HELP and TYPE above it. */
static void parse_exposition(const char *text, struct exposition *e)
{
    memset(e, 0, sizeof(*e));
    size_t tlen = strlen(text);
    ck_assert_msg(tlen > 0 && text[tlen - 1] == '\n', "exposition must end with a newline");
    const char *line = text;
    while (*line) {
        const char *nl = strchr(line, '\n');
        ck_assert_ptr_nonnull(nl);
        char buf[512];
        ck_assert_uint_lt((size_t)(nl - line), sizeof(buf));
        memcpy(buf, line, (size_t)(nl - line));
        buf[nl - line] = '\0';
        line = nl + 1;
        if (buf[0] == '\0')
            continue;
        char name[96], rest[400];
        if (strncmp(buf, "# HELP ", 7) == 0) {
            ck_assert_msg(sscanf(buf + 7, "%95s %399[^\n]", name, rest) == 2, "bad HELP: %s", buf);
            struct family *f = find_family(e, name);
            if (!f) {
                ck_assert_int_lt(e->nfam, MAX_FAMILIES);
                f = &e->fam[e->nfam++];
                snprintf(f->name, sizeof(f->name), "%s", name);
            }
            ck_assert_msg(!f->help, "second HELP for %s", name);
            f->help = true;
            continue;
        }
        if (strncmp(buf, "# TYPE ", 7) == 0) {
            char type[32];
            ck_assert_msg(sscanf(buf + 7, "%95s %31s", name, type) == 2, "bad TYPE: %s", buf);
            ck_assert_msg(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0 ||
                              strcmp(type, "histogram") == 0 || strcmp(type, "summary") == 0 ||
                              strcmp(type, "untyped") == 0,
                          "unknown type in: %s", buf);
            struct family *f = find_family(e, name);
            ck_assert_msg(f && f->help, "TYPE without HELP above it: %s", buf);
            ck_assert_msg(f->type[0] == '\0', "second TYPE for %s", name);
            snprintf(f->type, sizeof(f->type), "%s", type);
            continue;
        }
        ck_assert_msg(buf[0] != '#', "unexpected comment: %s", buf);
        ck_assert_int_lt(e->ns, MAX_SAMPLES);
        struct sample *s = &e->s[e->ns++];
        const char *p = buf;
        size_t n = strcspn(p, "{ ");
        ck_assert_uint_lt(n, sizeof(s->name));
        memcpy(s->name, p, n);
        s->name[n] = '\0';
        ck_assert_msg(valid_name(s->name), "bad metric name: %s", buf);
        p += n;
        if (*p == '{') {
            const char *end = strchr(p, '}');
            ck_assert_msg(end != NULL, "unterminated labels: %s", buf);
            snprintf(s->labels, sizeof(s->labels), "%.*s", (int)(end - p - 1), p + 1);
            p = end + 1;
        }
        ck_assert_msg(*p == ' ', "no value: %s", buf);
        char *endv;
        const char *v = p + 1;
        if (strcmp(v, "+Inf") == 0 || strcmp(v, "-Inf") == 0 || strcmp(v, "NaN") == 0) {
            s->value = strcmp(v, "NaN") == 0 ? NAN : (v[0] == '-' ? -INFINITY : INFINITY);
        } else {
            s->value = strtod(v, &endv);
            ck_assert_msg(endv != v && (*endv == '\0' || *endv == ' '), "bad value: %s", buf);
        }
        struct family *f = family_of(e, s->name);
        ck_assert_msg(f && f->help && f->type[0], "sample without HELP/TYPE above: %s", buf);
        snprintf(s->family, sizeof(s->family), "%s", f->name);
    }
}

static char *render(const struct gw_metrics *m)
{
    struct evbuffer *buf = evbuffer_new();
    ck_assert_ptr_nonnull(buf);
    gw_metrics_render(m, "gw-test", buf);
    size_t len = evbuffer_get_length(buf);
    char *text = malloc(len + 1);
    ck_assert_ptr_nonnull(text);
    evbuffer_remove(buf, text, len);
    text[len] = '\0';
    evbuffer_free(buf);
    return text;
}

static const char *type_of(struct exposition *e, const struct sample *s)
{
    const struct family *f = find_family(e, s->family);
    ck_assert_msg(f != NULL, "sample %s has no family", s->name);
    return f ? f->type : "";
}

START_TEST(test_parses_and_labels)
{
    struct gw_metrics *m = gw_metrics_new();
    ck_assert_ptr_nonnull(m);
    char *text = render(m);
    struct exposition *e = malloc(sizeof(*e));
    ck_assert_ptr_nonnull(e);
    parse_exposition(text, e);
    ck_assert_int_ge(e->ns, GW_M_COUNT + GW_G_COUNT);
    bool has_hist = false;
    for (int i = 0; i < e->ns; i++) {
        ck_assert_msg(strstr(e->s[i].labels, "node=\"gw-test\"") != NULL, "no node label: %s",
                      e->s[i].name);
        if (strcmp(type_of(e, &e->s[i]), "counter") == 0)
            ck_assert_msg(e->s[i].value == 0, "%s starts at %g", e->s[i].name, e->s[i].value);
        if (strcmp(type_of(e, &e->s[i]), "histogram") == 0)
            has_hist = true;
    }
    /* What section 2 asks for: connections, messages in and out, errors, Redis latency. */
    static const char *const topics[] = {"connection", "messages_in", "messages_out", "error",
                                         "redis"};
    for (size_t t = 0; t < sizeof(topics) / sizeof(topics[0]); t++) {
        bool found = false;
        for (int i = 0; i < e->nfam; i++)
            found = found || strstr(e->fam[i].name, topics[t]) != NULL;
        ck_assert_msg(found, "no metric about %s", topics[t]);
    }
    ck_assert(has_hist);
    free(e);
    free(text);
    gw_metrics_free(m);
}
END_TEST

START_TEST(test_counters_reflect_add)
{
    struct gw_metrics *m = gw_metrics_new();
    ck_assert_ptr_nonnull(m);
    /* A distinct amount per counter, added in two steps. */
    for (int c = 0; c < GW_M_COUNT; c++) {
        gw_metrics_add(m, (enum gw_counter)c, 1000 + (uint64_t)c * 7);
        gw_metrics_add(m, (enum gw_counter)c, 3);
    }
    char *text = render(m);
    struct exposition *e = malloc(sizeof(*e));
    ck_assert_ptr_nonnull(e);
    parse_exposition(text, e);
    bool seen[GW_M_COUNT] = {false};
    int counters = 0;
    for (int i = 0; i < e->ns; i++) {
        if (strcmp(type_of(e, &e->s[i]), "counter") != 0)
            continue;
        counters++;
        double v = e->s[i].value - 1003;
        int c = (int)(v / 7);
        ck_assert_msg(v >= 0 && c < GW_M_COUNT && c * 7 == v, "%s = %g matches no counter",
                      e->s[i].name, e->s[i].value);
        ck_assert_msg(!seen[c], "two series show counter %d", c);
        seen[c] = true;
    }
    ck_assert_int_eq(counters, GW_M_COUNT);
    free(e);
    free(text);
    gw_metrics_free(m);
}
END_TEST

START_TEST(test_gauges)
{
    struct gw_metrics *m = gw_metrics_new();
    ck_assert_ptr_nonnull(m);
    gw_metrics_gauge_add(m, GW_G_CONNECTIONS, 3);
    gw_metrics_gauge_add(m, GW_G_CONNECTIONS, -1);
    gw_metrics_gauge_add(m, GW_G_SUBSCRIPTIONS, 41);
    ck_assert_int_eq(gw_metrics_gauge(m, GW_G_CONNECTIONS), 2);
    ck_assert_int_eq(gw_metrics_gauge(m, GW_G_SUBSCRIPTIONS), 41);
    ck_assert_int_eq(gw_metrics_gauge(m, GW_G_HTTP_CONNECTIONS), 0);
    char *text = render(m);
    struct exposition *e = malloc(sizeof(*e));
    ck_assert_ptr_nonnull(e);
    parse_exposition(text, e);
    int gauges = 0;
    bool two = false, fortyone = false;
    for (int i = 0; i < e->ns; i++) {
        if (strcmp(type_of(e, &e->s[i]), "gauge") != 0)
            continue;
        gauges++;
        two = two || e->s[i].value == 2;
        fortyone = fortyone || e->s[i].value == 41;
    }
    /* chat_deflate_saved_ratio adds two series (in, out) to the gauges. */
    ck_assert_int_eq(gauges, GW_G_COUNT + 2);
    ck_assert(two && fortyone);
    free(e);
    free(text);
    gw_metrics_free(m);
}
END_TEST

/* The saved ratio is derived from the byte counters: 0 before anything was
 * compressed, 1 - compressed/raw after. */
START_TEST(test_deflate_ratio)
{
    struct gw_metrics *m = gw_metrics_new();
    ck_assert_ptr_nonnull(m);
    char *text = render(m);
    ck_assert_ptr_nonnull(
        strstr(text, "chat_deflate_saved_ratio{node=\"gw-test\",direction=\"out\"} 0.0000\n"));
    free(text);
    gw_metrics_add(m, GW_M_DEFLATE_OUT_WIRE, 25);
    gw_metrics_add(m, GW_M_DEFLATE_OUT_RAW, 100);
    gw_metrics_add(m, GW_M_DEFLATE_IN_WIRE, 60);
    gw_metrics_add(m, GW_M_DEFLATE_IN_RAW, 80);
    text = render(m);
    ck_assert_ptr_nonnull(
        strstr(text, "chat_deflate_saved_ratio{node=\"gw-test\",direction=\"out\"} 0.7500\n"));
    ck_assert_ptr_nonnull(
        strstr(text, "chat_deflate_saved_ratio{node=\"gw-test\",direction=\"in\"} 0.2500\n"));
    ck_assert_ptr_nonnull(strstr(text, "chat_deflate_out_bytes_total{node=\"gw-test\"} 25\n"));
    free(text);
    gw_metrics_free(m);
}
END_TEST

START_TEST(test_histogram)
{
    static const int64_t rtts_us[] = {50, 100, 250, 300, 2000, 2000, 40000, 1000000, 5000000};
    const size_t n = sizeof(rtts_us) / sizeof(rtts_us[0]);
    struct gw_metrics *m = gw_metrics_new();
    ck_assert_ptr_nonnull(m);
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        gw_metrics_redis_rtt(m, rtts_us[i]);
        sum += (double)rtts_us[i] / 1e6;
    }
    char *text = render(m);
    struct exposition *e = malloc(sizeof(*e));
    ck_assert_ptr_nonnull(e);
    parse_exposition(text, e);

    int buckets = 0;
    double last_le = -INFINITY, last_count = 0, inf_count = -1, count = -1, hsum = -1;
    for (int i = 0; i < e->ns; i++) {
        struct sample *s = &e->s[i];
        /* The Redis round trip; the other histograms are checked by shape only. */
        if (strcmp(type_of(e, s), "histogram") != 0 ||
            strcmp(s->family, "chat_redis_rtt_seconds") != 0)
            continue;
        size_t fl = strlen(s->family);
        const char *suffix = s->name + fl;
        if (strcmp(suffix, "_sum") == 0) {
            hsum = s->value;
        } else if (strcmp(suffix, "_count") == 0) {
            count = s->value;
        } else {
            ck_assert_str_eq(suffix, "_bucket");
            const char *le = strstr(s->labels, "le=\"");
            ck_assert_ptr_nonnull(le);
            le += 4;
            double bound = strncmp(le, "+Inf\"", 5) == 0 ? INFINITY : strtod(le, NULL);
            ck_assert_msg(bound > last_le, "buckets not in increasing le order");
            /* Cumulative: each bucket counts every sample <= its bound. */
            size_t want = 0;
            for (size_t k = 0; k < n; k++)
                want += (double)rtts_us[k] / 1e6 <= bound * (1 + 1e-9);
            ck_assert_msg(s->value == (double)want, "bucket le=%g holds %g, want %zu", bound,
                          s->value, want);
            ck_assert(s->value >= last_count);
            last_le = bound;
            last_count = s->value;
            if (isinf(bound))
                inf_count = s->value;
            buckets++;
        }
    }
    ck_assert_int_ge(buckets, 2);
    ck_assert_msg(inf_count == (double)n, "+Inf bucket %g, want %zu", inf_count, n);
    ck_assert(count == inf_count);
    ck_assert_msg(fabs(hsum - sum) < 1e-5, "sum %g, want %g", hsum, sum);
    free(e);
    free(text);
    gw_metrics_free(m);
}
END_TEST

TCase *metrics_tcase(void)
{
    TCase *tc = tcase_create("metrics");
    tcase_add_test(tc, test_parses_and_labels);
    tcase_add_test(tc, test_counters_reflect_add);
    tcase_add_test(tc, test_gauges);
    tcase_add_test(tc, test_deflate_ratio);
    tcase_add_test(tc, test_histogram);
    return tc;
}
