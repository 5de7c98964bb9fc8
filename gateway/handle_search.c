#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "bus.h"
#include "config.h"
#include "handlers.h"
#include "keys.h"
#include "offload.h"
#include "protocol.h"
#include "router.h"
#include "session.h"
#include "token.h"

/* The newest matches a search returns. */
#define GW_SEARCH_MAX 100

struct match {
    int64_t ts;
    char *json;
    size_t len;
};

struct search_op {
    struct gw_op op;
    bool literal;    /* the query can be looked for in the raw JSON */
    int outstanding; /* replies still to come */
    bool failed;
    struct match *matches;
    size_t nmatches, cap;
};

static void search_cleanup(struct gw_op *op)
{
    struct search_op *so = (struct search_op *)op;
    for (size_t i = 0; i < so->nmatches; i++)
        free(so->matches[i].json);
    free(so->matches);
}

static bool contains_folded(const char *hay, size_t hlen, const char *needle, size_t nlen)
{
    /* ASCII case folding; other scripts match case-sensitively, which is what
     * a substring search over raw UTF-8 can promise without a Unicode table. */
    if (nlen == 0)
        return true;
    for (size_t i = 0; i + nlen <= hlen; i++) {
        size_t k = 0;
        while (k < nlen) {
            unsigned char a = (unsigned char)hay[i + k], b = (unsigned char)needle[k];
            if (a >= 'A' && a <= 'Z')
                a = (unsigned char)(a + 32);
            if (b >= 'A' && b <= 'Z')
                b = (unsigned char)(b + 32);
            if (a != b)
                break;
            k++;
        }
        if (k == nlen)
            return true;
    }
    return false;
}

/* True when the query's bytes appear as they are in a stored message's JSON
 * (no quote, backslash or control character, which JSON escapes). */
static bool query_is_literal(const char *q)
{
    for (const unsigned char *p = (const unsigned char *)q; *p; p++)
        if (*p == '"' || *p == '\\' || *p < 0x20)
            return false;
    return true;
}

/* An image's body is a data URL of up to --max-message bytes; its kind comes
 * before the body in every stored message, near the start. */
static bool is_image(const char *json, size_t len)
{
    static const char mark[] = "\"kind\":\"image\"";
    size_t scan = len < 1024 ? len : 1024;
    for (size_t i = 0; i + sizeof(mark) - 1 <= scan; i++)
        if (memcmp(json + i, mark, sizeof(mark) - 1) == 0)
            return true;
    return false;
}

static bool push_match(struct match **matches, size_t *n, size_t *cap, struct match m)
{
    if (*n == *cap) {
        size_t grown = *cap ? *cap * 2 : 64;
        struct match *more = realloc(*matches, grown * sizeof(*more));
        if (!more)
            return false;
        *matches = more;
        *cap = grown;
    }
    (*matches)[(*n)++] = m;
    return true;
}

/* Runs on the worker thread: reads the request, writes only into matches. */
static void search_consider(const struct chat_request *req, bool literal, struct match **matches,
                            size_t *nmatches, size_t *cap, const char *json, size_t len)
{
    /* Cheap refusals first: most messages do not contain the query at all,
     * and only those that do are parsed. */
    if (literal && !contains_folded(json, len, req->q, strlen(req->q)))
        return;
    json_t *msg = json_loadb(json, len, 0, NULL);
    if (!msg)
        return;
    const char *kind = json_string_value(json_object_get(msg, "kind"));
    const char *body = json_string_value(json_object_get(msg, "body"));
    const char *from = json_string_value(json_object_get(json_object_get(msg, "from"), "id"));
    json_int_t ts = json_integer_value(json_object_get(msg, "ts"));
    bool ok = body && kind && strcmp(kind, "image") != 0 &&
              (!req->user || (from && strcmp(from, req->user) == 0)) &&
              (!req->has_after || ts > req->after) && (!req->has_before || ts < req->before) &&
              contains_folded(body, json_string_length(json_object_get(msg, "body")), req->q,
                              strlen(req->q));
    json_decref(msg);
    if (!ok)
        return;
    char *copy = malloc(len);
    if (!copy)
        return;
    memcpy(copy, json, len);
    if (!push_match(matches, nmatches, cap, (struct match){ts, copy, len}))
        free(copy);
}

/*
 * One history list, scanned on the worker (offload.h): a search reads up to
 * 200 messages per room and conversation, and parsing the candidates on the
 * event loop would hold up every delivery of the node.  The loop only copies
 * the non-image messages out of the reply.
 */
struct scan_job {
    struct gw_offload_job job;
    struct search_op *op;
    struct match *input; /* ts unused */
    size_t ninput;
    struct match *found;
    size_t nfound, cap;
};

static void scan_work(struct gw_offload_job *job)
{
    struct scan_job *sj = (struct scan_job *)job;
    for (size_t i = 0; i < sj->ninput; i++)
        search_consider(&sj->op->op.req, sj->op->literal, &sj->found, &sj->nfound, &sj->cap,
                        sj->input[i].json, sj->input[i].len);
}

static void search_step(struct search_op *op);

static void scan_done(struct gw_offload_job *job, bool cancelled)
{
    (void)cancelled; /* nothing found then: the search answers with what it has */
    struct scan_job *sj = (struct scan_job *)job;
    struct search_op *op = sj->op;
    for (size_t i = 0; i < sj->ninput; i++)
        free(sj->input[i].json);
    free(sj->input);
    for (size_t i = 0; i < sj->nfound; i++)
        if (!push_match(&op->matches, &op->nmatches, &op->cap, sj->found[i]))
            free(sj->found[i].json);
    free(sj->found);
    free(sj);
    search_step(op);
}

