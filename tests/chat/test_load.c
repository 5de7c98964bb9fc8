/*
 * Mini-load (issue 3): 50 clients over 3 gateways and 5 rooms, every client in
 * two rooms, everybody posting at once; every delivery is accounted for:
 * each member of a room receives every acked message of it exactly once, in
 * seq order, with the body and sender the ack belongs to.  And a member that
 * stops reading is cut off at 8 MiB of unsent output without slowing others.
 */
/* memmem() */
#define _GNU_SOURCE
#include "chat_tests.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define N_CLIENTS 50
#define N_ROOMS 5
#define N_SENDS 8
#define MAX_SEQ (N_CLIENTS * N_SENDS)

static const char *const load_args[] = {"--rate", "100/100", NULL};

struct load_client {
    struct tc *t;
    struct ct_user u;
    int rooms[2];
    long long last[N_ROOMS]; /* last seq delivered per room */
    size_t got[N_ROOMS];
    size_t bad_order, mismatched, acks, errors;
};

struct load {
    struct load_client c[N_CLIENTS];
    /* "sender id/request id" of each acked (room, seq) */
    char *acked[N_ROOMS][MAX_SEQ + 1];
    size_t n_acked[N_ROOMS];
    size_t dup_acks;
};

static int room_index(const char *room)
{
    if (strncmp(room, "load", 4) != 0 || room[4] < '0' || room[4] >= '0' + N_ROOMS || room[5])
        return -1;
    return room[4] - '0';
}

/* Accounts for and drops everything client c has received so far. */
static void drain(struct load *ld, struct load_client *c)
{
    size_t i;
    json_t *f;

    json_array_foreach(c->t->frames, i, f)
    {
        const char *type = ct_json_str(f, "type");
        int r = room_index(ct_json_str(f, "room"));
        long long seq = ct_json_int(f, "seq");
        char key[200];

        if (strcmp(type, "error") == 0) {
            c->errors++;
            fprintf(stderr, "load: %s got error %s (%s)\n", c->u.nick, ct_json_str(f, "code"),
                    ct_json_str(f, "message"));
        }
        if (r < 0 || seq < 1 || seq > MAX_SEQ)
            continue;
        if (strcmp(type, "ack") == 0) {
            c->acks++;
            snprintf(key, sizeof(key), "%s/%s", c->u.id, ct_json_str(f, "id"));
            if (ld->acked[r][seq])
                ld->dup_acks++;
            else
                ld->n_acked[r]++;
            free(ld->acked[r][seq]);
            ld->acked[r][seq] = strdup(key);
        } else if (strcmp(type, "message") == 0) {
            if (seq != c->last[r] + 1)
                c->bad_order++;
            c->last[r] = seq;
            c->got[r]++;
            snprintf(key, sizeof(key), "%s/%s", ct_user_id(json_object_get(f, "from")),
                     ct_json_str(f, "id"));
            /* acks normally come first; a message seen before its ack is
             * compared at the end (see check_bodies) */
            if (ld->acked[r][seq] && strcmp(ld->acked[r][seq], key) != 0)
                c->mismatched++;
        }
    }
    json_array_clear(c->t->frames);
}

static bool all_delivered(void *arg)
{
    struct load *ld = arg;

    for (int i = 0; i < N_CLIENTS; i++)
        drain(ld, &ld->c[i]);
    for (int i = 0; i < N_CLIENTS; i++) {
        struct load_client *c = &ld->c[i];

        if (c->acks < N_SENDS)
            return false;
        for (int k = 0; k < 2; k++) {
            int r = c->rooms[k];

            if (ld->n_acked[r] == 0 || c->got[r] < ld->n_acked[r])
                return false;
        }
    }
    return true;
}

