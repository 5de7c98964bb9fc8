// The WebSocket connection: reconnect with backoff, request/reply by id, a client-side rate limit.
//
// Which URL: the gateway that served the page, ws[s]://location.host/ws?token=...
// Fallback nodes: when there is no load balancer in front of the gateways (tests, a bare
// cluster), the page accepts a list of other gateway WebSocket URLs, tried in turn on reconnect:
//   - the query parameter  ?ws=ws://127.0.0.1:8082/ws,ws://127.0.0.1:8083/ws  (comma-separated)
//   - or localStorage key   chatgw.wsUrls  holding the same comma-separated list.
// The page's own gateway always comes first; a reconnect moves on to the next URL after a
// failed attempt or after the node said it is going away (close 1001).

export const MAX_TRIES = 10;
export const BACKOFF_CAP_S = 30;

/* Full jitter: a random delay in [0, min(cap, 2^attempt)) seconds, attempt counting from 0. */
export function backoff_ms(attempt) {
    const ceil = Math.min(BACKOFF_CAP_S, 2 ** attempt);
    return Math.floor(Math.random() * ceil * 1000);
}

function parse_url_list(s) {
    const out = [];
    for (const part of String(s || '').split(',')) {
        const p = part.trim();
        if (!p) continue;
        try {
            const u = new URL(p, location.href);
            if (u.protocol === 'http:') u.protocol = 'ws:';
            if (u.protocol === 'https:') u.protocol = 'wss:';
            if (u.protocol !== 'ws:' && u.protocol !== 'wss:') continue;
            if (u.pathname === '/' || u.pathname === '') u.pathname = '/ws';
            out.push(u.toString());
        } catch (e) {
            /* not a URL: skip it */
        }
    }
    return out;
}

export function ws_urls() {
    const own = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws';
    let extra = [];
    try {
        extra = parse_url_list(new URLSearchParams(location.search).get('ws'));
        if (!extra.length) extra = parse_url_list(localStorage.getItem('chatgw.wsUrls'));
    } catch (e) {
        /* storage disabled */
    }
    const all = [own, ...extra];
    return all.filter((u, i) => all.indexOf(u) === i);
}

/*
 * Closes after which reconnecting is wrong: the user logs in again, told why. 4009: the nickname
 * went to someone else while this user was away. 4003: an operator's kick is not a ban, so the
 * gateway would let a reconnect straight back in and the kick would do nothing.
 */
const SIGNED_OUT = new Map([[4001, 'token expired'], [4003, 'kicked'], [4009, 'nickname taken']]);

function rand_id(prefix) {
    const a = new Uint8Array(9);
    crypto.getRandomValues(a);
    return prefix + Array.from(a, (b) => b.toString(36).padStart(2, '0')).join('');
}
export { rand_id };

/*
 * Connection events (callbacks in `h`):
 *   status(state, info)   state: connecting | online | reconnecting | lost | closed
 *   welcome(msg, isReconnect)
 *   message(msg)          every server frame without a pending request id
 *   auth_failed(why)      token rejected (close 4001, or /api/me says 401 after a failed attempt),
 *                         or its nickname is now someone else's (close 4009, why 'nickname taken'),
 *                         or an operator kicked this user (close 4003, why 'kicked')
 */
export class Connection {
    constructor(token, h) {
        this.token = token;
        this.h = h;
        this.urls = ws_urls();
        this.url_index = 0;
        this.ws = null;
        this.attempt = 0;
        this.timer = null;
        this.countdown = null;
        this.pending = new Map();
        this.queue = [];
        this.tokens = 15;
        this.last_refill = performance.now();
        this.pump_timer = null;
        this.stopped = false;
        this.ever_welcomed = false;
        this.ping_timer = null;
        this.pong_deadline = null;
        this.node = null;
    }

    start() {
        this.stopped = false;
        this.connect_now();
    }

    stop() {
        this.stopped = true;
        this.clear_timers();
        if (this.ws) {
            const ws = this.ws;
            this.ws = null;
            ws.onclose = ws.onerror = ws.onmessage = ws.onopen = null;
            try { ws.close(1000, 'bye'); } catch (e) { /* already closed */ }
        }
        this.fail_pending('closed');
        this.h.status('closed', {});
    }

    /* "Retry" from the banner, or the browser came back online: try right away. */
    retry_now() {
        if (this.stopped) return;
        if (this.ws && this.ws.readyState <= 1) return;
        this.attempt = 0;
        this.clear_timers();
        this.connect_now();
    }

    get online() {
        return !!(this.ws && this.ws.readyState === 1 && this.welcomed);
    }

    clear_timers() {
        clearTimeout(this.timer);
        clearInterval(this.countdown);
        clearInterval(this.ping_timer);
        clearTimeout(this.pong_deadline);
        clearTimeout(this.pump_timer);
        this.timer = this.countdown = this.ping_timer = this.pong_deadline = this.pump_timer = null;
    }