/* Copies the candidates out of a reply and scans them, on the worker when
 * there is one.  False when the scan is not pending (nothing to do, or no
 * memory: then those messages are skipped). */
static bool search_scan(struct search_op *op, const redisReply *reply)
{
    struct scan_job *sj = calloc(1, sizeof(*sj));
    if (!sj)
        return false;
    sj->op = op;
    sj->input = calloc(reply->elements ? reply->elements : 1, sizeof(*sj->input));
    for (size_t i = 0; sj->input && i < reply->elements; i++) {
        const redisReply *e = reply->element[i];
        if (e->type != REDIS_REPLY_STRING || is_image(e->str, e->len))
            continue;
        char *copy = malloc(e->len);
        if (!copy)
            continue;
        memcpy(copy, e->str, e->len);
        sj->input[sj->ninput++] = (struct match){0, copy, e->len};
    }
    if (!sj->input || sj->ninput == 0) {
        free(sj->input);
        free(sj);
        return false;
    }
    sj->job.work = scan_work;
    sj->job.done = scan_done;
    op->outstanding++;
    struct gw_offload *offload = gw_session_ctx(op->op.s)->offload;
    if (offload) {
        gw_offload_submit(offload, &sj->job);
    } else {
        scan_work(&sj->job);
        scan_done(&sj->job, false);
    }
    return true;
}

static int match_cmp(const void *a, const void *b)
{
    const struct match *x = a, *y = b;
    return x->ts < y->ts ? -1 : x->ts > y->ts;
}

static void search_finish(struct search_op *op)
{
    if (op->nmatches > 1)
        qsort(op->matches, op->nmatches, sizeof(*op->matches), match_cmp);
    size_t from = op->nmatches > GW_SEARCH_MAX ? op->nmatches - GW_SEARCH_MAX : 0;
    struct evbuffer *raw = evbuffer_new();
    for (size_t i = from; i < op->nmatches && raw; i++)
        gw_append_raw(raw, op->matches[i].json, op->matches[i].len);
    gw_session_send_with_messages(op->op.s, gw_reply_new("results", op->op.req.id), raw);
    if (raw)
        evbuffer_free(raw);
    gw_op_done(&op->op);
}

/* One reply or scan is done: the last one answers the request. */
static void search_step(struct search_op *op)
{
    if (--op->outstanding > 0)
        return;
    if (gw_session_closed(op->op.s))
        gw_op_done(&op->op);
    else if (op->failed)
        gw_op_error(&op->op, CHAT_ERR_UNAVAILABLE, "redis unavailable");
    else
        search_finish(op);
}

static void on_search_list(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct search_op *op = arg;
    if (!reply || reply->type == REDIS_REPLY_ERROR)
        op->failed = true;
    else if (reply->type == REDIS_REPLY_ARRAY && !gw_session_closed(op->op.s))
        search_scan(op, reply);
    search_step(op);
}

static void search_lrange(struct search_op *op, const char *key)
{
    const char *argv[] = {"LRANGE", key, "0", "-1"};
    op->outstanding++;
    gw_bus_command(gw_session_ctx(op->op.s)->bus, on_search_list, op, 4, argv, NULL);
}

/* The caller's conversations arrived (DM peers): each one's history, and
 * the rooms this connection joined (or the one room asked for). */
static void on_search_peers(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct search_op *op = arg;
    const char *prefix = gw_session_ctx(op->op.s)->cfg->prefix;
    const char *me = gw_session_who(op->op.s)->id;
    if (!reply || reply->type == REDIS_REPLY_ERROR)
        op->failed = true;
    else if (!gw_session_closed(op->op.s) && reply->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < reply->elements; i++) {
            const redisReply *e = reply->element[i];
            char key[GW_KEY_MAX];
            if (e->type == REDIS_REPLY_STRING && chat_valid_user_id(e->str) &&
                gw_key_dm(key, sizeof(key), prefix, me, e->str, "history"))
                search_lrange(op, key);
        }
    }
    search_step(op);
}

void gw_handle_search(struct gw_session *s, struct chat_request *req)
{
    struct search_op *op = (struct search_op *)gw_op_new(s, req, sizeof(*op));
    if (!op)
        return;
    op->op.cleanup = search_cleanup;
    op->literal = query_is_literal(op->op.req.q);
    struct gw_ctx *ctx = gw_session_ctx(s);
    const char *prefix = ctx->cfg->prefix;
    char key[GW_KEY_MAX];
    /* One count for the whole fan-out, so the replies cannot finish it
     * before every read is sent. */
    op->outstanding = 1;
    if (op->op.req.room) {
        /* Any existing room, joined or not; no private conversations. */
        if (gw_key_room(key, sizeof(key), prefix, op->op.req.room, "history"))
            search_lrange(op, key);
        search_step(op);
        return;
    }
    /* The rooms this connection has joined, then the private conversations. */
    for (struct gw_member *m = gw_router_any_member(gw_session_client(s)); m; m = gw_member_next(m))
        if (gw_key_room(key, sizeof(key), prefix, gw_member_room(m), "history"))
            search_lrange(op, key);
    if (!gw_key_user(key, sizeof(key), prefix, gw_session_who(s)->id, "dms")) {
        op->failed = true;
        search_step(op);
        return;
    }
    const char *argv[] = {"SMEMBERS", key};
    gw_bus_command(ctx->bus, on_search_peers, op, 2, argv, NULL);
}
