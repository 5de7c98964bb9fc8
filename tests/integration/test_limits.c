/*
 * What a hostile or careless client meets (PROTOCOL.md sections 2 and 4, as
 * hardened): invalid request ids refused and not executed, \u0000 in fields,
 * header deadlines (408), connection limits (503), login rate (429), control
 * frames that cost rate tokens, a nickname taken while offline (4009), and
 * reads that return pages (history after/more, rooms q/after/limit/more).
 */
#include "chat_client.h"
#include "harness.h"
#include "tests.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct h_cluster cl;

static void setup(void)
{
    h_watchdog(115);
    ck_assert_int_eq(h_cluster_init(&cl), 0);
}

static void teardown(void)
{
    ck_assert_int_eq(h_cluster_stop(&cl), 0);
}

static struct tc *connect_as(int i, const char *nick, char **id_out)
{
    char *token = NULL, url[9000];
    ck_assert_int_eq(h_login(&cl, i, nick, &token, id_out), 200);
    snprintf(url, sizeof(url), "%s?token=%s", cl.ws_url[i], token);
    struct tc *t = tc_connect(cl.base, url, NULL, NULL, NULL);
    free(token);
    ck_assert_ptr_nonnull(t);
    json_decref(tc_wait_type(t, "welcome", H_TIMEOUT_MS));
    return t;
}

static struct tc *connect_and_join(int i, const char *nick, const char *room)
{
    struct tc *t = connect_as(i, nick, NULL);
    ck_assert_int_eq(tc_sendf(t, "{\"type\":\"join\",\"room\":\"%s\",\"id\":\"j\"}", room), 0);
    json_decref(tc_wait_type(t, "joined", H_TIMEOUT_MS));
    return t;
}

/* A plain TCP connection to gateway i. */
static int tcp_open(int i)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cl.gw[i].port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

/* Reads what fd sends within ms (until EOF or the time is up); returns the
 * byte count (buf is NUL-terminated too). */
static size_t read_for(int fd, int ms, char *buf, size_t size)
{
    size_t got = 0;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    buf[0] = '\0';
    for (;;) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long left = ms - ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000);
        struct pollfd p = {fd, POLLIN, 0};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        ssize_t n = recv(fd, buf + got, size - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
        buf[got] = '\0';
        if (got + 1 >= size)
            break;
    }
    return got;
}

START_TEST(test_invalid_id_refused_not_executed)
{
    ck_assert_int_eq(h_cluster_add_gateway(&cl, NULL), 0);
    struct tc *t = connect_and_join(0, "idcheck", "idroom");
    /* 65 characters: refused without an id, and nothing is stored. */
    ck_assert_int_eq(tc_sendf(t,
                              "{\"type\":\"message\",\"room\":\"idroom\",\"kind\":\"text\","
                              "\"body\":\"must not be stored\",\"id\":\"%065d\"}",
                              0),
                     0);
    json_t *j = tc_wait_type(t, "error", H_TIMEOUT_MS);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(j, "code")), "bad_request");
    ck_assert_ptr_null(json_object_get(j, "id"));
    json_decref(j);
    ck_assert_int_eq(tc_send(t, "{\"type\":\"ping\",\"id\":7}"), 0);
    j = tc_wait_type(t, "error", H_TIMEOUT_MS);
    ck_assert_ptr_nonnull(j);
    ck_assert_ptr_null(json_object_get(j, "id"));
    json_decref(j);
    json_t *pong = tc_wait_type(t, "pong", 300);
    ck_assert_msg(pong == NULL, "a ping with an invalid id was executed");
    ck_assert_int_eq(tc_send(t, "{\"type\":\"history\",\"room\":\"idroom\",\"id\":\"h\"}"), 0);
    j = tc_wait_type(t, "history", H_TIMEOUT_MS);
    ck_assert_ptr_nonnull(j);
    ck_assert_uint_eq(json_array_size(json_object_get(j, "messages")), 0);
    json_decref(j);
    /* \u0000 in a field: the error carries the request's id. */
    ck_assert_int_eq(tc_send(t, "{\"type\":\"join\",\"room\":\"a\\u0000b\",\"id\":\"nul\"}"), 0);
    j = tc_wait_type(t, "error", H_TIMEOUT_MS);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(j, "id")), "nul");
    ck_assert_str_eq(json_string_value(json_object_get(j, "code")), "bad_request");
    json_decref(j);
    tc_free(t);
}
END_TEST

/* A data URL of about n bytes: a valid image message body. */
static char *image_request(const char *id, const char *room, size_t n)
{
    const char *head = "data:image/png;base64,";
    char *body = malloc(n + 1);
    ck_assert_ptr_nonnull(body);
    size_t h = strlen(head);
    memcpy(body, head, h);
    memset(body + h, 'A', n - h);
    body[n] = '\0';
    json_t *req = json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", "message", "room", room, "kind",
                            "image", "body", body, "id", id);
    char *text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    free(body);
    ck_assert_ptr_nonnull(text);
    return text;
}

/* The next reply that carries an id (acks, errors, pongs), skipping events
 * (a `message` event carries its sender's request id too). */
static json_t *next_reply(struct tc *t)
{
    for (int k = 0; k < 100; k++) {
        json_t *j = tc_next(t, H_TIMEOUT_MS);
        ck_assert_msg(j != NULL, "no reply within %d ms", H_TIMEOUT_MS);
        const char *type = json_string_value(json_object_get(j, "type"));
        if (json_object_get(j, "id") && type && strcmp(type, "message") != 0)
            return j;
        json_decref(j);
    }
    ck_abort_msg("100 frames without a reply");
    return NULL;
}

