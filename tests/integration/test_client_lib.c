/*
 * libchat_client against an in-process fake server (evconnlistener + wslay),
 * so the client is tested without the gateway: handshake, refusals, frames,
 * closing both ways, deferred free, message limit, [::1], blocking HTTP.
 */
#include "chat_client.h"
#include "chat_http_internal.h"
#include "harness.h"
#include "tests.h"
#include "wshandshake.h"

#include <arpa/inet.h>
#include <check.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <wslay/wslay.h>

enum fake_mode {
    FAKE_ECHO,       /* 101, greets with "hello", echoes; "close-me" -> close 4001 */
    FAKE_401,        /* HTTP 401 with a body */
    FAKE_BAD_ACCEPT, /* 101 with a wrong Sec-WebSocket-Accept */
    FAKE_BIG,        /* 101, then a 300-byte text message */
    FAKE_HTTP,       /* plain HTTP 200 with Content-Length */
    FAKE_CHUNKED,    /* plain HTTP 200, chunked */
    FAKE_SILENT,     /* accepts and never answers */
    FAKE_HUGE_HEAD,  /* a response head that never ends */
};

struct fake_server {
    struct event_base *base;
    struct evconnlistener *listener;
    enum fake_mode mode;
    int port;
    char request[4096];
    int frames_in;
    struct fake_conn *conns[16]; /* live connections, freed by fake_stop */
};

struct fake_conn {
    struct fake_server *s;
    struct bufferevent *bev;
    wslay_event_context_ptr ws;
    bool answered; /* the request head has been handled */
};

static void fake_conn_free(struct fake_conn *fc)
{
    for (size_t i = 0; i < 16; i++) {
        if (fc->s->conns[i] == fc)
            fc->s->conns[i] = NULL;
    }
    if (fc->ws)
        wslay_event_context_free(fc->ws);
    bufferevent_free(fc->bev);
    free(fc);
}

static ssize_t fake_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                         void *user)
{
    struct fake_conn *fc = user;
    int n = evbuffer_remove(bufferevent_get_input(fc->bev), buf, len);

    (void)flags;
    if (n <= 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    return n;
}

static ssize_t fake_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                         void *user)
{
    struct fake_conn *fc = user;

    (void)ctx;
    (void)flags;
    evbuffer_add(bufferevent_get_output(fc->bev), data, len);
    return (ssize_t)len;
}

static void fake_on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                        void *user)
{
    struct fake_conn *fc = user;
    struct wslay_event_msg msg = {arg->opcode, arg->msg, arg->msg_length};

    if (arg->opcode != WSLAY_TEXT_FRAME && arg->opcode != WSLAY_BINARY_FRAME)
        return;
    fc->s->frames_in++;
    if (arg->msg_length == 8 && memcmp(arg->msg, "close-me", 8) == 0)
        wslay_event_queue_close(ctx, 4001, (const uint8_t *)"bye", 3);
    else
        wslay_event_queue_msg(ctx, &msg);
}

static void fake_pump(struct fake_conn *fc)
{
    if (wslay_event_recv(fc->ws) != 0 || wslay_event_send(fc->ws) != 0 ||
        (!wslay_event_want_read(fc->ws) && !wslay_event_want_write(fc->ws) &&
         evbuffer_get_length(bufferevent_get_output(fc->bev)) == 0)) {
        fake_conn_free(fc);
    }
}

static void fake_on_write(struct bufferevent *bev, void *arg)
{
    struct fake_conn *fc = arg;

    (void)bev;
    if (fc->ws && (wslay_event_want_read(fc->ws) || wslay_event_want_write(fc->ws)))
        return;
    if (!fc->answered || fc->s->mode == FAKE_SILENT)
        return;
    fake_conn_free(fc); /* HTTP answer or close handshake done */
}