START_TEST(test_mini_load)
{
    struct h_cluster *cl = ct_fixture();
    struct load *ld = calloc(1, sizeof(*ld));
    size_t expected = 0, delivered = 0;

    ck_assert_ptr_nonnull(ld);
    ct_cluster_start(cl, 3, load_args);
    for (int i = 0; i < N_CLIENTS; i++) {
        struct load_client *c = &ld->c[i];
        char nick[16], room[8];

        snprintf(nick, sizeof(nick), "load%02d", i);
        ct_login(cl, i % 3, nick, &c->u);
        c->t = ct_connect(cl, i % 3, &c->u);
        c->rooms[0] = i % N_ROOMS;
        c->rooms[1] = (i + 1 + i / N_ROOMS % (N_ROOMS - 1)) % N_ROOMS;
        for (int k = 0; k < 2; k++) {
            snprintf(room, sizeof(room), "load%d", c->rooms[k]);
            json_decref(ct_join(c->t, room, -1));
        }
    }
    h_loop_for(cl->base, 300);
    for (int i = 0; i < N_CLIENTS; i++)
        json_array_clear(ld->c[i].t->frames);

    for (int k = 0; k < N_SENDS; k++) {
        for (int i = 0; i < N_CLIENTS; i++) {
            struct load_client *c = &ld->c[i];

            ct_send(c->t,
                    "{\"type\":\"message\",\"id\":\"s%d\",\"room\":\"load%d\",\"kind\":\"text\","
                    "\"body\":\"%s says %d\"}",
                    k, c->rooms[k % 2], c->u.nick, k);
        }
        h_loop_for(cl->base, 60);
        for (int i = 0; i < N_CLIENTS; i++)
            drain(ld, &ld->c[i]);
    }
    h_loop_until(cl->base, all_delivered, ld, 60000);
    h_loop_for(cl->base, 1000); /* anything extra would show up now */
    for (int i = 0; i < N_CLIENTS; i++)
        drain(ld, &ld->c[i]);

    ck_assert_int_eq(ld->dup_acks, 0);
    for (int r = 0; r < N_ROOMS; r++) {
        for (size_t s = 1; s <= ld->n_acked[r]; s++)
            ck_assert_msg(ld->acked[r][s], "room load%d: seq %zu never acked (acked %zu)", r, s,
                          ld->n_acked[r]);
    }
    for (int i = 0; i < N_CLIENTS; i++) {
        struct load_client *c = &ld->c[i];

        ck_assert_msg(c->acks == N_SENDS && c->errors == 0, "%s: %zu acks, %zu errors", c->u.nick,
                      c->acks, c->errors);
        ck_assert_msg(c->bad_order == 0, "%s: %zu messages out of seq order or repeated", c->u.nick,
                      c->bad_order);
        ck_assert_msg(c->mismatched == 0, "%s: %zu messages differ from their ack", c->u.nick,
                      c->mismatched);
        for (int k = 0; k < 2; k++) {
            int r = c->rooms[k];

            expected += ld->n_acked[r];
            delivered += c->got[r];
            ck_assert_msg(c->got[r] == ld->n_acked[r] && c->last[r] == (long long)ld->n_acked[r],
                          "%s (gw%d) in load%d: got %zu of %zu, last seq %lld", c->u.nick,
                          i % 3 + 1, r, c->got[r], ld->n_acked[r], c->last[r]);
        }
        for (int r = 0; r < N_ROOMS; r++) {
            if (r != c->rooms[0] && r != c->rooms[1])
                ck_assert_msg(c->got[r] == 0, "%s got messages of load%d, not a member", c->u.nick,
                              r);
        }
    }
    fprintf(stderr, "mini-load: %zu deliveries expected, %zu delivered\n", expected, delivered);
    ck_assert_int_eq(expected, delivered);
    ck_assert_int_eq(ld->n_acked[0] + ld->n_acked[1] + ld->n_acked[2] + ld->n_acked[3] +
                         ld->n_acked[4],
                     N_CLIENTS * N_SENDS);

    for (int i = 0; i < N_CLIENTS; i++) {
        tc_free(ld->c[i].t);
        ct_user_free(&ld->c[i].u);
    }
    for (int r = 0; r < N_ROOMS; r++) {
        for (int s = 0; s <= MAX_SEQ; s++)
            free(ld->acked[r][s]);
    }
    free(ld);
}
END_TEST

static long mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads from fd until `needle` shows up in what arrived (true) or ms pass. */
static bool read_until(int fd, const char *needle, int ms)
{
    char buf[65536];
    size_t have = 0;

    long deadline = mono_ms() + ms;

    while (mono_ms() < deadline) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t n;

        if (poll(&p, 1, 50) != 1)
            continue;
        n = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);
        if (n <= 0)
            return false;
        have += (size_t)n;
        buf[have] = '\0';
        if (memmem(buf, have, needle, strlen(needle)))
            return true;
        if (have > sizeof(buf) / 2) { /* keep the tail only */
            memmove(buf, buf + have - 1024, 1024);
            have = 1024;
        }
    }
    return false;
}

/* A masked client text frame of len < 126 bytes. */
static void send_small_frame(int fd, const char *text)
{
    unsigned char frame[160];
    size_t len = strlen(text);
    static const unsigned char mask[4] = {1, 2, 3, 4};

    ck_assert_int_lt(len, 126);
    frame[0] = 0x81;
    frame[1] = (unsigned char)(0x80 | len);
    memcpy(frame + 2, mask, 4);
    for (size_t i = 0; i < len; i++)
        frame[6 + i] = (unsigned char)(text[i] ^ mask[i % 4]);
    ck_assert_int_eq(send(fd, frame, 6 + len, MSG_NOSIGNAL), (ssize_t)(6 + len));
}