START_TEST(test_large_requests_answered_in_order)
{
    /* Large requests are parsed off the event loop and admitted a few at a
     * time: each still gets its reply, in the order sent, among small ones. */
    ck_assert_int_eq(h_cluster_add_gateway(&cl, NULL), 0);
    struct tc *t = connect_and_join(0, "bigsender", "bigroom");
    char *big1 = image_request("big1", "bigroom", 300 * 1024);
    char *too_long = malloc(200 * 1024);
    ck_assert_ptr_nonnull(too_long);
    memset(too_long, 'x', 200 * 1024 - 1);
    too_long[200 * 1024 - 1] = '\0';
    ck_assert_int_eq(tc_send(t, big1), 0);
    ck_assert_int_eq(tc_send(t, "{\"type\":\"message\",\"room\":\"bigroom\",\"kind\":\"text\","
                                "\"body\":\"small\",\"id\":\"s1\"}"),
                     0);
    json_t *big2 = json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", "message", "room", "bigroom",
                             "kind", "text", "body", too_long, "id", "big2");
    char *big2_text = json_dumps(big2, JSON_COMPACT);
    json_decref(big2);
    ck_assert_int_eq(tc_send(t, big2_text), 0);
    free(big2_text);
    ck_assert_int_eq(tc_send(t, "{\"type\":\"ping\",\"id\":\"p\"}"), 0);
    const char *want_id[] = {"big1", "s1", "big2", "p"};
    const char *want_type[] = {"ack", "ack", "error", "pong"};
    int64_t seq[2] = {0, 0};
    for (int k = 0; k < 4; k++) {
        json_t *j = next_reply(t);
        ck_assert_str_eq(json_string_value(json_object_get(j, "id")), want_id[k]);
        ck_assert_str_eq(json_string_value(json_object_get(j, "type")), want_type[k]);
        if (k < 2)
            seq[k] = json_integer_value(json_object_get(j, "seq"));
        if (k == 2)
            ck_assert_str_eq(json_string_value(json_object_get(j, "code")), "too_large");
        json_decref(j);
    }
    ck_assert_int_eq(seq[1], seq[0] + 1);
    free(big1);
    free(too_long);
    tc_free(t);
}
END_TEST

/* Whether the server's bytes hold a close frame with this code. */
static bool has_close_frame(const char *buf, size_t n, unsigned code)
{
    const uint8_t *u = (const uint8_t *)buf;
    for (size_t k = 0; k + 4 <= n; k++)
        if (u[k] == 0x88 && u[k + 1] >= 2 && u[k + 1] <= 125 && k + 2 + u[k + 1] <= n &&
            ((unsigned)u[k + 2] << 8 | u[k + 3]) == code)
            return true;
    return false;
}

/* VmRSS of pid in KiB, or -1. */
static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kib = -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