static void fake_upgrade(struct fake_conn *fc, const char *key, bool good)
{
    static const struct wslay_event_callbacks cbs = {
        fake_recv, fake_send, NULL, NULL, NULL, NULL, fake_on_msg,
    };
    struct evbuffer *out = bufferevent_get_output(fc->bev);
    char accept[CHAT_WS_ACCEPT_LEN + 1];

    chat_ws_accept_for_key(key, accept);
    if (!good)
        accept[0] = accept[0] == 'A' ? 'B' : 'A';
    evbuffer_add_printf(out,
                        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\n"
                        "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                        accept);
    wslay_event_context_server_init(&fc->ws, &cbs, fc);
    if (fc->s->mode == FAKE_BIG) {
        char big[300];
        struct wslay_event_msg msg = {WSLAY_TEXT_FRAME, (const uint8_t *)big, sizeof(big)};

        memset(big, 'x', sizeof(big));
        wslay_event_queue_msg(fc->ws, &msg);
    } else {
        struct wslay_event_msg msg = {WSLAY_TEXT_FRAME, (const uint8_t *)"hello", 5};

        wslay_event_queue_msg(fc->ws, &msg);
    }
    /* The greeting goes out in the same write as the 101 head. */
    wslay_event_send(fc->ws);
}

static void fake_on_read(struct bufferevent *bev, void *arg)
{
    struct fake_conn *fc = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer *out = bufferevent_get_output(bev);
    struct evbuffer_ptr end;
    char key[64];
    size_t len;

    if (fc->ws) {
        fake_pump(fc);
        return;
    }
    end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    if (end.pos < 0)
        return;
    len = (size_t)end.pos + 4 < sizeof(fc->s->request) ? (size_t)end.pos + 4
                                                       : sizeof(fc->s->request) - 1;
    evbuffer_remove(in, fc->s->request, len);
    fc->s->request[len] = '\0';
    fc->answered = true;
    switch (fc->s->mode) {
    case FAKE_ECHO:
    case FAKE_BIG:
    case FAKE_BAD_ACCEPT:
        if (!chat_http_head_value(fc->s->request, "Sec-WebSocket-Key", key, sizeof(key)))
            key[0] = '\0';
        fake_upgrade(fc, key, fc->s->mode != FAKE_BAD_ACCEPT);
        break;
    case FAKE_401:
        evbuffer_add_printf(out, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 2\r\n\r\nno");
        break;
    case FAKE_HTTP:
        evbuffer_add_printf(out, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
        break;
    case FAKE_CHUNKED:
        evbuffer_add_printf(out, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                 "3\r\nhel\r\n2;x=y\r\nlo\r\n0\r\n\r\n");
        break;
    case FAKE_SILENT:
        break;
    case FAKE_HUGE_HEAD:
        evbuffer_add_printf(out, "HTTP/1.1 101 Switching Protocols\r\n");
        for (int i = 0; i < 400; i++)
            evbuffer_add_printf(out, "X-Pad-%d: %050d\r\n", i, i);
        break;
    }
}

static void fake_on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;
    fake_conn_free(arg);
}

static void fake_on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                           int salen, void *arg)
{
    struct fake_server *s = arg;
    struct fake_conn *fc = calloc(1, sizeof(*fc));

    (void)l;
    (void)sa;
    (void)salen;
    fc->s = s;
    for (size_t i = 0; i < 16; i++) {
        if (!s->conns[i]) {
            s->conns[i] = fc;
            break;
        }
    }
    fc->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(fc->bev, fake_on_read, fake_on_write, fake_on_event, fc);
    bufferevent_enable(fc->bev, EV_READ | EV_WRITE);
}

static struct fake_server *fake_start(struct event_base *base, enum fake_mode mode, bool v6)
{
    struct fake_server *s = calloc(1, sizeof(*s));
    struct sockaddr_storage ss = {0};
    socklen_t len;

    s->base = base;
    s->mode = mode;
    if (v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        len = sizeof(*a);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;

        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof(*a);
    }
    s->listener =
        evconnlistener_new_bind(base, fake_on_accept, s, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                                16, (struct sockaddr *)&ss, (int)len);
    ck_assert_ptr_nonnull(s->listener);
    len = sizeof(ss);
    getsockname(evconnlistener_get_fd(s->listener), (struct sockaddr *)&ss, &len);
    s->port =
        ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
    return s;
}

static void fake_stop(struct fake_server *s)
{
    for (size_t i = 0; i < 16; i++) {
        if (s->conns[i])
            fake_conn_free(s->conns[i]);
    }
    evconnlistener_free(s->listener);
    free(s);
}

static struct event_base *base;

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    h_watchdog(60);
    base = event_base_new();
}