    connect_now() {
        const base = this.urls[this.url_index % this.urls.length];
        const u = new URL(base);
        u.searchParams.set('token', this.token);
        u.searchParams.set('presence', 'batch'); /* online/offline as presence_batch (docs/protocol.md) */
        this.welcomed = false;
        this.h.status(this.ever_welcomed ? 'reconnecting' : 'connecting', { url: base, seconds: 0 });
        let ws;
        try {
            ws = new WebSocket(u.toString());
        } catch (e) {
            this.on_closed(null, 1006);
            return;
        }
        this.ws = ws;
        ws.onmessage = (ev) => this.on_frame(ev);
        ws.onclose = (ev) => this.on_closed(ws, ev.code);
        ws.onerror = () => { /* onclose follows */ };
    }

    on_frame(ev) {
        if (typeof ev.data !== 'string') return;
        let msg;
        try {
            msg = JSON.parse(ev.data);
        } catch (e) {
            return;
        }
        if (!msg || typeof msg !== 'object' || typeof msg.type !== 'string') return;
        if (msg.type === 'welcome') {
            const again = this.ever_welcomed;
            this.welcomed = true;
            this.ever_welcomed = true;
            this.attempt = 0;
            this.node = typeof msg.node === 'string' ? msg.node : null;
            this.start_ping();
            this.h.status('online', { node: this.node });
            this.h.welcome(msg, again);
            this.pump();
            return;
        }
        if (msg.type === 'pong') {
            clearTimeout(this.pong_deadline);
            this.pong_deadline = null;
        }
        if (typeof msg.id === 'string' && this.pending.has(msg.id) && msg.type !== 'message' &&
            msg.type !== 'private') {
            const p = this.pending.get(msg.id);
            this.pending.delete(msg.id);
            clearTimeout(p.timer);
            if (msg.type === 'error') p.reject(Object.assign(new Error(msg.message || msg.code), { code: msg.code, reply: msg }));
            else p.resolve(msg);
            return;
        }
        this.h.message(msg);
    }

    on_closed(ws, code) {
        if (ws && ws !== this.ws) return;
        const was_welcomed = this.welcomed;
        this.ws = null;
        this.welcomed = false;
        this.clear_timers();
        this.queue = [];
        this.fail_pending('disconnected');
        if (this.stopped) return;
        if (SIGNED_OUT.has(code)) {
            this.h.auth_failed(SIGNED_OUT.get(code));
            return;
        }
        /* Move on to the next node when this one failed us or announced it is going away. */
        if (!was_welcomed || code === 1001) this.url_index = (this.url_index + 1) % this.urls.length;
        if (!was_welcomed && this.h.check_auth) this.h.check_auth();
        if (this.attempt >= MAX_TRIES) {
            this.h.status('lost', {});
            return;
        }
        const delay = backoff_ms(this.attempt);
        this.attempt++;
        const due = performance.now() + delay;
        const tick = () => {
            const s = Math.max(0, Math.ceil((due - performance.now()) / 1000));
            this.h.status('reconnecting', { seconds: s, attempt: this.attempt });
        };
        tick();
        this.countdown = setInterval(tick, 250);
        this.timer = setTimeout(() => {
            clearInterval(this.countdown);
            this.countdown = null;
            this.connect_now();
        }, delay);
    }

    fail_pending(why) {
        for (const [, p] of this.pending) {
            clearTimeout(p.timer);
            p.reject(Object.assign(new Error(why), { code: why }));
        }
        this.pending.clear();
    }

    /* An application ping every 20 s; no pong within 10 s means a dead link: reconnect. */
    start_ping() {
        clearInterval(this.ping_timer);
        this.ping_timer = setInterval(() => {
            if (!this.online) return;
            this.send({ type: 'ping' });
            clearTimeout(this.pong_deadline);
            this.pong_deadline = setTimeout(() => {
                if (this.ws) try { this.ws.close(4000, 'no pong'); } catch (e) { /* closed */ }
            }, 10000);
        }, 20000);
    }

    /* Queue a frame; frames leave at most ~8/s with a burst of 15, under the server's 10/20. */
    send(obj) {
        if (!this.online) return false;
        this.queue.push(JSON.stringify(obj));
        this.pump();
        return true;
    }

    pump() {
        if (this.pump_timer) return;
        const now = performance.now();
        this.tokens = Math.min(15, this.tokens + ((now - this.last_refill) / 1000) * 8);
        this.last_refill = now;
        while (this.queue.length && this.tokens >= 1 && this.online) {
            this.ws.send(this.queue.shift());
            this.tokens -= 1;
        }
        if (this.queue.length && this.online) {
            this.pump_timer = setTimeout(() => {
                this.pump_timer = null;
                this.pump();
            }, 130);
        }
    }

    /* A request with a fresh id; resolves with the reply carrying that id, rejects on error. */
    request(obj, timeout_ms = 15000) {
        return new Promise((resolve, reject) => {
            if (!this.online) {
                reject(Object.assign(new Error('offline'), { code: 'offline' }));
                return;
            }
            const id = obj.id || rand_id('q');
            const timer = setTimeout(() => {
                this.pending.delete(id);
                reject(Object.assign(new Error('timeout'), { code: 'timeout' }));
            }, timeout_ms);
            this.pending.set(id, { resolve, reject, timer });
            this.send(Object.assign({}, obj, { id }));
        });
    }
}