START_TEST(test_partial_large_frames_cost_no_memory)
{
    /* 40 connections (more than the 16 admission slots) each announce a
     * 1 MB frame, send 600 KiB of it and stall.  The gateway must not hold
     * their megabytes, must keep serving others, and must close a stalled
     * slot holder (1008) while others wait for a slot. */
    ck_assert_int_eq(h_cluster_add_gateway(&cl, NULL), 0);
    struct tc *t = connect_and_join(0, "honest", "calm");
    char *token = NULL;
    ck_assert_int_eq(h_login(&cl, 0, "staller", &token, NULL), 200);
    char req[9000];
    snprintf(req, sizeof(req),
             "GET /ws?token=%s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             "Sec-WebSocket-Version: 13\r\n\r\n",
             token);
    free(token);
    long before = rss_kib(cl.gw[0].pid);
    ck_assert_int_gt(before, 0);
    enum { STALLERS = 40, SENT = 600 * 1024 };
    int fds[STALLERS];
    static uint8_t frame[14 + SENT];
    frame[0] = 0x81;
    frame[1] = 0x80 | 127;
    uint64_t len = 1000 * 1000;
    for (int b = 0; b < 8; b++)
        frame[2 + b] = (uint8_t)(len >> (56 - 8 * b));
    memset(frame + 10, 0, 4); /* mask 0: the payload goes as written */
    memset(frame + 14, 'x', SENT);
    for (int k = 0; k < STALLERS; k++) {
        int status = 0;
        fds[k] = h_raw_open(&cl, 0, req, &status);
        ck_assert_int_ge(fds[k], 0);
        ck_assert_int_eq(status, 101);
        /* What the kernel takes: a waiting connection's stays unread. */
        size_t off = 0;
        while (off < sizeof(frame)) {
            ssize_t n = send(fds[k], frame + off, sizeof(frame) - off, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n <= 0)
                break;
            off += (size_t)n;
        }
        ck_assert_uint_gt(off, 14 + 8192);
    }
    h_loop_for(cl.base, 500);
    long during = rss_kib(cl.gw[0].pid);
    /* Read in full, 40 x 600 KiB would be 24 MB; the 16 slot holders'
     * share is 9.6 MB. */
    ck_assert_msg(during - before < 16 * 1024,
                  "40 stalled 1 MB frames grew the gateway from %ld to %ld KiB", before, during);
    ck_assert_int_eq(tc_send(t, "{\"type\":\"message\",\"room\":\"calm\",\"kind\":\"text\","
                                "\"body\":\"still here\",\"id\":\"m\"}"),
                     0);
    json_t *ack = tc_wait_type(t, "ack", H_TIMEOUT_MS);
    ck_assert_ptr_nonnull(ack);
    json_decref(ack);
    /* The slot holders stalled past GW_WS_ADMIT_HOLD_MS (15 s) with others
     * waiting: closed with 1008. */
    static char bufs[STALLERS][16384];
    size_t lens[STALLERS] = {0};
    bool counted[STALLERS] = {false};
    int closed_1008 = 0;
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (closed_1008 >= 16 || now.tv_sec - t0.tv_sec > 30)
            break;
        struct pollfd p[STALLERS];
        for (int k = 0; k < STALLERS; k++)
            p[k] = (struct pollfd){counted[k] ? -1 : fds[k], POLLIN, 0};
        if (poll(p, STALLERS, 500) <= 0)
            continue;
        for (int k = 0; k < STALLERS; k++) {
            if (!(p[k].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t n = recv(fds[k], bufs[k] + lens[k], sizeof(bufs[k]) - lens[k], MSG_DONTWAIT);
            if (n > 0)
                lens[k] += (size_t)n;
            if (has_close_frame(bufs[k], lens[k], 1008)) {
                counted[k] = true;
                closed_1008++;
            } else if (n <= 0 || lens[k] == sizeof(bufs[k])) {
                counted[k] = true; /* gone (or flooding us) without 1008 */
            }
        }
    }
    for (int k = 0; k < STALLERS; k++)
        close(fds[k]);
    ck_assert_msg(closed_1008 >= 16, "only %d stalled slot holders got 1008", closed_1008);
    tc_free(t);
}
END_TEST

START_TEST(test_header_deadline_408)
{
    const char *args[] = {"--header-timeout", "1", NULL};
    ck_assert_int_eq(h_cluster_add_gateway(&cl, args), 0);
    int fd = tcp_open(0);
    /* One byte every 300 ms keeps the connection busy, never complete. */
    const char *req = "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    char buf[4096] = "";
    for (size_t k = 0; k < strlen(req) && !buf[0]; k++) {
        ck_assert_int_eq(send(fd, req + k, 1, MSG_NOSIGNAL), 1);
        read_for(fd, 300, buf, sizeof(buf));
    }
    if (!buf[0])
        read_for(fd, 3000, buf, sizeof(buf));
    ck_assert_msg(strncmp(buf, "HTTP/1.1 408", 12) == 0, "got \"%.40s\"", buf);
    close(fd);
}
END_TEST

START_TEST(test_connection_limits_503)
{
    const char *args[] = {"--max-conns-per-ip", "3", NULL};
    ck_assert_int_eq(h_cluster_add_gateway(&cl, args), 0);
    int fds[3];
    for (int k = 0; k < 3; k++)
        fds[k] = tcp_open(0);
    int extra = tcp_open(0);
    char buf[4096];
    read_for(extra, 2000, buf, sizeof(buf));
    ck_assert_msg(strncmp(buf, "HTTP/1.1 503", 12) == 0, "got \"%.40s\"", buf);
    close(extra);
    /* When one goes, a new one is served. */
    close(fds[0]);
    usleep(200 * 1000);
    char *resp = NULL;
    ck_assert_int_eq(h_raw(&cl, 0, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                           strlen("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
                           &resp),
                     200);
    free(resp);
    close(fds[1]);
    close(fds[2]);

    const char *max[] = {"--max-connections", "2", "--max-conns-per-ip", "0", NULL};
    ck_assert_int_eq(h_cluster_add_gateway(&cl, max), 1);
    int a = tcp_open(1), b = tcp_open(1), c = tcp_open(1);
    read_for(c, 2000, buf, sizeof(buf));
    ck_assert_msg(strncmp(buf, "HTTP/1.1 503", 12) == 0, "got \"%.40s\"", buf);
    close(a);
    close(b);
    close(c);
}
END_TEST

START_TEST(test_login_rate_429)
{
    const char *args[] = {"--login-rate", "3", NULL};
    ck_assert_int_eq(h_cluster_add_gateway(&cl, args), 0);
    char nick[32];
    for (int k = 0; k < 3; k++) {
        snprintf(nick, sizeof(nick), "rate%d", k);
        ck_assert_int_eq(h_login(&cl, 0, nick, NULL, NULL), 200);
    }
    const char *body = "{\"nickname\":\"rate9\"}";
    char req[512], *resp = NULL;
    int n = snprintf(req, sizeof(req),
                     "POST /api/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     strlen(body), body);
    ck_assert_int_eq(h_raw(&cl, 0, req, (size_t)n, &resp), 429);
    ck_assert_ptr_nonnull(strstr(resp, "Retry-After: "));
    json_t *j = h_resp_json(resp);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "error"), "code")),
                     "rate_limited");
    json_decref(j);
    free(resp);
}
END_TEST

/* Also: a user cut off for flooding is refused (429) when it reconnects. */
START_TEST(test_control_frames_cost_tokens)
{
    const char *args[] = {"--rate", "2/4", NULL};
    ck_assert_int_eq(h_cluster_add_gateway(&cl, args), 0);
    char *token = NULL, url[9000];
    ck_assert_int_eq(h_login(&cl, 0, "pingflood", &token, NULL), 200);
    snprintf(url, sizeof(url), "%s?token=%s", cl.ws_url[0], token);
    free(token);
    struct tc *t = tc_connect(cl.base, url, NULL, NULL, NULL);
    ck_assert_ptr_nonnull(t);
    json_decref(tc_wait_type(t, "welcome", H_TIMEOUT_MS));
    /* WebSocket pings, not requests: more than 10 x burst dropped -> 1008. */
    for (int k = 0; k < 80; k++)
        ck_assert_int_eq(chat_client_send_frame(t->c, 9, "p", 1), 0);
    ck_assert_int_eq(tc_wait_closed(t, 10000), 1008);
    tc_free(t);
    /* The flooder cannot come straight back (429 for a while); others can. */
    int status = 0;
    ck_assert_ptr_null(tc_connect(cl.base, url, NULL, NULL, &status));
    ck_assert_int_eq(status, 429);
    t = connect_as(0, "bystander", NULL);
    tc_free(t);
}
END_TEST