static void teardown(void)
{
    event_base_free(base);
}

/* prefix:port + path, in a buffer valid until the next call. */
static char *url_for(const struct fake_server *s, const char *prefix, const char *path)
{
    static char url[128];

    snprintf(url, sizeof(url), "%s:%d%s", prefix, s->port, path);
    return url;
}

START_TEST(test_echo_and_headers)
{
    struct fake_server *s = fake_start(base, FAKE_ECHO, false);
    struct tc *t =
        tc_new(base, url_for(s, "ws://127.0.0.1", "/ws?x=1"), "tok123", "http://o.example");
    json_t *j;

    ck_assert_ptr_nonnull(t);
    ck_assert(tc_wait_open(t, 3000));
    ck_assert_ptr_nonnull(strstr(s->request, "GET /ws?x=1 HTTP/1.1\r\n"));
    ck_assert_ptr_nonnull(strstr(s->request, "\r\nAuthorization: Bearer tok123\r\n"));
    ck_assert_ptr_nonnull(strstr(s->request, "\r\nOrigin: http://o.example\r\n"));
    ck_assert_ptr_nonnull(strstr(s->request, "\r\nSec-WebSocket-Version: 13\r\n"));
    ck_assert_ptr_nonnull(strstr(s->request, "\r\nUpgrade: websocket\r\n"));
    /* The greeting sent in the same segment as the 101 head. */
    j = tc_next(t, 3000);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(j, "raw")), "hello");
    json_decref(j);
    ck_assert_int_eq(tc_send(t, "{\"type\":\"x\",\"n\":1}"), 0);
    j = tc_wait_type(t, "x", 3000);
    ck_assert_ptr_nonnull(j);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "n")), 1);
    json_decref(j);
    ck_assert_int_eq(chat_client_send_frame(t->c, WSLAY_BINARY_FRAME, "\x01\x02", 2), 0);
    /* A message queued just before the close still goes out first. */
    ck_assert_int_eq(tc_send(t, "{\"type\":\"last\"}"), 0);
    ck_assert_int_eq(chat_client_close(t->c, 1000, "done"), 0);
    ck_assert_int_eq(tc_send(t, "too late"), -1);
    ck_assert_uint_gt(chat_client_pending(t->c), 0);
    ck_assert_int_eq(tc_wait_closed(t, 3000), 1000);
    ck_assert_int_eq((int)s->frames_in, 3);
    ck_assert(!chat_client_is_open(t->c));
    ck_assert_int_eq(tc_send(t, "late"), -1);
    tc_free(t);
    fake_stop(s);
}
END_TEST

/* presence_batch asks with the query, after the URL's own or alone. */
START_TEST(test_presence_batch_option)
{
    static const char *const paths[][2] = {
        {"/ws?x=1", "GET /ws?x=1&presence=batch HTTP/1.1\r\n"},
        {"/ws", "GET /ws?presence=batch HTTP/1.1\r\n"},
    };
    for (size_t i = 0; i < 2; i++) {
        struct fake_server *s = fake_start(base, FAKE_ECHO, false);
        struct chat_client_options o = {.url = url_for(s, "ws://127.0.0.1", paths[i][0]),
                                        .presence_batch = true};
        struct tc *t = tc_new_opts(base, &o);

        ck_assert_ptr_nonnull(t);
        ck_assert(tc_wait_open(t, 3000));
        ck_assert_ptr_nonnull(strstr(s->request, paths[i][1]));
        tc_free(t);
        fake_stop(s);
    }
}
END_TEST

static void count_presence(const json_t *user, bool online, void *arg)
{
    char *log = arg;
    size_t n = strlen(log);

    snprintf(log + n, 128 - n, "%s%s ", online ? "+" : "-",
             json_string_value(json_object_get(user, "id")));
}

/* online/offline and presence_batch read alike; other frames are not
 * presence. */
