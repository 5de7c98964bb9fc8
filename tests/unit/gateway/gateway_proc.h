#ifndef CHAT_UNIT_GATEWAY_PROC_H
#define CHAT_UNIT_GATEWAY_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * A real chat-gateway for the tests in test_binary.c and test_ws_echo.c,
 * driven with raw loopback sockets.  Redis is deliberately unreachable
 * (--redis points at a closed port).  Every test starts its own gateway (the
 * checked fixture) and stops it by PID; the gateway also gets
 * PR_SET_PDEATHSIG, so a test process killed by its watchdog or by a failed
 * assertion never leaves it behind.  The files it serves are made once per
 * TCase by the unchecked fixture, in the runner process, so they are removed
 * even when a test fails.
 */

#define TG_IO_TIMEOUT_MS 5000
#define TG_WATCHDOG_SEC 60
/* 40 bytes: the gateway wants at least 32. */
#define TG_SECRET "unit-gateway-secret-0123456789abcdefghij"
/* The gateway's --max-message. */
#define TG_MAX_MESSAGE 4096

/* What the static dir holds; secret.txt lies next to it, outside. */
#define TG_INDEX_HTML "<!doctype html><title>unit</title><p>INDEX</p>\n"
#define TG_APP_JS "export const answer = 42;\n"
#define TG_STYLE_CSS "body { color: #123456; }\n"
#define TG_SUB_HTML "<p>SUB</p>\n"
#define TG_SECRET_FILE "TOPSECRET-do-not-serve\n"

/* Unchecked fixture: the temp dir with web/ and secret.txt. */
void tg_make_tree(void);
void tg_remove_tree(void);
/* Checked fixture: arms the watchdog and starts the gateway; teardown stops
 * it and fails the test unless it exited 0 (under ASan: no leaks either). */
void tg_setup(void);
void tg_teardown(void);

/* The running gateway's port. */
int tg_port(void);
/* SIGTERM, then SIGKILL after timeout_ms.  The wait status, or -1 if it had
 * to be killed or was not running. */
int tg_gateway_stop(int timeout_ms);
/* Stops the gateway (it must exit 0) and starts a new one, with the same
 * flags and the environment env (as for tg_spawn). */
void tg_gateway_restart(const char *const *env);

int64_t tg_mono_ms(void);
/* Forks argv with stdout to out_fd and stderr to err_fd (-1: /dev/null),
 * without our CHAT_* environment but with env ("NAME=value" strings, NULL
 * terminated, may be NULL).  The child dies with us. */
pid_t tg_spawn(const char *const *argv, const char *const *env, int out_fd, int err_fd);
/* Waits up to timeout_ms for pid; its wait status, or -1 after SIGKILL. */
int tg_wait_pid(pid_t pid, int timeout_ms);

/* A client connection with its receive buffer. */
struct tg_conn {
    int fd;
    char *buf;
    size_t len, cap;
};

struct tg_resp {
    int status; /* -1 when the connection closed before a complete head */
    char head[16384];
    char *body;
    size_t body_len;
};

struct tg_conn *tg_conn_open(void);
void tg_conn_close(struct tg_conn *c);
void tg_conn_send(struct tg_conn *c, const void *data, size_t len);
void tg_conn_sends(struct tg_conn *c, const char *text);
/* Reads more bytes: >0 bytes read, 0 on EOF or reset, -1 on timeout. */
int tg_conn_fill(struct tg_conn *c);
/* True when the server closes the connection (EOF or reset) in time. */
bool tg_conn_closed_by_peer(struct tg_conn *c);

/* Reads one response; head_only for answers to HEAD. */
void tg_read_resp(struct tg_conn *c, struct tg_resp *r, bool head_only);
void tg_resp_free(struct tg_resp *r);
/* The value of a response header (case-insensitive name), copied to out. */
bool tg_resp_header(const struct tg_resp *r, const char *name, char *out, size_t outlen);
/* Sends req on a fresh connection and reads one answer (malloc'd; release
 * with tg_resp_release); *closed tells whether the server closed after it. */
struct tg_resp *tg_exchange(const char *req, size_t len, bool *closed);
struct tg_resp *tg_get(const char *path);
void tg_resp_release(struct tg_resp *r);
/* Checks a JSON error body {"error":{"code":code,"message":...}}. */
void tg_expect_error_code(const struct tg_resp *r, const char *code);
/* GET path answers status and never shows the secret file. */
void tg_expect_status(const char *path, int status);

#endif