START_TEST(test_nickname_taken_while_offline_4009)
{
    ck_assert_int_eq(h_cluster_add_gateway(&cl, NULL), 0);
    char *old_token = NULL, url[9000];
    /* The first "zed" logs in and goes away without connecting ... */
    ck_assert_int_eq(h_login(&cl, 0, "zed", &old_token, NULL), 200);
    /* ... so the name is free for someone who is online. */
    struct tc *now = connect_as(0, "Zed", NULL);
    snprintf(url, sizeof(url), "%s?token=%s", cl.ws_url[0], old_token);
    free(old_token);
    struct tc *t = tc_connect(cl.base, url, NULL, NULL, NULL);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(tc_wait_closed(t, H_TIMEOUT_MS), 4009);
    json_t *w = tc_wait_type(t, "welcome", 0);
    ck_assert_msg(w == NULL, "welcome sent before 4009");
    tc_free(t);
    tc_free(now);
}
END_TEST

/* The seqs of a reply's messages as "a,b,c". */
static const char *seqs(json_t *reply, char *buf, size_t size)
{
    size_t n = 0, i;
    json_t *m;
    buf[0] = '\0';
    json_array_foreach(json_object_get(reply, "messages"), i, m) n +=
        (size_t)snprintf(buf + n, size - n, "%s%lld", i ? "," : "",
                         (long long)json_integer_value(json_object_get(m, "seq")));
    return buf;
}

START_TEST(test_history_pages_and_rooms_paging)
{
    const char *args[] = {"--rate", "1000/1000", NULL};
    ck_assert_int_eq(h_cluster_add_gateway(&cl, args), 0);
    struct tc *t = connect_and_join(0, "pager", "pages");
    for (int k = 1; k <= 7; k++) {
        ck_assert_int_eq(tc_sendf(t,
                                  "{\"type\":\"message\",\"room\":\"pages\",\"kind\":\"text\","
                                  "\"body\":\"m%d\",\"id\":\"m%d\"}",
                                  k, k),
                         0);
        json_decref(tc_wait_type(t, "ack", H_TIMEOUT_MS));
    }
    char buf[128];
    struct {
        const char *req, *want;
        bool more;
    } cases[] = {
        {"{\"type\":\"history\",\"room\":\"pages\",\"limit\":3}", "5,6,7", true},
        {"{\"type\":\"history\",\"room\":\"pages\",\"before\":3}", "1,2", false},
        {"{\"type\":\"history\",\"room\":\"pages\",\"after\":2,\"limit\":2}", "3,4", true},
        {"{\"type\":\"history\",\"room\":\"pages\",\"after\":5}", "6,7", false},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        ck_assert_int_eq(tc_send(t, cases[k].req), 0);
        json_t *h = tc_wait_type(t, "history", H_TIMEOUT_MS);
        ck_assert_ptr_nonnull(h);
        ck_assert_str_eq(seqs(h, buf, sizeof(buf)), cases[k].want);
        ck_assert_msg(json_is_true(json_object_get(h, "more")) == cases[k].more,
                      "%s: more is wrong", cases[k].req);
        json_decref(h);
    }
    /* rooms: by name, paged, prefix */
    ck_assert_int_eq(tc_send(t, "{\"type\":\"rooms\",\"limit\":2}"), 0);
    json_t *r = tc_wait_type(t, "rooms", H_TIMEOUT_MS);
    ck_assert_uint_eq(json_array_size(json_object_get(r, "rooms")), 2);
    ck_assert(json_is_true(json_object_get(r, "more")));
    const char *second =
        json_string_value(json_object_get(json_array_get(json_object_get(r, "rooms"), 1), "name"));
    ck_assert_str_eq(second, "pages");
    json_decref(r);
    ck_assert_int_eq(tc_send(t, "{\"type\":\"rooms\",\"after\":\"pages\",\"limit\":200}"), 0);
    r = tc_wait_type(t, "rooms", H_TIMEOUT_MS);
    ck_assert_str_eq(
        json_string_value(json_object_get(json_array_get(json_object_get(r, "rooms"), 0), "name")),
        "random");
    ck_assert(json_is_false(json_object_get(r, "more")));
    json_decref(r);
    ck_assert_int_eq(tc_send(t, "{\"type\":\"rooms\",\"q\":\"pa\"}"), 0);
    r = tc_wait_type(t, "rooms", H_TIMEOUT_MS);
    ck_assert_uint_eq(json_array_size(json_object_get(r, "rooms")), 1);
    json_decref(r);
    tc_free(t);
}
END_TEST

/* Two signals while Redis is frozen and requests of every kind wait for it:
 * the second ends the drain at once, and teardown must free nothing that
 * the bus's pending callbacks still use (the sanitizer build checks; the
 * exit status and the log are checked by h_cluster_stop too). */