START_TEST(test_presence_each)
{
    static const struct {
        const char *frame;
        int n;
        const char *log;
    } cases[] = {
        {"{\"type\":\"online\",\"user\":{\"id\":\"a\"}}", 1, "+a "},
        {"{\"type\":\"offline\",\"user\":{\"id\":\"a\"}}", 1, "-a "},
        {"{\"type\":\"presence_batch\",\"online\":[{\"id\":\"a\"},{\"id\":\"b\"}],"
         "\"offline\":[{\"id\":\"c\"}]}",
         3, "+a +b -c "},
        {"{\"type\":\"presence_batch\",\"online\":[],\"offline\":[1,{\"id\":\"c\"}]}", 1, "-c "},
        {"{\"type\":\"presence_batch\"}", 0, ""},
        {"{\"type\":\"presence\",\"user\":{\"id\":\"a\"}}", -1, ""},
        {"{\"type\":1}", -1, ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char log[128] = "";
        json_t *f = json_loads(cases[i].frame, 0, NULL);

        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(chat_presence_each(f, count_presence, log), cases[i].n);
        ck_assert_str_eq(log, cases[i].log);
        json_decref(f);
    }
}
END_TEST

START_TEST(test_server_close_code)
{
    struct fake_server *s = fake_start(base, FAKE_ECHO, false);
    struct tc *t = tc_connect(base, url_for(s, "ws://localhost", "/"), NULL, NULL, NULL);

    ck_assert_ptr_nonnull(t);
    ck_assert_ptr_null(strstr(s->request, "Authorization"));
    ck_assert_ptr_null(strstr(s->request, "Origin"));
    ck_assert_int_eq(tc_send(t, "close-me"), 0);
    ck_assert_int_eq(tc_wait_closed(t, 3000), 4001);
    ck_assert(t->closed);
    tc_free(t);
    fake_stop(s);
}
END_TEST

START_TEST(test_refused_status)
{
    struct fake_server *s = fake_start(base, FAKE_401, false);
    int status = 0;
    struct tc *t = tc_connect(base, url_for(s, "ws://127.0.0.1", "/ws"), NULL, NULL, &status);

    ck_assert_ptr_null(t);
    ck_assert_int_eq(status, 401);
    fake_stop(s);
}
END_TEST

START_TEST(test_bad_accept)
{
    struct fake_server *s = fake_start(base, FAKE_BAD_ACCEPT, false);
    int status = 0;
    struct tc *t = tc_connect(base, url_for(s, "ws://127.0.0.1", "/ws"), NULL, NULL, &status);

    ck_assert_ptr_null(t);
    ck_assert_int_eq(status, 101);
    fake_stop(s);
}
END_TEST

START_TEST(test_connect_refused)
{
    char url[64];
    int status = -2;
    struct tc *t;

    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/ws", h_free_port());
    t = tc_connect(base, url, NULL, NULL, &status);
    ck_assert_ptr_null(t);
    ck_assert_int_eq(status, 0);
}
END_TEST

START_TEST(test_ipv6_literal)
{
    struct fake_server *s = fake_start(base, FAKE_ECHO, true);
    struct tc *t = tc_connect(base, url_for(s, "ws://[::1]", "/ws"), NULL, NULL, NULL);

    ck_assert_ptr_nonnull(t);
    ck_assert_ptr_nonnull(strstr(s->request, "\r\nHost: [::1]:"));
    tc_free(t);
    fake_stop(s);
}
END_TEST

START_TEST(test_max_message)
{
    struct fake_server *s = fake_start(base, FAKE_BIG, false);
    struct chat_client_options o = {.url = url_for(s, "ws://127.0.0.1", "/ws"), .max_message = 100};
    struct tc *t = tc_new_opts(base, &o);

    ck_assert_ptr_nonnull(t);
    ck_assert(tc_wait_open(t, 3000));
    /* 300 bytes over a 100-byte limit: we close with 1009. */
    ck_assert_int_eq(tc_wait_closed(t, 6000), 1009);
    ck_assert_uint_eq(json_array_size(t->frames), 0);
    tc_free(t);
    fake_stop(s);
}
END_TEST

struct free_ctx {
    struct chat_client *c;
    int messages;
    bool freed;
};

static void free_on_message(struct chat_client *c, bool binary, const char *data, size_t len,
                            void *arg)
{
    struct free_ctx *f = arg;

    (void)binary;
    (void)data;
    (void)len;
    f->messages++;
    chat_client_send_text(c, "after", 5);
    chat_client_free(c);
    f->freed = true;
}

static void free_on_event(struct chat_client *c, enum chat_client_event ev, int code, void *arg)
{
    (void)c;
    (void)ev;
    (void)code;
    (void)arg;
}

static bool is_freed(void *arg)
{
    return ((struct free_ctx *)arg)->freed;
}

START_TEST(test_free_in_callback)
{
    struct fake_server *s = fake_start(base, FAKE_ECHO, false);
    struct free_ctx f = {0};
    struct chat_client_options o = {
        .url = url_for(s, "ws://127.0.0.1", "/ws"),
        .on_message = free_on_message,
        .on_event = free_on_event,
        .arg = &f,
    };

    f.c = chat_client_new(base, &o);
    ck_assert_ptr_nonnull(f.c);
    ck_assert(h_loop_until(base, is_freed, &f, 3000));
    h_loop_for(base, 100);
    ck_assert_int_eq(f.messages, 1);
    fake_stop(s);
}
END_TEST

START_TEST(test_handshake_timeout_free)
{
    struct fake_server *s = fake_start(base, FAKE_SILENT, false);
    struct tc *t = tc_new(base, url_for(s, "ws://127.0.0.1", "/ws"), NULL, NULL);

    ck_assert_ptr_nonnull(t);
    h_loop_for(base, 200);
    ck_assert(!t->opened && !t->refused);
    ck_assert_int_gt(chat_client_pending(t->c) + 1, 0);
    /* Freeing a client mid-handshake: no callback, no leak. */
    tc_free(t);
    h_loop_for(base, 50);
    fake_stop(s);
}
END_TEST

START_TEST(test_http_request)
{
    struct fake_server *s = fake_start(base, FAKE_HTTP, false);
    char *body = NULL;
    int status;

    /* The blocking helper needs the loop running: serve it from a child. */
    pid_t pid = fork();

    if (pid == 0) {
        event_base_loop(base, 0);
        _exit(0);
    }
    status = chat_http_request(url_for(s, "http://127.0.0.1", ""), "GET", "/x", NULL, NULL, 0,
                               &body, 3000);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(body, "hello");
    free(body);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    fake_stop(s);
}
END_TEST

START_TEST(test_http_chunked)
{
    struct fake_server *s = fake_start(base, FAKE_CHUNKED, false);
    char *body = NULL;
    int status;
    pid_t pid = fork();

    if (pid == 0) {
        event_base_loop(base, 0);
        _exit(0);
    }
    status = chat_http_request(url_for(s, "ws://127.0.0.1", "/ignored"), "POST", "/y", NULL, "{}",
                               2, &body, 3000);
    ck_assert_int_eq(status, 200);
    ck_assert_str_eq(body, "hello");
    free(body);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    fake_stop(s);
}
END_TEST

START_TEST(test_http_no_server)
{
    char url[64], *body = (char *)"x";

    snprintf(url, sizeof(url), "http://127.0.0.1:%d", h_free_port());
    ck_assert_int_eq(chat_http_request(url, "GET", "/", NULL, NULL, 0, &body, 1000), -1);
    ck_assert_ptr_null(body);
}
END_TEST

START_TEST(test_url_parse)
{
    struct chat_url u;

    ck_assert_int_eq(chat_url_parse("ws://127.0.0.1:8080/ws?token=a.b", &u), 0);
    ck_assert_str_eq(u.host, "127.0.0.1");
    ck_assert_str_eq(u.port, "8080");
    ck_assert_str_eq(u.path, "/ws?token=a.b");
    ck_assert_str_eq(u.host_header, "127.0.0.1:8080");
    chat_url_deinit(&u);
    ck_assert_int_eq(chat_url_parse("ws://[::1]:9/", &u), 0);
    ck_assert_str_eq(u.host, "::1");
    ck_assert_str_eq(u.host_header, "[::1]:9");
    chat_url_deinit(&u);
    ck_assert_int_eq(chat_url_parse("http://example.com?q=1#frag", &u), 0);
    ck_assert_str_eq(u.port, "80");
    ck_assert_str_eq(u.path, "/?q=1");
    chat_url_deinit(&u);
    ck_assert_int_eq(chat_url_parse("wss://x/", &u), -1);
    ck_assert_int_eq(chat_url_parse("ws://:80/", &u), -1);
    ck_assert_int_eq(chat_url_parse("ws://h:0/", &u), -1);
    ck_assert_int_eq(chat_url_parse("ws://h:65536/", &u), -1);
    ck_assert_int_eq(chat_url_parse("ws://h:80x/", &u), -1);
    ck_assert_int_eq(chat_url_parse("ws://h/a b", &u), -1);
    ck_assert_int_eq(chat_url_parse("ws://h/a\r\nX: y", &u), -1);
    ck_assert_int_eq(chat_url_parse("ws://[::1/", &u), -1);
    ck_assert_int_eq(chat_url_parse("ws://u@h/", &u), -1);
    ck_assert_int_eq(chat_url_parse(NULL, &u), -1);
}
END_TEST

START_TEST(test_head_parse)
{
    const char *head = "HTTP/1.1 101 Switching\r\nupgrade:  websocket \r\nX-A: 1\r\n\r\n";
    char v[32], chunked[] = "3\r\nabc\r\n1\r\nd\r\n0\r\n\r\n", bad[] = "5\r\nab\r\n";

    ck_assert_int_eq(chat_http_head_status(head), 101);
    ck_assert_int_eq(chat_http_head_status("HTTP/2 200 OK\r\n"), -1);
    ck_assert_int_eq(chat_http_head_status("HTTP/1.0 404\r\n"), 404);
    ck_assert_int_eq(chat_http_head_status("HTTP/1.1 2x0 OK\r\n"), -1);
    ck_assert(chat_http_head_value(head, "Upgrade", v, sizeof(v)));
    ck_assert_str_eq(v, "websocket");
    ck_assert(chat_http_head_value(head, "x-a", v, sizeof(v)));
    ck_assert_str_eq(v, "1");
    ck_assert(!chat_http_head_value(head, "X", v, sizeof(v)));
    ck_assert(!chat_http_head_value(head, "Upgrade", v, 4));
    ck_assert_uint_eq(chat_http_head_length(head, strlen(head)), strlen(head));
    ck_assert_uint_eq(chat_http_head_length(head, strlen(head) - 1), 0);
    ck_assert_int_eq(chat_http_dechunk(chunked, strlen(chunked)), 4);
    ck_assert_str_eq(chunked, "abcd");
    ck_assert_int_eq(chat_http_dechunk(bad, strlen(bad)), -1);
    ck_assert(chat_http_safe_value("Bearer abc"));
    ck_assert(!chat_http_safe_value("a\r\nb"));
}
END_TEST

START_TEST(test_new_rejects)
{
    struct chat_client_options o = {.url = "ws://127.0.0.1:1/ws", .token = "a\nb"};

    ck_assert_ptr_null(chat_client_new(base, &o));
    o.token = NULL;
    o.url = "https://127.0.0.1/";
    ck_assert_ptr_null(chat_client_new(base, &o));
    ck_assert_ptr_null(chat_client_new(NULL, &o));
    chat_client_free(NULL);
    chat_client_abort(NULL);
    ck_assert_int_eq(chat_client_send_text(NULL, "x", 1), -1);
    ck_assert(!chat_client_is_open(NULL));
}
END_TEST

START_TEST(test_head_too_large)
{
    struct fake_server *s = fake_start(base, FAKE_HUGE_HEAD, false);
    int status = -2;
    struct tc *t = tc_connect(base, url_for(s, "ws://127.0.0.1", "/ws"), NULL, NULL, &status);

    ck_assert_ptr_null(t);
    ck_assert_int_eq(status, 0);
    fake_stop(s);
}
END_TEST

START_TEST(test_raw_and_reserved_frames)
{
    struct fake_server *s = fake_start(base, FAKE_ECHO, false);
    struct tc *t = tc_connect(base, url_for(s, "ws://127.0.0.1", "/ws"), NULL, NULL, NULL);
    /* A masked text frame "{}" built by hand, mask 01 02 03 04. */
    static const uint8_t frame[] = {0x81, 0x82, 1, 2, 3, 4, '{' ^ 1, '}' ^ 2};
    json_t *j;

    ck_assert_ptr_nonnull(t);
    json_decref(tc_next(t, 3000)); /* hello */
    ck_assert_int_eq(chat_client_send_raw(t->c, frame, sizeof(frame)), 0);
    j = tc_next(t, 3000);
    ck_assert_ptr_nonnull(j);
    ck_assert(json_is_object(j) && json_object_size(j) == 0);
    json_decref(j);
    /* A reserved opcode goes out through the hand-made framing; the peer
     * fails the connection with 1002. */
    ck_assert_int_eq(chat_client_send_frame(t->c, 3, "zz", 2), 0);
    ck_assert_int_eq(tc_wait_closed(t, 6000), 1002);
    tc_free(t);
    fake_stop(s);
}
END_TEST

START_TEST(test_abort)
{
    struct fake_server *s = fake_start(base, FAKE_ECHO, false);
    struct tc *t = tc_connect(base, url_for(s, "ws://127.0.0.1", "/ws"), NULL, NULL, NULL);

    ck_assert_ptr_nonnull(t);
    chat_client_abort(t->c);
    ck_assert(!chat_client_is_open(t->c));
    ck_assert_int_eq(tc_send(t, "x"), -1);
    ck_assert_int_eq(chat_client_close(t->c, 1000, NULL), -1);
    h_loop_for(base, 200);
    /* No callback fires for an abort; the server saw the TCP close. */
    ck_assert(!t->closed && !t->refused);
    for (size_t i = 0; i < 16; i++)
        ck_assert_ptr_null(s->conns[i]);
    tc_free(t);
    fake_stop(s);
}
END_TEST

static void close_on_open(struct chat_client *c, enum chat_client_event ev, int code, void *arg)
{
    int *closed = arg;

    if (ev == CHAT_CLIENT_OPEN)
        ck_assert_int_eq(chat_client_close(c, 4000, "from a callback"), 0);
    else if (ev == CHAT_CLIENT_CLOSED)
        *closed = code;
}

static bool int_set(void *arg)
{
    return *(int *)arg != 0;
}

START_TEST(test_close_in_callback)
{
    struct fake_server *s = fake_start(base, FAKE_ECHO, false);
    int closed = 0;
    struct chat_client_options o = {
        .url = url_for(s, "ws://127.0.0.1", "/ws"),
        .on_event = close_on_open,
        .arg = &closed,
    };
    struct chat_client *c = chat_client_new(base, &o);

    ck_assert_ptr_nonnull(c);
    ck_assert(h_loop_until(base, int_set, &closed, 3000));
    ck_assert_int_eq(closed, 4000);
    chat_client_free(c);
    fake_stop(s);
}
END_TEST

TCase *client_lib_tcase(void)
{
    TCase *tc = tcase_create("client_lib");

    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_echo_and_headers);
    tcase_add_test(tc, test_presence_batch_option);
    tcase_add_test(tc, test_presence_each);
    tcase_add_test(tc, test_server_close_code);
    tcase_add_test(tc, test_refused_status);
    tcase_add_test(tc, test_bad_accept);
    tcase_add_test(tc, test_connect_refused);
    tcase_add_test(tc, test_ipv6_literal);
    tcase_add_test(tc, test_max_message);
    tcase_add_test(tc, test_free_in_callback);
    tcase_add_test(tc, test_handshake_timeout_free);
    tcase_add_test(tc, test_http_request);
    tcase_add_test(tc, test_http_chunked);
    tcase_add_test(tc, test_http_no_server);
    tcase_add_test(tc, test_url_parse);
    tcase_add_test(tc, test_head_parse);
    tcase_add_test(tc, test_new_rejects);
    tcase_add_test(tc, test_head_too_large);
    tcase_add_test(tc, test_raw_and_reserved_frames);
    tcase_add_test(tc, test_abort);
    tcase_add_test(tc, test_close_in_callback);
    return tc;
}