/* A WebSocket client on a raw socket with a small receive buffer that joins
 * `room` and then stops reading. */
static int stalled_client(int port, const char *token, const char *room)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    int fd = socket(AF_INET, SOCK_STREAM, 0), rcvbuf = 4096;
    char req[9000], join[120];

    ck_assert_int_ge(fd, 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    snprintf(req, sizeof(req),
             "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             "Sec-WebSocket-Version: 13\r\nAuthorization: Bearer %s\r\n\r\n",
             port, token);
    ck_assert_int_eq(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
    ck_assert_msg(read_until(fd, "\"welcome\"", CT_WAIT_MS), "stalled client: no welcome");
    snprintf(join, sizeof(join), "{\"type\":\"join\",\"id\":\"j\",\"room\":\"%s\"}", room);
    send_small_frame(fd, join);
    ck_assert_msg(read_until(fd, "\"joined\"", CT_WAIT_MS), "stalled client: no joined");
    return fd;
}

/* Reads and discards from fd until the peer closes it (true) or ms pass;
 * *bytes counts what was read.  A plain poll() loop: fd is not on the
 * event loop. */
static bool read_to_eof(int fd, int ms, size_t *bytes)
{
    char buf[65536];
    long deadline = mono_ms() + ms;

    while (mono_ms() < deadline) {
        struct pollfd p = {.fd = fd, .events = POLLIN};

        if (poll(&p, 1, 100) != 1)
            continue;
        for (;;) {
            ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

            if (n > 0) {
                *bytes += (size_t)n;
                continue;
            }
            if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
                return true;
            break;
        }
    }
    return false;
}

#define SLOW_IMAGES 40
#define SLOW_IMAGE_B64 (600 * 1024)

/* A member that stops reading is cut off once its unsent output passes
 * 8 MiB, and the other member on the same node gets everything meanwhile. */
START_TEST(test_slow_reader_cut_off)
{
    struct h_cluster *cl = ct_fixture();
    struct ct_user u[3];
    struct tc *t[3];
    size_t bytes = 0;
    size_t len = SLOW_IMAGE_B64 + 200;
    char *frame = malloc(len), *p;
    int fd;

    ck_assert_ptr_nonnull(frame);
    ct_cluster_start(cl, 2, load_args);
    ct_team(cl, "slow", 3, "slow", u, t); /* slow0 and slow2 on gw1, slow1 on gw2 */
    fd = stalled_client(cl->gw[0].port, u[2].token, "slow");

    /* one image at a time, each read by the three live connections before
     * the next: only the stalled one falls behind */
    for (int k = 0; k < SLOW_IMAGES; k++) {
        char id[16];

        snprintf(id, sizeof(id), "i%d", k);
        p = frame + snprintf(frame, len,
                             "{\"type\":\"message\",\"id\":\"%s\",\"room\":\"slow\","
                             "\"kind\":\"image\",\"body\":\"data:image/png;base64,",
                             id);
        memset(p, 'A' + k % 26, SLOW_IMAGE_B64);
        strcpy(p + SLOW_IMAGE_B64, "\"}");
        ck_assert_int_eq(tc_send(t[1], frame), 0);
        json_decref(ct_expect(t[1], id, "ack"));
        ck_assert_msg(ct_wait_count(t, 3, "message", "slow", 1, CT_WAIT_MS),
                      "image %d: a live member did not get it (%zu %zu %zu)", k,
                      ct_count(t[0], "message", "slow"), ct_count(t[1], "message", "slow"),
                      ct_count(t[2], "message", "slow"));
        for (int i = 0; i < 3; i++)
            json_decref(ct_take(t[i], "message", "slow"));
    }
    free(frame);
    ck_assert_msg(read_to_eof(fd, 15000, &bytes),
                  "the stalled connection was not closed (%zu bytes read)", bytes);
    ck_assert_msg(bytes < (size_t)SLOW_IMAGES * SLOW_IMAGE_B64,
                  "the stalled client got everything (%zu bytes)", bytes);
    fprintf(stderr, "slow reader: cut off after reading %zu of %d bytes\n", bytes,
            SLOW_IMAGES * SLOW_IMAGE_B64);
    close(fd);
    /* the node is fine */
    ct_post(t[0], "slow", "after", "after");
    ck_assert(ct_wait_count(&t[1], 1, "message", "slow", 1, CT_WAIT_MS));
    ct_team_free(3, u, t);
}
END_TEST

TCase *load_tcase(void)
{
    TCase *tc = tcase_create("load");

    tcase_set_timeout(tc, 180);
    tcase_add_checked_fixture(tc, ct_setup, ct_teardown);
    tcase_add_test(tc, test_mini_load);
    tcase_add_test(tc, test_slow_reader_cut_off);
    return tc;
}