START_TEST(test_teardown_with_redis_frozen)
{
    static const int signals[][2] = {{SIGTERM, SIGTERM}, {SIGINT, SIGINT}, {SIGTERM, SIGINT}};
    for (size_t k = 0; k < sizeof(signals) / sizeof(signals[0]); k++) {
        int i = h_cluster_add_gateway(&cl, NULL);
        ck_assert_int_ge(i, 0);
        struct tc *t = connect_as(i, k == 0 ? "frozen0" : k == 1 ? "frozen1" : "frozen2", NULL);
        ck_assert_int_eq(tc_send(t, "{\"type\":\"join\",\"room\":\"general\",\"id\":\"j\"}"), 0);
        json_decref(tc_wait_type(t, "joined", H_TIMEOUT_MS));
        kill(cl.redis.pid, SIGSTOP);
        /* A join, a message, a history read and a login, all waiting on Redis. */
        ck_assert_int_eq(tc_send(t, "{\"type\":\"join\",\"room\":\"iced\",\"id\":\"j2\"}"), 0);
        ck_assert_int_eq(tc_send(t, "{\"type\":\"message\",\"room\":\"general\",\"kind\":\"text\","
                                    "\"body\":\"cold\",\"id\":\"m\"}"),
                         0);
        int fd = tcp_open(i);
        const char *login = "POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n"
                            "{\"nickname\":\"iced\"}";
        ck_assert_int_eq(send(fd, login, strlen(login), MSG_NOSIGNAL), (ssize_t)strlen(login));
        h_loop_for(cl.base, 300);
        kill(cl.gw[i].pid, signals[k][0]);
        h_loop_for(cl.base, 200);
        kill(cl.gw[i].pid, signals[k][1]);
        int status = h_proc_wait(&cl.gw[i], 10000);
        kill(cl.redis.pid, SIGCONT);
        ck_assert_msg(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "gateway exit status %d after signals %d, %d", status, signals[k][0],
                      signals[k][1]);
        close(fd);
        tc_free(t);
    }
}
END_TEST

/* GET /healthz: the status, and the body's "delivery". */
static int healthz(int i, char *delivery, size_t size)
{
    char *resp = NULL;
    const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    int status = h_raw(&cl, i, req, strlen(req), &resp);
    json_t *j = resp ? h_resp_json(resp) : NULL;
    snprintf(delivery, size, "%s", j ? json_string_value(json_object_get(j, "delivery")) : "?");
    json_decref(j);
    free(resp);
    return status;
}

/* Polls /healthz until it answers want (within ms); the time it took, or -1. */
static int healthz_becomes(int i, int want, const char *want_delivery, int ms)
{
    char delivery[32];
    for (int waited = 0; waited <= ms; waited += 100) {
        if (healthz(i, delivery, sizeof(delivery)) == want && strcmp(delivery, want_delivery) == 0)
            return waited;
        usleep(100 * 1000);
    }
    return -1;
}

/* A frozen Redis (SIGSTOP) and a paused one (CLIENT PAUSE) make /healthz
 * 503 with delivery "stalled" within 3 s, requests fail with `unavailable`
 * instead of hanging, and everything comes back after. */
START_TEST(test_delivery_probe_and_redis_timeout)
{
    ck_assert_int_eq(h_cluster_add_gateway(&cl, NULL), 0);
    ck_assert_int_ge(healthz_becomes(0, 200, "ok", 3000), 0);
    struct tc *t = connect_and_join(0, "prober", "general");

    kill(cl.redis.pid, SIGSTOP);
    int took = healthz_becomes(0, 503, "stalled", 4000);
    ck_assert_msg(took >= 0 && took <= 3500, "healthz did not flip in time (%d ms)", took);
    ck_assert_int_eq(tc_send(t, "{\"type\":\"message\",\"room\":\"general\",\"kind\":\"text\","
                                "\"body\":\"frozen\",\"id\":\"f\"}"),
                     0);
    json_t *e = tc_wait_type(t, "error", 4000);
    ck_assert_msg(e != NULL, "a request hung on a frozen Redis");
    ck_assert_str_eq(json_string_value(json_object_get(e, "code")), "unavailable");
    json_decref(e);
    kill(cl.redis.pid, SIGCONT);
    ck_assert_int_ge(healthz_becomes(0, 200, "ok", 8000), 0);

    /* CLIENT PAUSE: connected, but nothing moves. */
    const char *pause[] = {"redis-cli", "-p", NULL, "CLIENT", "PAUSE", "5000", NULL};
    char port[16];
    snprintf(port, sizeof(port), "%d", cl.redis.port);
    pause[2] = port;
    ck_assert_int_eq(h_run_capture(pause, NULL, NULL, 5000), 0);
    took = healthz_becomes(0, 503, "stalled", 4000);
    ck_assert_msg(took >= 0 && took <= 3500, "healthz did not flip under CLIENT PAUSE (%d ms)",
                  took);
    ck_assert_int_ge(healthz_becomes(0, 200, "ok", 10000), 0);

    /* The subscriber connection killed, and Redis refusing new connections
     * for 4 s (maxclients 2: the gateway's command connection and the admin
     * session that lifts the limit again), so it cannot come back. */
    char script[256];
    snprintf(script, sizeof(script),
             "(printf 'CONFIG SET maxclients 2\\nCLIENT KILL TYPE pubsub\\n'; sleep 4; "
             "printf 'CONFIG SET maxclients 10000\\n') | redis-cli -p %s >/dev/null 2>&1 &",
             port);
    const char *full[] = {"/bin/sh", "-c", script, NULL};
    ck_assert_int_eq(h_run_capture(full, NULL, NULL, 5000), 0);
    took = healthz_becomes(0, 503, "stalled", 4000);
    ck_assert_msg(took >= 0 && took <= 3500,
                  "healthz did not flip with the subscriber gone for good (%d ms)", took);
    ck_assert_int_ge(healthz_becomes(0, 200, "ok", 10000), 0);
    tc_free(t);
}
END_TEST

/* Runs a redis-cli command against the test Redis; its stdout (malloc'd). */
static char *redis_cli(const char *const *args, size_t nargs)
{
    const char *argv[16];
    char port[16];
    snprintf(port, sizeof(port), "%d", cl.redis.port);
    size_t n = 0;
    argv[n++] = "redis-cli";
    argv[n++] = "-p";
    argv[n++] = port;
    for (size_t i = 0; i < nargs && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    char *out = NULL;
    ck_assert_int_eq(h_run_capture(argv, &out, NULL, 10000), 0);
    return out;
}

/* 20,000 online entries of a node that died (scores long past, no holder
 * left): one surviving gateway reaps every one and announces them within
 * 30 s, although one reap call takes at most 2,000. */
START_TEST(test_reaper_empties_a_dead_node)
{
    const char *args[] = {"--presence-ttl", "3", NULL};
    ck_assert_int_eq(h_cluster_add_gateway(&cl, args), 0);
    struct tc *t = connect_as(0, "survivor", NULL);
    const char *fill[] = {"EVAL",
                          "for i = 1, 20000 do redis.call('ZADD', KEYS[1], 1000, 'dead' .. i) end "
                          "return redis.call('ZCARD', KEYS[1])",
                          "1", "chat:online"};
    free(redis_cli(fill, 4));
    const char *card[] = {"ZCARD", "chat:online"};
    long left = -1;
    for (int waited = 0; waited < 30000; waited += 500) {
        char *out = redis_cli(card, 2);
        left = atol(out);
        free(out);
        if (left <= 1) /* the survivor itself */
            break;
        h_loop_for(cl.base, 500);
    }
    ck_assert_msg(left <= 1, "%ld entries left after 30 s", left);
    json_t *off = tc_wait_type(t, "offline", H_TIMEOUT_MS);
    ck_assert_msg(off != NULL, "no offline announced");
    json_decref(off);
    tc_free(t);
}
END_TEST

/* --metrics-bind: /metrics moves to its own address (with /healthz), and
 * the public port no longer serves it. */
START_TEST(test_metrics_bind)
{
    int mport = h_free_port();
    char bind[64];
    snprintf(bind, sizeof(bind), "127.0.0.1:%d", mport);
    const char *args[] = {"--metrics-bind", bind, NULL};
    ck_assert_int_eq(h_cluster_add_gateway(&cl, args), 0);
    const char *req = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    char *resp = NULL;
    ck_assert_int_eq(h_raw(&cl, 0, req, strlen(req), &resp), 404);
    free(resp);
    /* The metrics address, through gateway 0's URL pointed at it. */
    char public_url[sizeof(cl.http_url[0])];
    memcpy(public_url, cl.http_url[0], sizeof(public_url));
    snprintf(cl.http_url[0], sizeof(cl.http_url[0]), "http://127.0.0.1:%d", mport);
    resp = NULL;
    int st = h_raw(&cl, 0, req, strlen(req), &resp);
    ck_assert_msg(st == 200, "metrics port %d answered %d: %.200s", mport, st, resp ? resp : "");
    ck_assert_ptr_nonnull(strstr(resp, "chat_delivery_ok{"));
    ck_assert_ptr_nonnull(strstr(resp, "chat_request_seconds"));
    free(resp);
    const char *ws = "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    resp = NULL;
    ck_assert_int_eq(h_raw(&cl, 0, ws, strlen(ws), &resp), 404);
    free(resp);
    memcpy(cl.http_url[0], public_url, sizeof(public_url));
}
END_TEST

/* A private message sent the moment its recipient connects (before its
 * `welcome`, before its node listens on the user's channel) still reaches
 * it: 1,000 times, the recipient connecting to one node and the sender on
 * another. */
START_TEST(test_private_sent_as_recipient_connects)
{
    const char *fast[] = {"--rate", "100000/100000", NULL};
    ck_assert_int_eq(h_cluster_add_gateway(&cl, fast), 0);
    ck_assert_int_eq(h_cluster_add_gateway(&cl, fast), 1);
    char *rtoken = NULL, *rid = NULL, url[9000];
    ck_assert_int_eq(h_login(&cl, 0, "racer", &rtoken, &rid), 200);
    struct tc *sender = connect_as(1, "sender", NULL);
    snprintf(url, sizeof(url), "%s?token=%s", cl.ws_url[0], rtoken);
    /* 1,000 rounds; 100 under the sanitizers, which make each round slower. */
    int rounds = getenv("CHAT_IT_RACES")  ? atoi(getenv("CHAT_IT_RACES"))
                 : getenv("ASAN_OPTIONS") ? 100
                                          : 1000;
    for (int i = 0; i < rounds; i++) {
        struct tc *r = tc_new(cl.base, url, NULL, NULL);
        ck_assert_ptr_nonnull(r);
        ck_assert_int_eq(tc_sendf(sender,
                                  "{\"type\":\"private\",\"to\":\"%s\",\"kind\":\"text\","
                                  "\"body\":\"race %d\",\"id\":\"r%d\"}",
                                  rid, i, i),
                         0);
        json_t *m = NULL;
        for (;;) {
            m = tc_wait_type(r, "private", 5000);
            if (!m)
                break;
            const char *id = json_string_value(json_object_get(m, "id"));
            char want[16];
            snprintf(want, sizeof(want), "r%d", i);
            if (id && strcmp(id, want) == 0)
                break;
            json_decref(m); /* an earlier round's, replayed: fine */
        }
        json_t *ack = tc_wait_type(sender, "ack", H_TIMEOUT_MS);
        ck_assert_msg(ack != NULL, "round %d: the message was not acked", i);
        json_decref(ack);
        ck_assert_msg(m != NULL, "round %d: the private message never reached its recipient", i);
        json_decref(m);
        tc_free(r);
    }
    tc_free(sender);
    free(rtoken);
    free(rid);
}
END_TEST

/* Two nodes whose clocks differ by a minute (one runs 60 s ahead): presence
 * is scored on Redis' clock, so nobody flaps offline/online while both
 * refresh, and a watcher sees no presence event at all in 8 s. */
START_TEST(test_clock_skew_no_flapping)
{
    const char *args[] = {"--presence-ttl", "3", NULL};
    ck_assert_int_eq(h_cluster_add_gateway(&cl, args), 0);
    setenv("CHAT_TEST_CLOCK_OFFSET_MS", "60000", 1);
    int skewed = h_cluster_add_gateway(&cl, args);
    unsetenv("CHAT_TEST_CLOCK_OFFSET_MS");
    ck_assert_int_eq(skewed, 1);
    struct tc *a = connect_as(0, "onclock", NULL);
    struct tc *b = connect_as(1, "offclock", NULL);
    ck_assert_int_eq(tc_send(a, "{\"type\":\"join\",\"room\":\"general\",\"id\":\"j\"}"), 0);
    ck_assert_int_eq(tc_send(b, "{\"type\":\"join\",\"room\":\"general\",\"id\":\"j\"}"), 0);
    json_decref(tc_wait_type(a, "joined", H_TIMEOUT_MS));
    json_decref(tc_wait_type(b, "joined", H_TIMEOUT_MS));
    h_loop_for(cl.base, 1500);
    struct tc *watcher = connect_as(0, "watcher", NULL);
    h_loop_for(cl.base, 8000);
    json_t *m;
    while ((m = tc_next(watcher, 0))) {
        const char *type = json_string_value(json_object_get(m, "type"));
        const char *ev = json_string_value(json_object_get(m, "event"));
        const char *who = json_string_value(json_object_get(json_object_get(m, "user"), "name"));
        bool other = who && strcmp(who, "watcher") != 0;
        ck_assert_msg(
            !(other && type && (!strcmp(type, "offline") || (ev && !strcmp(ev, "leave")))),
            "%s flapped: %s %s", who, type, ev ? ev : "");
        json_decref(m);
    }
    tc_free(watcher);
    tc_free(a);
    tc_free(b);
}
END_TEST

/* Request ids of 64 four-byte code points that differ only at the end are
 * three requests, not one: each is stored with its own seq (the
 * idempotency key holds a digest of the id, never a truncated copy). */
START_TEST(test_long_ids_are_distinct_idempotency_keys)
{
    const char *fast[] = {"--rate", "1000/1000", NULL};
    ck_assert_int_eq(h_cluster_add_gateway(&cl, fast), 0);
    char *bob_id = NULL;
    struct tc *bob = connect_as(0, "idbob", &bob_id);
    struct tc *t = connect_and_join(0, "idalice", "ids");
    static const char *const last[] = {"\xf0\x9f\x98\x80", "\xf0\x9f\x98\x81", "\xf0\x9f\x98\x82"};
    for (int pass = 0; pass < 2; pass++) {
        long long seqs[3];
        for (int k = 0; k < 3; k++) {
            char id[64 * 4 + 1] = "";
            for (int c = 0; c < 63; c++)
                strcat(id, "\xf0\x9f\x8c\x8d");
            strcat(id, last[k]);
            if (pass == 0)
                ck_assert_int_eq(tc_sendf(t,
                                          "{\"type\":\"message\",\"room\":\"ids\",\"kind\":"
                                          "\"text\",\"body\":\"m%d\",\"id\":\"%s\"}",
                                          k, id),
                                 0);
            else
                ck_assert_int_eq(tc_sendf(t,
                                          "{\"type\":\"private\",\"to\":\"%s\",\"kind\":"
                                          "\"text\",\"body\":\"p%d\",\"id\":\"%s\"}",
                                          bob_id, k, id),
                                 0);
            json_t *ack = tc_wait_type(t, "ack", H_TIMEOUT_MS);
            ck_assert_ptr_nonnull(ack);
            seqs[k] = json_integer_value(json_object_get(ack, "seq"));
            json_decref(ack);
        }
        ck_assert_msg(seqs[0] == 1 && seqs[1] == 2 && seqs[2] == 3,
                      "%s: acked seqs %lld %lld %lld, want 1 2 3", pass ? "private" : "room",
                      seqs[0], seqs[1], seqs[2]);
    }
    ck_assert_int_eq(tc_send(t, "{\"type\":\"history\",\"room\":\"ids\",\"id\":\"h\"}"), 0);
    json_t *h = tc_wait_type(t, "history", H_TIMEOUT_MS);
    ck_assert_uint_eq(json_array_size(json_object_get(h, "messages")), 3);
    json_decref(h);
    tc_free(t);
    tc_free(bob);
    free(bob_id);
}
END_TEST

/* Two tabs of one user join one room at the same moment, on one node and
 * on two nodes: a watcher in the room sees that user's presence join exactly
 * once each time. */
START_TEST(test_two_tabs_one_presence_join)
{
    ck_assert_int_eq(h_cluster_add_gateway(&cl, NULL), 0);
    ck_assert_int_eq(h_cluster_add_gateway(&cl, NULL), 1);
    struct tc *watcher = connect_as(0, "pwatch", NULL);
    ck_assert_int_eq(tc_send(watcher, "{\"type\":\"join\",\"room\":\"tabs\",\"id\":\"w\"}"), 0);
    json_decref(tc_wait_type(watcher, "joined", H_TIMEOUT_MS));
    for (int nodes = 1; nodes <= 2; nodes++) {
        char nick[16], *token = NULL, *uid = NULL, url[9000];
        snprintf(nick, sizeof(nick), "tabs%d", nodes);
        ck_assert_int_eq(h_login(&cl, 0, nick, &token, &uid), 200);
        struct tc *tabs[2];
        for (int k = 0; k < 2; k++) {
            snprintf(url, sizeof(url), "%s?token=%s", cl.ws_url[nodes == 1 ? 0 : k], token);
            tabs[k] = tc_connect(cl.base, url, NULL, NULL, NULL);
            json_decref(tc_wait_type(tabs[k], "welcome", H_TIMEOUT_MS));
        }
        for (int k = 0; k < 2; k++)
            ck_assert_int_eq(tc_send(tabs[k], "{\"type\":\"join\",\"room\":\"tabs\",\"id\":\"t\"}"),
                             0);
        for (int k = 0; k < 2; k++)
            json_decref(tc_wait_type(tabs[k], "joined", H_TIMEOUT_MS));
        h_loop_for(cl.base, 1000);
        int joins = 0;
        json_t *m;
        while ((m = tc_next(watcher, 0))) {
            const char *ev = json_string_value(json_object_get(m, "event"));
            const char *id = json_string_value(json_object_get(json_object_get(m, "user"), "id"));
            if (ev && !strcmp(ev, "join") && id && !strcmp(id, uid))
                joins++;
            json_decref(m);
        }
        ck_assert_msg(joins == 1, "%d node(s): %d presence joins, want 1", nodes, joins);
        tc_free(tabs[0]);
        tc_free(tabs[1]);
        free(token);
        free(uid);
    }
    tc_free(watcher);
}
END_TEST

/* A PROXY v2 header naming src (an IPv4 address, TCP), as HAProxy's
 * send-proxy-v2 writes it; returns its length. */
static size_t proxy_v2(unsigned char *out, const char *src)
{
    static const unsigned char sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                          0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
    memcpy(out, sig, 12);
    out[12] = 0x21; /* v2, PROXY */
    out[13] = 0x11; /* TCP over IPv4 */
    out[14] = 0;
    out[15] = 12;
    inet_pton(AF_INET, src, out + 16);
    inet_pton(AF_INET, "127.0.0.1", out + 20);
    out[24] = 0x30;
    out[25] = 0x39; /* source port 12345 */
    out[26] = 0x1f;
    out[27] = 0x90; /* destination port 8080 */
    return 28;
}

/* One request after a PROXY header; the status line's code, or -1. */
static int proxied_request(int fd, const char *src)
{
    unsigned char buf[256];
    size_t n = proxy_v2(buf, src);
    const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    memcpy(buf + n, req, strlen(req));
    n += strlen(req);
    ck_assert_int_eq(send(fd, buf, n, MSG_NOSIGNAL), (ssize_t)n);
    char resp[2048];
    read_for(fd, 1500, resp, sizeof(resp));
    return strncmp(resp, "HTTP/1.1 ", 9) == 0 ? atoi(resp + 9) : -1;
}

/* PROXY protocol v2: from a trusted proxy the header names the client, and
 * the per-address limit counts that client, not the proxy; from anyone else
 * a PROXY header is refused (400). */
START_TEST(test_proxy_protocol)
{
    const char *trusted[] = {"--trusted-proxies", "127.0.0.0/8", "--max-conns-per-ip", "1", NULL};
    ck_assert_int_eq(h_cluster_add_gateway(&cl, trusted), 0);
    int a = tcp_open(0), b = tcp_open(0), c = tcp_open(0);
    ck_assert_int_eq(proxied_request(a, "192.0.2.7"), 200);
    /* The same client through the same proxy: over its limit of 1. */
    ck_assert_int_eq(proxied_request(b, "192.0.2.7"), 503);
    /* Another client through the same proxy is served. */
    ck_assert_int_eq(proxied_request(c, "192.0.2.8"), 200);
    close(a);
    close(b);
    close(c);

    ck_assert_int_eq(h_cluster_add_gateway(&cl, NULL), 1);
    int d = tcp_open(1);
    ck_assert_int_eq(proxied_request(d, "192.0.2.9"), 400);
    close(d);
}
END_TEST

TCase *limits_tcase(void)
{
    TCase *tc = tcase_create("limits");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_invalid_id_refused_not_executed);
    tcase_add_test(tc, test_large_requests_answered_in_order);
    tcase_add_test(tc, test_partial_large_frames_cost_no_memory);
    tcase_add_test(tc, test_header_deadline_408);
    tcase_add_test(tc, test_connection_limits_503);
    tcase_add_test(tc, test_login_rate_429);
    tcase_add_test(tc, test_control_frames_cost_tokens);
    tcase_add_test(tc, test_nickname_taken_while_offline_4009);
    tcase_add_test(tc, test_history_pages_and_rooms_paging);
    tcase_add_test(tc, test_teardown_with_redis_frozen);
    tcase_add_test(tc, test_delivery_probe_and_redis_timeout);
    tcase_add_test(tc, test_reaper_empties_a_dead_node);
    tcase_add_test(tc, test_metrics_bind);
    tcase_add_test(tc, test_private_sent_as_recipient_connects);
    tcase_add_test(tc, test_clock_skew_no_flapping);
    tcase_add_test(tc, test_long_ids_are_distinct_idempotency_keys);
    tcase_add_test(tc, test_two_tabs_one_presence_join);
    tcase_add_test(tc, test_proxy_protocol);
    return tc;
}
