// chatgw browser client: boot, conversations, sending and resume, search, settings.
// Plain ES modules, no framework, no build step. See net.js for the fallback-node list (?ws=).

import { Connection, rand_id } from './net.js';
import { avatar_el, fill_avatar } from './avatar.js';
import { $, KEY, store, cp_len, dark_query, effective_theme, apply_theme, toast } from './page.js';
import { show_login } from './login.js';
import { el, message_el, update_message_el, system_el, fmt_day, fmt_stamp, as_code_message } from './render.js';
import { prepare_image } from './media.js';
import { fuzzy_match, range_start, day_start } from './search.js';
import { export_text, import_text, LocalCache } from './archive.js';

const LIMITS = { text: 4000, code: 20000 };
const IMAGE_MAX_CHARS = 1000 * 1000;
/* Larger files take many seconds to decode and shrink, and a phone can run out of memory. */
const IMAGE_MAX_FILE = 20 * 1024 * 1024;
/* A quick leave+join of the same user (a reload, a reconnect) is not worth two lines. */
const REJOIN_MS = 60000;
const CACHED_IMAGES = 30;
const DEFAULT_ROOMS = ['general', 'random', 'tech'];
const ROOM_RE = /^[a-z0-9][a-z0-9_-]{0,31}$/;
/* What the login form says after a close that ends the session (net.js SIGNED_OUT). */
const SIGNED_OUT_NOTICE = {
    'nickname taken': 'Nickname taken: someone online is using it now. Please pick another one.',
    kicked: 'You were disconnected by an operator. You can log in again.',
};

/* ---------------------------------------------------------------- boot */

async function boot() {
    apply_theme();
    if (dark_query) dark_query.addEventListener('change', apply_theme);
    const token = store.get(KEY.token);
    const notice = store.get('chatgw.notice');
    store.del('chatgw.notice');
    if (!token) return show_login(notice, start_app);
    try {
        const res = await fetch('/api/me', { headers: { Authorization: 'Bearer ' + token } });
        if (res.status === 401) {
            store.del(KEY.token);
            return show_login('Your session has expired. Please log in again.', start_app);
        }
        const data = await res.json();
        if (data && data.user && typeof data.user.id === 'string') {
            store.set(KEY.user, JSON.stringify(data.user));
            return start_app(token, data.user);
        }
    } catch (e) {
        /* gateway unreachable: start anyway, the connection retries (and may use a fallback node) */
    }
    const cached = store.json(KEY.user, null);
    if (cached && typeof cached.id === 'string') return start_app(token, cached);
    show_login(null, start_app);
}

/* ---------------------------------------------------------------- the chat app */

function start_app(token, me) {
    $('login-view').hidden = true;
    $('app-view').hidden = false;
    const app = new ChatApp(token, me);
    app.start();
}

class ChatApp {
    constructor(token, me) {
        this.token = token;
        this.me = me;
        this.rooms = new Map();
        this.convs = new Map();
        this.users = new Map();
        this.known = new Map();
        this.outbox = new Map();
        this.els = new WeakMap();
        this.typing = new Map();
        this.active = null;
        this.cache = new LocalCache(me.id);
        this.save_timers = new Map();
        this.keep = clamp_keep(Number(store.get(KEY.keep, '200')));
        this.ukey = (k) => 'chatgw.' + k + '.' + me.id;
        this.joined_rooms = new Set(store.json(this.ukey('rooms'), DEFAULT_ROOMS).filter((r) => ROOM_RE.test(r)));
        this.last_typing_sent = 0;
        this.mention = { open: false, items: [], index: 0 };
        this.conn = null;
        this.last_auth_check = 0;
        this.search_seq = 0;
        this.search_timer = null;
        this.drafts = new Map();
        this.history_max = 200;
    }

    /* ---- startup */

    async start() {
        this.remember_user(this.me);
        fill_avatar($('me-avatar'), this.me.avatar, this.me.name);
        $('me-name').textContent = this.me.name;
        for (const r of DEFAULT_ROOMS) this.rooms.set(r, { name: r, topic: '', members: 0 });
        for (const r of this.joined_rooms) this.conv('room:' + r);
        for (const d of store.json(this.ukey('dms'), [])) {
            if (d && typeof d.id === 'string') {
                this.remember_user(d);
                this.conv('dm:' + d.id);
            }
        }
        /* Unread counts come from the read markers kept on the server (welcome.last_read); the
         * copy from the last visit only bridges the moments before the welcome. */
        const reads = store.json(this.ukey('reads'), {});
        for (const [key, n] of Object.entries(reads && typeof reads === 'object' ? reads : {})) {
            if (this.convs.has(key) && Number.isInteger(n) && n >= 0) this.convs.get(key).read = n;
        }
        document.addEventListener('visibilitychange', () => this.mark_read(this.convs.get(this.active)));
        this.bind_ui();
        const saved_active = store.get(this.ukey('active'), 'room:general');
        this.switch_to(this.convs.has(saved_active) ? saved_active : 'room:general');
        /* after login (or a reload) the user wants to type, not to Tab through the sidebar */
        $('composer').focus();
        await this.load_cache();
        this.conn = new Connection(this.token, {
            status: (s, info) => this.on_status(s, info),
            welcome: (m, again) => this.on_welcome(m, again),
            message: (m) => this.on_server(m),
            auth_failed: (why) => this.auth_failed(why),
            check_auth: () => this.check_auth(),
        });
        this.conn.start();
        window.addEventListener('online', () => this.conn.retry_now());
        window.addEventListener('beforeunload', () => this.flush_saves());
    }

    async load_cache() {
        const recs = await this.cache.load_all();
        for (const r of recs) {
            if (!r || typeof r.conv !== 'string') continue;
            if (!r.conv.startsWith('room:') && !r.conv.startsWith('dm:')) continue;
            /* Only conversations we still follow; a left room keeps its cache until cleared. */
            if (!this.convs.has(r.conv)) continue;
            const c = this.conv(r.conv);
            for (const m of Array.isArray(r.msgs) ? r.msgs : []) {
                if (!m || !Number.isInteger(m.seq) || m.seq < 1 || c.msgs.has(m.seq)) continue;
                if (m.imported) m.from = this.resolve_sender(m.from, c);
                c.msgs.set(m.seq, m);
            }
            if (Array.isArray(r.system)) c.system = r.system.filter((l) => l && typeof l.text === 'string');
            if (Number.isInteger(r.purged) && r.purged > c.purged) c.purged = r.purged;
        }
        this.render_sidebar();
        this.render_messages('bottom');
    }

    /* ---- conversations */

    conv(key) {
        let c = this.convs.get(key);
        if (c) return c;
        const is_room = key.startsWith('room:');
        c = {
            key,
            kind: is_room ? 'room' : 'dm',
            name: key.slice(is_room ? 5 : 3),
            msgs: new Map(),
            pending: new Map(),
            system: [],
            /* unknown (null) until the welcome's markers: no badge from a guess */
            read: this.marks ? (Number.isInteger(this.marks[key]) ? this.marks[key] : 0) : null,
            divider: 0,
            /* the seq up to which an operator purged the room: resume goes on from there */
            purged: 0,
            joined: false,
            has_more: true,
            loading: false,
            topic: '',
            members: new Map(),
        };
        this.convs.set(key, c);
        return c;
    }

    title(c) {
        if (c.kind === 'room') return '#' + c.name;
        const u = this.known.get(c.name);
        return u ? u.name : c.name;
    }

    last_seq(c) {
        let max = c.purged;
        for (const [seq, m] of c.msgs) if (!m.imported && seq > max) max = seq;
        return max;
    }

    oldest_seq(c) {
        let min = 0;
        for (const seq of c.msgs.keys()) if (!min || seq < min) min = seq;
        return min;
    }

    remember_user(u) {
        if (!u || typeof u.id !== 'string') return;
        const prev = this.known.get(u.id) || {};
        this.known.set(u.id, {
            id: u.id,
            name: typeof u.name === 'string' ? u.name : prev.name || u.id,
            avatar: typeof u.avatar === 'string' ? u.avatar : prev.avatar,
        });
    }

    save_dms() {
        const list = [];
        for (const c of this.convs.values()) {
            if (c.kind !== 'dm') continue;
            const u = this.known.get(c.name) || { id: c.name, name: c.name };
            list.push({ id: u.id, name: u.name, avatar: u.avatar });
        }
        store.set(this.ukey('dms'), JSON.stringify(list));
    }

    open_dm(user) {
        this.remember_user(user);
        const key = 'dm:' + user.id;
        const fresh = !this.convs.has(key);
        const c = this.conv(key);
        if (fresh) {
            this.save_dms();
            this.fetch_latest(c);
        }
        this.switch_to(key);
    }

    switch_to(key) {
        const c = this.conv(key);
        /* each conversation keeps its own unsent draft */
        const ta = $('composer');
        if (this.active !== key) {
            if (this.active) this.drafts.set(this.active, ta.value);
            ta.value = this.drafts.get(key) || '';
            this.autosize();
        }
        if (this.active !== key) {
            /* the "new messages" line stays where the unread part began while the room is open */
            c.divider = 0;
            if (this.unread(c) > 0) {
                for (const [seq, m] of [...c.msgs].sort((x, y) => x[0] - y[0])) {
                    if (seq > c.read && this.counts_as_unread(m)) {
                        c.divider = seq;
                        break;
                    }
                }
            }
        }
        this.active = key;
        store.set(this.ukey('active'), key);
        $('chat-title').textContent = this.title(c);
        $('chat-topic').textContent = c.kind === 'room' ? c.topic || (this.rooms.get(c.name) || {}).topic || '' : 'private conversation';
        $('composer').placeholder = 'Message ' + this.title(c);
        $('leave-room').hidden = c.kind !== 'room' || c.name === 'general';
        this.render_sidebar();
        this.render_messages('force-bottom');
        this.render_typing();
        this.update_hint();
        this.close_drawers();
        this.mark_read(c);
        if (c.kind === 'room' && !this.joined_rooms.has(c.name)) {
            this.joined_rooms.add(c.name);
            this.save_rooms();
            this.join(c.name);
        }
    }

    /* Leave a room: no more traffic from it; it stays listed (in italics) to join again. */
    async leave_room(c) {
        if (c.kind !== 'room' || c.name === 'general') return;
        this.joined_rooms.delete(c.name);
        this.save_rooms();
        c.joined = false;
        if (this.conn && this.conn.online) this.conn.request({ type: 'leave', room: c.name }).catch(() => {});
        this.switch_to('room:general');
    }

    save_rooms() {
        store.set(this.ukey('rooms'), JSON.stringify([...this.joined_rooms]));
    }

    /*
     * An operator deleted the room with its history (room_deleted). Nothing of it is kept here
     * either: a room created later under the same name counts seqs from 1 again, and cached
     * messages would pass for its own.
     */
    on_room_deleted(room) {
        const key = 'room:' + room;
        this.rooms.delete(room);
        this.joined_rooms.delete(room);
        this.save_rooms();
        this.typing.delete(room);
        this.drafts.delete(key);
        if (this.marks) delete this.marks[key];
        if (this.convs.has(key)) {
            clearTimeout(this.save_timers.get(key));
            this.save_timers.delete(key);
            this.convs.delete(key);
            this.cache.remove(key);
            this.save_reads();
        }
        this.drop_results(key, Infinity);
        if (this.active !== key) return this.render_sidebar();
        const text = '#' + room + ' was deleted by an operator.';
        this.active = null;
        this.switch_to('room:general');
        this.add_system(this.convs.get('room:general'), { ts: Date.now(), text }, true);
        toast(text);
    }

    /*
     * An operator deleted the room's history up to `seq` (room_purged): drop it from the view,
     * the cache (and so the export) and the search results. The room's seq goes on, so `purged`
     * stands in for the newest seq we no longer hold when resuming with `since`.
     */
    on_room_purged(room, seq) {
        const c = this.convs.get('room:' + room);
        if (!c) return;
        c.purged = Math.max(c.purged, seq);
        for (const [s, m] of c.msgs) {
            if (s > seq) continue;
            this.els.delete(m);
            c.msgs.delete(s);
        }
        if (c.divider <= seq) c.divider = 0;
        c.has_more = false;
        this.drop_results(c.key, seq);
        this.add_system(c, { ts: Date.now(), text: 'An operator cleared the history of #' + room + '.' }, false);
        if (this.active === c.key) this.render_messages('keep');
        else this.render_sidebar();
    }

    /* ---- connection events */

    on_status(state, info) {
        const s = $('conn-status');
        s.dataset.state = state;
        if (state === 'online') s.textContent = 'online';
        else if (state === 'connecting') s.textContent = 'connecting';
        else if (state === 'reconnecting') s.textContent = info.seconds > 0 ? 'reconnecting in ' + info.seconds + ' s' : 'reconnecting';
        else if (state === 'lost') s.textContent = 'offline';
        else s.textContent = 'offline';
        s.title = info && info.node ? 'connected to ' + info.node : '';
        $('conn-banner').hidden = state !== 'lost';
        document.body.classList.toggle('is-offline', state !== 'online');
    }

    async on_welcome(msg, again) {
        if (msg.user && typeof msg.user.id === 'string') {
            this.me = Object.assign({}, this.me, msg.user);
            this.remember_user(this.me);
            $('me-name').textContent = this.me.name;
            fill_avatar($('me-avatar'), this.me.avatar, this.me.name);
        }
        if (Number.isInteger(msg.history_max) && msg.history_max > 0) this.history_max = msg.history_max;
        this.set_rooms(msg.rooms);
        const marks = msg.last_read && typeof msg.last_read === 'object' ? msg.last_read : {};
        this.marks = marks;
        for (const [key, n] of Object.entries(marks)) {
            if (key.startsWith('dm:') && Number.isInteger(n) && n > 0 && !this.convs.has(key)) {
                /* a conversation this device has not seen yet, read elsewhere */
                this.remember_user({ id: key.slice(3), name: key.slice(3) });
                this.conv(key);
                this.save_dms();
            }
        }
        for (const c of this.convs.values()) {
            c.joined = false;
            c.read = Number.isInteger(marks[c.key]) ? marks[c.key] : 0;
        }
        this.save_reads();
        this.refresh_users();
        const joins = [...this.joined_rooms].map((r) => this.join(r));
        const dms = [...this.convs.values()].filter((c) => c.kind === 'dm').map((c) => this.fetch_latest(c));
        await Promise.allSettled(joins.concat(dms));
        this.flush_outbox();
        if (again) this.render_messages('bottom');
    }

    set_rooms(list) {
        if (!Array.isArray(list)) return;
        for (const r of list) {
            if (!r || typeof r.name !== 'string' || !ROOM_RE.test(r.name)) continue;
            this.rooms.set(r.name, {
                name: r.name,
                topic: typeof r.topic === 'string' ? r.topic : '',
                members: Number.isFinite(r.members) ? r.members : 0,
            });
        }
        this.render_sidebar();
    }

    async refresh_users() {
        try {
            const r = await this.conn.request({ type: 'users' });
            this.users.clear();
            for (const u of Array.isArray(r.users) ? r.users : []) {
                if (u && typeof u.id === 'string') {
                    this.users.set(u.id, u);
                    this.remember_user(u);
                }
            }
            this.render_users();
            this.render_sidebar();
        } catch (e) {
            /* offline again: the next welcome refreshes */
        }
    }

    async join(room) {
        if (!this.conn || !this.conn.online) return;
        const c = this.conv('room:' + room);
        const since = this.last_seq(c);
        const frame = { type: 'join', room };
        if (since > 0) frame.since = since;
        try {
            const r = await this.conn.request(frame);
            c.joined = true;
            c.topic = typeof r.topic === 'string' ? r.topic : '';
            c.members.clear();
            for (const u of Array.isArray(r.members) ? r.members : []) {
                if (u && typeof u.id === 'string') {
                    c.members.set(u.id, u);
                    this.remember_user(u);
                }
            }
            const msgs = Array.isArray(r.messages) ? r.messages : [];
            /* Not recovered and the room's seq is now below ours: its history was reset (a new
             * Redis, say). Our cached seqs mean nothing any more: start over from the server. */
            if (since > 0 && r.recovered === false && !msgs.some((m) => m && m.seq >= since)) {
                for (const m of c.msgs.values()) this.els.delete(m);
                c.msgs.clear();
                c.purged = 0;
                c.has_more = true;
            }
            const added = this.merge(c, msgs, since > 0);
            this.apply_reactions(c, msgs, r.reactions);
            if (Number.isInteger(r.last_read) && r.last_read > 0) {
                c.read = r.last_read;
            } else if (Number.isInteger(r.last_read)) {
                /* Never marked: what was there before the first visit is not news. */
                this.send_read(c, this.last_seq(c));
            }
            this.save_reads();
            if (!since) c.has_more = msgs.length > 0 && Math.min(...msgs.map((m) => m.seq || 1)) > 1;
            if (since > 0 && r.recovered === false && added) {
                this.add_system(c, { ts: Date.now(), text: 'Some messages from while you were away may be missing.' }, false);
            }
            if (this.active === c.key) {
                $('chat-topic').textContent = c.topic;
                this.render_messages(added ? 'bottom' : 'keep');
                this.mark_read(c);
            }
            this.render_sidebar();
        } catch (e) {
            if (e.code === 'bad_request' || e.code === 'not_found' || e.code === 'forbidden') {
                this.joined_rooms.delete(room);
                this.save_rooms();
                toast('Could not join #' + room + ': ' + e.message);
            }
        }
    }

    async fetch_latest(c) {
        if (!this.conn || !this.conn.online) return;
        const frame = c.kind === 'room' ? { type: 'history', room: c.name, limit: 50 } : { type: 'history', with: c.name, limit: 50 };
        try {
            const r = await this.conn.request(frame);
            const msgs = Array.isArray(r.messages) ? r.messages : [];
            const had = c.msgs.size > 0;
            const added = this.merge(c, msgs, had);
            const changed = this.apply_reactions(c, msgs, r.reactions);
            if (!had) c.has_more = typeof r.more === 'boolean' ? r.more : msgs.length >= 50;
            if (this.active === c.key) {
                this.render_messages(added || changed ? 'bottom' : 'keep');
                this.mark_read(c);
            }
            this.render_sidebar();
        } catch (e) {
            /* retried on the next welcome */
        }
    }

    /* An image the cache kept only as a stub: fetch that one message again. */
    async load_stub(c, m) {
        if (!c || !this.conn || !this.conn.online) return toast('Not connected. Try again in a moment.');
        const frame = c.kind === 'room' ? { type: 'history', room: c.name, before: m.seq + 1, limit: 1 } : { type: 'history', with: c.name, before: m.seq + 1, limit: 1 };
        try {
            const r = await this.conn.request(frame);
            const got = (Array.isArray(r.messages) ? r.messages : []).filter((x) => x && x.seq === m.seq);
            if (!got.length) return toast('That image is no longer on the server.');
            this.merge(c, got, false);
            this.apply_reactions(c, got, r.reactions);
            if (this.active === c.key) this.render_messages('keep');
        } catch (e) {
            toast('Could not load the image: ' + e.message);
        }
    }

    /* Older history when scrolled to the top. */
    async load_older(c) {
        if (c.loading || !c.has_more || !this.conn || !this.conn.online) return;
        const before = this.oldest_seq(c);
        if (!before) return;
        if (before <= 1) {
            c.has_more = false;
            this.render_messages('keep');
            return;
        }
        c.loading = true;
        this.render_messages('keep');
        const frame = c.kind === 'room' ? { type: 'history', room: c.name, before, limit: 50 } : { type: 'history', with: c.name, before, limit: 50 };
        try {
            const r = await this.conn.request(frame);
            const msgs = Array.isArray(r.messages) ? r.messages : [];
            this.merge(c, msgs, false);
            this.apply_reactions(c, msgs, r.reactions);
            const more = typeof r.more === 'boolean' ? r.more : msgs.length >= 50;
            if (!more || !msgs.length || this.oldest_seq(c) <= 1) c.has_more = false;
        } catch (e) {
            /* leave has_more: try again on the next scroll */
        } finally {
            c.loading = false;
        }
        if (this.active === c.key) this.render_messages('prepend');
    }

    /* ---- server frames */

    on_server(m) {
        switch (m.type) {
        case 'message':
            if (typeof m.room === 'string' && ROOM_RE.test(m.room)) this.on_message(this.conv('room:' + m.room), m);
            break;
        case 'private': {
            if (!m.from || !m.to || typeof m.from.id !== 'string' || typeof m.to.id !== 'string') break;
            const other = m.from.id === this.me.id ? m.to : m.from;
            this.remember_user(other);
            const key = 'dm:' + other.id;
            const fresh = !this.convs.has(key);
            const c = this.conv(key);
            if (fresh) this.save_dms();
            this.on_message(c, m);
            break;
        }
        case 'ack':
            if (typeof m.id === 'string' && this.outbox.has(m.id)) this.on_ack(m);
            break;
        case 'presence':
            this.on_presence(m);
            break;
        case 'online':
            if (m.user && typeof m.user.id === 'string') {
                this.users.set(m.user.id, m.user);
                this.remember_user(m.user);
                this.render_users();
                this.render_sidebar();
            }
            break;
        case 'offline':
            if (m.user && typeof m.user.id === 'string') {
                this.users.delete(m.user.id);
                this.render_users();
                this.render_sidebar();
            }
            break;
        case 'presence_batch': {
            /* online/offline of one interval, a user in one list at most (net.js asks for it) */
            const ok = (u) => u && typeof u.id === 'string';
            for (const u of Array.isArray(m.online) ? m.online.filter(ok) : []) {
                this.users.set(u.id, u);
                this.remember_user(u);
            }
            for (const u of Array.isArray(m.offline) ? m.offline.filter(ok) : []) this.users.delete(u.id);
            this.render_users();
            this.render_sidebar();
            break;
        }
        case 'resync':
            /* Messages may have been missed where the gateway could not repair
             * the gap from history: join again with `since` (a room) or
             * fetch the newest page (a conversation). */
            if (typeof m.room === 'string' && ROOM_RE.test(m.room)) {
                this.join(m.room);
            } else if (typeof m.with === 'string') {
                const c = this.convs.get('dm:' + m.with);
                if (c) this.fetch_latest(c);
            }
            break;
        case 'room_created':
            if (typeof m.room === 'string' && ROOM_RE.test(m.room)) {
                const prev = this.rooms.get(m.room);
                this.rooms.set(m.room, { name: m.room, topic: typeof m.topic === 'string' ? m.topic : '', members: prev ? prev.members : 0 });
                this.render_sidebar();
            }
            break;
        case 'room_deleted':
            if (typeof m.room === 'string' && ROOM_RE.test(m.room)) this.on_room_deleted(m.room);
            break;
        case 'room_purged':
            if (typeof m.room === 'string' && Number.isInteger(m.seq) && m.seq >= 0) this.on_room_purged(m.room, m.seq);
            break;
        case 'typing':
            this.on_typing(m);
            break;
        case 'broadcast': {
            const who = m.from && typeof m.from.name === 'string' ? m.from.name : 'admin';
            const text = '📢 ' + who + ': ' + String(m.body || '');
            toast(text);
            const c = this.convs.get(this.active);
            if (c) this.add_system(c, { ts: Number(m.ts) || Date.now(), text }, true);
            break;
        }
        case 'rooms':
            this.set_rooms(m.rooms);
            break;
        case 'read': {
            const c = this.event_conv(m);
            if (this.marks) this.marks[m.room ? 'room:' + m.room : 'dm:' + m.with] = m.seq;
            if (c && Number.isInteger(m.seq) && m.seq >= 0) {
                c.read = m.seq;
                this.save_reads();
                this.render_sidebar();
            }
            break;
        }
        case 'edited':
        case 'deleted':
        case 'reaction':
            this.on_change(m);
            break;
        case 'error':
            if (m.code !== 'rate_limited') toast('Server: ' + (m.message || m.code));
            break;
        default:
            break;
        }
    }

    on_message(c, m) {
        if (!Number.isInteger(m.seq) || m.seq < 1) return;
        const added = this.merge(c, [m], true);
        if (!added) return;
        if (this.active === c.key) {
            this.render_messages('bottom');
            this.mark_read(c);
        } else {
            this.render_sidebar();
        }
        if (m.from && typeof m.from.id === 'string' && c.kind === 'room') this.clear_typing(c.name, m.from.id);
        if (m.from && m.from.id !== this.me.id) this.announce(c, m);
    }

    /*
     * Merge server messages into a conversation: dedupe by seq, and a message carrying the id of
     * one of ours still pending confirms it instead of appearing twice. Returns how many are new.
     */
    merge(c, msgs) {
        let added = 0;
        for (const m of msgs) {
            if (!m || !Number.isInteger(m.seq) || m.seq < 1) continue;
            if (m.from) this.remember_user(m.from);
            const mine = m.from && m.from.id === this.me.id;
            if (mine && typeof m.id === 'string' && c.pending.has(m.id)) {
                this.confirm(c, c.pending.get(m.id), m.seq, m.ts);
                continue;
            }
            const prev = c.msgs.get(m.seq);
            /* Same seq and same time: a repeat, unless it was edited or deleted meanwhile. A
             * different time means the server's copy wins. */
            if (prev && !prev.imported && !prev.stub && (!Number.isFinite(Number(m.ts)) || prev.ts === Number(m.ts))) {
                const body = typeof m.body === 'string' ? m.body : '';
                if (prev.body !== body || !!prev.edited !== (m.edited === true) || !!prev.deleted !== (m.deleted === true)) {
                    this.set_content(c, prev, body, m.edited === true, m.deleted === true);
                }
                continue;
            }
            const msg = {
                seq: m.seq,
                ts: Number(m.ts) || Date.now(),
                from: m.from && typeof m.from === 'object' ? { id: String(m.from.id || ''), name: String(m.from.name || ''), avatar: m.from.avatar } : { id: '', name: 'unknown' },
                kind: ['text', 'code', 'image'].includes(m.kind) ? m.kind : 'text',
                body: typeof m.body === 'string' ? m.body : '',
            };
            if (typeof m.lang === 'string') msg.lang = m.lang;
            if (typeof m.id === 'string') msg.id = m.id;
            if (m.edited === true) msg.edited = true;
            if (m.deleted === true) msg.deleted = true;
            if (prev && prev.reactions) msg.reactions = prev.reactions;
            if (prev) this.els.delete(prev);
            c.msgs.set(m.seq, msg);
            added++;
        }
        if (added) this.schedule_save(c);
        return added;
    }

    confirm(c, msg, seq, ts) {
        c.pending.delete(msg.id);
        this.outbox.delete(msg.id);
        msg.pending = false;
        msg.failed = null;
        msg.seq = seq;
        if (Number(ts)) msg.ts = Number(ts);
        const dup = c.msgs.get(seq);
        if (dup && dup !== msg) this.els.delete(dup);
        c.msgs.set(seq, msg);
        /* stored now: drawn again with the tools (react, edit, delete) of a stored message */
        this.els.delete(msg);
        this.schedule_save(c);
        if (this.active === c.key) this.render_messages('keep');
    }

    /* ---- read markers, edits, reactions (docs/protocol.md) */

    counts_as_unread(m) {
        return !!m && !m.imported && !m.deleted && !(m.from && m.from.id === this.me.id);
    }

    /* Messages here after the read marker, others' and not deleted: the same on every device
     * that holds the same messages, whatever it cached. */
    unread(c) {
        if (!Number.isInteger(c.read)) return 0;
        let n = 0;
        for (const [seq, m] of c.msgs) if (seq > c.read && this.counts_as_unread(m)) n++;
        return n;
    }

    save_reads() {
        const reads = {};
        for (const c of this.convs.values()) if (Number.isInteger(c.read) && c.read > 0) reads[c.key] = c.read;
        store.set(this.ukey('reads'), JSON.stringify(reads));
    }

    send_read(c, seq) {
        if (!(seq > 0)) return;
        c.read = Math.max(c.read || 0, seq);
        this.save_reads();
        if (!this.conn || !this.conn.online) return;
        const frame = c.kind === 'room' ? { type: 'read', room: c.name, seq } : { type: 'read', with: c.name, seq };
        this.conn.request(frame).catch(() => {});
    }

    /* The open conversation is read as far as it goes, while the page is seen. */
    mark_read(c) {
        if (!c || this.active !== c.key || document.visibilityState === 'hidden') return;
        const latest = this.last_seq(c);
        if (latest > (c.read || 0)) this.send_read(c, latest);
        this.render_sidebar();
    }

    event_conv(m) {
        if (typeof m.room === 'string' && ROOM_RE.test(m.room)) return this.convs.get('room:' + m.room) || null;
        if (typeof m.with === 'string') return this.convs.get('dm:' + m.with) || null;
        return null;
    }

    set_content(c, msg, body, edited, deleted) {
        msg.body = body;
        msg.edited = edited && !deleted;
        msg.deleted = deleted;
        if (deleted) delete msg.reactions;
        this.els.delete(msg);
        this.schedule_save(c);
    }

    on_change(m) {
        const c = this.event_conv(m);
        const msg = c && Number.isInteger(m.seq) ? c.msgs.get(m.seq) : null;
        if (!msg) return;
        if (m.type === 'edited' && typeof m.body === 'string') {
            this.set_content(c, msg, m.body, true, false);
        } else if (m.type === 'deleted') {
            this.set_content(c, msg, '', false, true);
        } else if (m.type === 'reaction' && typeof m.emoji === 'string' && typeof m.user === 'string') {
            const r = Object.assign({}, msg.reactions || {});
            const users = (r[m.emoji] || []).filter((u) => u !== m.user);
            if (m.on === true) users.push(m.user);
            if (users.length) r[m.emoji] = users;
            else delete r[m.emoji];
            msg.reactions = r;
            this.els.delete(msg);
            this.schedule_save(c);
        } else {
            return;
        }
        if (this.active === c.key) this.render_messages('keep');
        else this.render_sidebar();
    }

    /* The reactions of a joined/history page: {seq: {emoji: [ids]}}; messages of the page not
     * named have none. Returns whether anything changed. */
    apply_reactions(c, msgs, map) {
        const all = map && typeof map === 'object' ? map : {};
        let changed = false;
        for (const m of msgs) {
            const msg = m && Number.isInteger(m.seq) ? c.msgs.get(m.seq) : null;
            if (!msg) continue;
            const want = all[m.seq] && typeof all[m.seq] === 'object' ? all[m.seq] : {};
            const clean = {};
            for (const [e, users] of Object.entries(want)) {
                if (Array.isArray(users) && users.length) clean[e] = users.filter((u) => typeof u === 'string');
            }
            if (JSON.stringify(clean) === JSON.stringify(msg.reactions || {})) continue;
            msg.reactions = clean;
            this.els.delete(msg);
            changed = true;
        }
        if (changed) this.schedule_save(c);
        return changed;
    }

    target(c) {
        return c.kind === 'room' ? { room: c.name } : { with: c.name };
    }

    async react(c, msg, emoji) {
        if (!c || !msg.seq) return;
        try {
            await this.conn.request(Object.assign({ type: 'react', seq: msg.seq, emoji }, this.target(c)));
        } catch (e) {
            toast('Could not react: ' + (e.message || e.code || 'not connected'));
        }
    }

    async remove_message(c, msg) {
        if (!c || !msg.seq) return;
        try {
            await this.conn.request(Object.assign({ type: 'delete', seq: msg.seq }, this.target(c)));
            this.set_content(c, msg, '', false, true);
            if (this.active === c.key) this.render_messages('keep');
        } catch (e) {
            toast('Could not delete: ' + (e.message || e.code || 'not connected'));
        }
    }

    /* Edit in place: the body becomes a text box; Enter saves, Escape gives up. */
    start_edit(c, msg) {
        const row = this.els.get(msg);
        if (!c || !row || !msg.seq) return;
        const body = row.querySelector('.msg-body');
        const box = el('div', 'msg-editing');
        const ta = el('textarea', 'edit-input');
        ta.dataset.testid = 'edit-input';
        ta.value = msg.body;
        ta.setAttribute('aria-label', 'Edit message');
        const save = el('button', 'btn small primary', 'Save');
        save.type = 'button';
        save.dataset.testid = 'edit-save';
        const cancel = el('button', 'btn small', 'Cancel');
        cancel.type = 'button';
        const done = () => {
            this.els.delete(msg);
            this.render_messages('keep');
        };
        const submit = async () => {
            const text = ta.value;
            const limit = LIMITS[msg.kind] || LIMITS.text;
            if (!text.trim()) return toast('A message cannot be empty: delete it instead.');
            if (cp_len(text) > limit) return toast('Too long: at most ' + limit + ' characters.');
            if (text === msg.body) return done();
            try {
                await this.conn.request(Object.assign({ type: 'edit', seq: msg.seq, body: text }, this.target(c)));
                this.set_content(c, msg, text, true, false);
                done();
            } catch (e) {
                toast('Could not edit: ' + (e.message || e.code || 'not connected'));
            }
        };
        ta.addEventListener('keydown', (ev) => {
            if (ev.key === 'Enter' && !ev.shiftKey) {
                ev.preventDefault();
                submit();
            } else if (ev.key === 'Escape') {
                ev.preventDefault();
                done();
            }
        });
        save.addEventListener('click', submit);
        cancel.addEventListener('click', done);
        box.append(ta, save, cancel);
        body.replaceWith(box);
        ta.focus();
    }

    on_ack(m) {
        const o = this.outbox.get(m.id);
        if (!o) return;
        const c = this.conv(o.conv);
        if (Number.isInteger(m.seq) && m.seq > 0) this.confirm(c, o.msg, m.seq, m.ts);
    }

    on_presence(m) {
        if (typeof m.room !== 'string' || !m.user || typeof m.user.id !== 'string') return;
        const c = this.convs.get('room:' + m.room);
        if (!c) return;
        this.remember_user(m.user);
        const name = typeof m.user.name === 'string' ? m.user.name : m.user.id;
        if (m.event === 'join') c.members.set(m.user.id, m.user);
        else if (m.event === 'leave') c.members.delete(m.user.id);
        else return;
        if (m.user.id === this.me.id) return;
        if (!c.left) c.left = new Map();
        const gone = c.left.get(m.user.id);
        c.left.delete(m.user.id);
        if (m.event === 'join' && gone && Date.now() - gone.ts < REJOIN_MS) {
            const i = c.system.indexOf(gone);
            if (i >= 0) c.system.splice(i, 1);
            this.schedule_save(c);
            if (this.active === c.key) this.render_messages('keep');
            return;
        }
        const line = this.add_system(c, { ts: Date.now(), text: name + (m.event === 'join' ? ' joined #' : ' left #') + m.room }, true);
        if (m.event === 'leave') c.left.set(m.user.id, line);
    }

    add_system(c, line, render) {
        const item = { system: true, ts: line.ts, text: line.text };
        c.system.push(item);
        if (c.system.length > this.keep) c.system.splice(0, c.system.length - this.keep);
        this.schedule_save(c);
        if (render && this.active === c.key) this.render_messages('bottom');
        return item;
    }

    /* Read out a new message in the open conversation (or that a private one arrived), politely. */
    announce(c, m) {
        const who = m.from && m.from.name ? m.from.name : 'someone';
        let text;
        if (this.active === c.key) text = who + ': ' + (m.kind === 'image' ? 'an image' : m.kind === 'code' ? 'a code block' : String(m.body).slice(0, 300));
        else if (c.kind === 'dm') text = 'New private message from ' + who;
        else return;
        const a = $('announcer');
        const p = el('p', null, text);
        a.appendChild(p);
        while (a.childNodes.length > 3) a.firstChild.remove();
    }

    on_typing(m) {
        if (typeof m.room !== 'string') return;
        let id = null;
        let name = null;
        if (m.user && typeof m.user === 'object') {
            id = String(m.user.id || '');
            name = typeof m.user.name === 'string' ? m.user.name : null;
        } else if (typeof m.user === 'string') {
            id = m.user;
        }
        if (!id || id === this.me.id) return;
        if (!name) name = (this.known.get(id) || {}).name || id;
        let room = this.typing.get(m.room);
        if (!room) this.typing.set(m.room, (room = new Map()));
        const prev = room.get(id);
        if (prev) clearTimeout(prev.timer);
        room.set(id, { name, timer: setTimeout(() => this.clear_typing(m.room, id), 5000) });
        this.render_typing();
    }

    clear_typing(room, id) {
        const r = this.typing.get(room);
        if (!r || !r.has(id)) return;
        clearTimeout(r.get(id).timer);
        r.delete(id);
        this.render_typing();
    }

    render_typing() {
        const ind = $('typing-indicator');
        const c = this.convs.get(this.active);
        const r = c && c.kind === 'room' ? this.typing.get(c.name) : null;
        const names = r ? [...r.values()].map((t) => t.name) : [];
        let text = '';
        if (names.length === 1) text = names[0] + ' is typing…';
        else if (names.length === 2) text = names[0] + ' and ' + names[1] + ' are typing…';
        else if (names.length > 2) text = 'Several people are typing…';
        ind.textContent = text;
        ind.classList.toggle('active', !!text);
    }

    /* Start over from a clean page: no second app instance bound to the same DOM. */
    auth_failed(why) {
        this.conn.stop();
        this.flush_saves();
        store.del(KEY.token);
        store.set('chatgw.notice', SIGNED_OUT_NOTICE[why] || 'Your session has expired. Please log in again.');
        location.reload();
    }

    /* After a failed attempt, ask the page's gateway whether the token itself is the problem. */
    async check_auth() {
        if (Date.now() - this.last_auth_check < 10000) return;
        this.last_auth_check = Date.now();
        try {
            const res = await fetch('/api/me', { headers: { Authorization: 'Bearer ' + this.token } });
            if (res.status === 401) this.auth_failed();
        } catch (e) {
            /* the page's node is down: not an auth problem */
        }
    }

    /* ---- sending */

    send_message(c, content) {
        this.enqueue(c, this.add_pending(c, content));
    }

    /* Show one of our messages right away, before it can be sent (an image still shrinking). */
    add_pending(c, content) {
        const msg = { id: rand_id('m'), ts: Date.now(), from: { id: this.me.id, name: this.me.name, avatar: this.me.avatar }, kind: content.kind, body: content.body, pending: true };
        if (content.lang) msg.lang = content.lang;
        if (content.preparing) msg.preparing = content.preparing;
        c.pending.set(msg.id, msg);
        if (this.active === c.key) this.render_messages('force-bottom');
        return msg;
    }

    enqueue(c, msg) {
        const frame = c.kind === 'room'
            ? { type: 'message', room: c.name, kind: msg.kind, body: msg.body }
            : { type: 'private', to: c.name, kind: msg.kind, body: msg.body };
        if (msg.lang) frame.lang = msg.lang;
        this.outbox.set(msg.id, { conv: c.key, frame, msg, created: Date.now() });
        this.transmit(msg.id);
    }

    drop_pending(c, msg) {
        c.pending.delete(msg.id);
        this.els.delete(msg);
        if (this.active === c.key) this.render_messages('keep');
    }

    async transmit(id) {
        const o = this.outbox.get(id);
        if (!o || !this.conn || !this.conn.online || o.inflight) return;
        o.inflight = true;
        const c = this.conv(o.conv);
        try {
            const r = await this.conn.request(Object.assign({}, o.frame, { id }));
            o.inflight = false;
            if (Number.isInteger(r.seq) && r.seq > 0 && c.pending.has(id)) this.confirm(c, o.msg, r.seq, r.ts);
            else this.outbox.delete(id);
        } catch (e) {
            o.inflight = false;
            if (!this.outbox.has(id)) return;
            if (['disconnected', 'offline', 'closed', 'timeout'].includes(e.code)) return; /* resent on reconnect */
            if (e.code === 'rate_limited') {
                setTimeout(() => this.transmit(id), 1500);
            } else if (e.code === 'unavailable' || e.code === 'internal') {
                setTimeout(() => this.transmit(id), 3000);
            } else if (e.code === 'not_member' && c.kind === 'room' && !o.rejoined) {
                o.rejoined = true;
                await this.join(c.name);
                this.transmit(id);
            } else {
                this.outbox.delete(id);
                o.msg.failed = e.code === 'too_large' ? 'too large' : e.message || e.code || 'failed';
                const row = this.els.get(o.msg);
                if (row) update_message_el(row, o.msg);
            }
        }
    }

    flush_outbox() {
        const list = [...this.outbox.entries()].sort((a, b) => a[1].created - b[1].created);
        for (const [id] of list) this.transmit(id);
    }

    retry_failed(msg) {
        const c = [...this.convs.values()].find((x) => x.pending.get(msg.id) === msg);
        if (!c || !msg.failed) return;
        msg.failed = null;
        const frame = c.kind === 'room'
            ? { type: 'message', room: c.name, kind: msg.kind, body: msg.body }
            : { type: 'private', to: c.name, kind: msg.kind, body: msg.body };
        if (msg.lang) frame.lang = msg.lang;
        this.outbox.set(msg.id, { conv: c.key, frame, msg, created: Date.now() });
        const row = this.els.get(msg);
        if (row) update_message_el(row, msg);
        this.transmit(msg.id);
    }

    /*
     * A draft that starts with "@name " for someone this client knows (online, or a private
     * conversation) is meant for them alone: {user, rest}. Longest name first, so "@ada lovelace hi"
     * picks "ada lovelace" over "ada". Not in the private conversation with that very person.
     */
    private_target(text) {
        if (!text.startsWith('@')) return null;
        const cands = new Map();
        for (const u of this.users.values()) cands.set(u.id, u);
        for (const c of this.convs.values()) if (c.kind === 'dm' && this.known.has(c.name)) cands.set(c.name, this.known.get(c.name));
        cands.delete(this.me.id);
        const low = text.slice(1).toLowerCase();
        let best = null;
        for (const u of cands.values()) {
            const n = String(u.name || '');
            if (!n || !low.startsWith(n.toLowerCase())) continue;
            const after = text.slice(1 + n.length);
            if (after && !/^\s/u.test(after)) continue;
            if (!best || n.length > best.user.name.length) best = { user: u, rest: after.replace(/^\s+/u, '') };
        }
        if (!best || this.active === 'dm:' + best.user.id) return null;
        return best;
    }

    update_hint() {
        const hint = $('composer-hint');
        const t = this.private_target($('composer').value);
        const c = this.convs.get(this.active);
        const text = t ? 'Enter sends this privately to ' + t.user.name + (c ? ', not to ' + this.title(c) : '') + '.' : '';
        if (hint.textContent !== text) hint.textContent = text;
        hint.hidden = !t;
    }

    send_composer() {
        const ta = $('composer');
        const raw = ta.value;
        if (!raw.trim()) return;
        let c = this.convs.get(this.active);
        if (!c) return;
        /* "@bob are you there?" in a room is for bob only: never post it where others read */
        const target = this.private_target(raw);
        const text = target ? target.rest : raw;
        const code = as_code_message(text);
        const content = code || { kind: 'text', body: text.replace(/^\n+|\s+$/g, '') };
        const n = cp_len(content.body);
        if (n > LIMITS[content.kind]) {
            toast('Message too long: ' + n + ' of ' + LIMITS[content.kind] + ' characters.');
            return;
        }
        ta.value = '';
        this.autosize();
        this.close_mention();
        if (target) {
            this.open_dm(target.user);
            c = this.conv('dm:' + target.user.id);
        }
        this.update_hint();
        if (!content.body.trim()) return;
        if (target) toast('Sent privately to ' + target.user.name + '.');
        /* the next keystroke starts a new message: announce typing again right away */
        this.last_typing_sent = 0;
        this.send_message(c, content);
    }

    async send_image(file) {
        const c = this.convs.get(this.active);
        if (!c || !file) return;
        const name = file.name || 'The image';
        if (!/^image\//.test(file.type || '')) return toast(name + ' is not an image.');
        if (file.size > IMAGE_MAX_FILE) {
            return toast(name + ' is ' + fmt_size(file.size) + ': images up to ' + fmt_size(IMAGE_MAX_FILE) + ' can be sent.');
        }
        /* shrinking a big photo takes seconds: show that something is happening at once */
        const msg = this.add_pending(c, { kind: 'image', body: '', preparing: name + ' (' + fmt_size(file.size) + ')' });
        try {
            const img = await prepare_image(file, IMAGE_MAX_CHARS);
            msg.body = img.url;
            delete msg.preparing;
            this.els.delete(msg);
            if (this.active === c.key) this.render_messages('bottom');
            this.enqueue(c, msg);
        } catch (e) {
            this.drop_pending(c, msg);
            toast('Could not send ' + name + ': ' + e.message);
        }
    }

    /* ---- rendering */

    ordered_items(c) {
        const msgs = [...c.msgs.values()].sort((a, b) => a.seq - b.seq);
        const sys = [...c.system].sort((a, b) => a.ts - b.ts);
        const out = [];
        let i = 0;
        for (const m of msgs) {
            while (i < sys.length && sys[i].ts < m.ts) out.push(sys[i++]);
            out.push(m);
        }
        while (i < sys.length) out.push(sys[i++]);
        const pend = [...c.pending.values()].sort((a, b) => a.ts - b.ts);
        return out.concat(pend);
    }

    row_for(item) {
        let row = this.els.get(item);
        if (row) return row;
        if (item.system) {
            row = system_el(item);
        } else {
            row = message_el(item, this.me.id, {
                open_image: (src) => this.open_lightbox(src),
                load_stub: (m) => this.load_stub(this.convs.get(this.active), m),
                react: (m, emoji) => this.react(this.convs.get(this.active), m, emoji),
                edit: (m) => this.start_edit(this.convs.get(this.active), m),
                remove: (m) => this.remove_message(this.convs.get(this.active), m),
                names: (ids) => ids.map((id) => (this.known.get(id) || { name: id }).name).join(', '),
            });
            const state = row.querySelector('.msg-state');
            if (state) state.addEventListener('click', () => this.retry_failed(item));
        }
        this.els.set(item, row);
        return row;
    }

    /*
     * Re-render the active conversation from the model, reusing rows. mode:
     *   bottom        stay at the bottom if we were there
     *   force-bottom  scroll to the bottom
     *   prepend       keep the view still while rows are added above
     *   keep          keep scrollTop
     */
    render_messages(mode) {
        const list = $('message-list');
        const c = this.convs.get(this.active);
        if (!c) return;
        const at_bottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
        const from_bottom = list.scrollHeight - list.scrollTop;
        const top = list.scrollTop;
        const nodes = [];
        const head = el('div', 'history-edge');
        const oldest = this.oldest_seq(c);
        if (c.loading) head.textContent = 'Loading older messages…';
        else if (c.msgs.size && oldest <= 1) head.textContent = c.kind === 'room' ? 'This is the beginning of #' + c.name + '.' : 'This is the beginning of your conversation with ' + this.title(c) + '.';
        else if (!c.has_more && c.msgs.size && c.purged) head.textContent = 'Earlier messages were cleared by an operator.';
        /* nothing older on the server, yet seq 1 is not here: trimmed away, not the beginning */
        else if (!c.has_more && c.msgs.size) head.textContent = 'Older messages are no longer kept: the server keeps the last ' + this.history_max + ' messages of each conversation.';
        nodes.push(head);
        let prev = null;
        let day = '';
        for (const it of this.ordered_items(c)) {
            const d = new Date(it.ts).toDateString();
            if (d !== day) {
                day = d;
                nodes.push(el('div', 'day-sep', fmt_day(it.ts)));
                prev = null;
            }
            if (!it.system && c.divider && it.seq === c.divider) {
                const line = el('div', 'new-divider', 'New messages');
                line.dataset.testid = 'new-messages';
                line.setAttribute('role', 'separator');
                nodes.push(line);
            }
            const row = this.row_for(it);
            if (!it.system) {
                const cont = prev && !prev.system && prev.from && it.from && prev.from.id === it.from.id &&
                    prev.from.name === it.from.name && it.ts - prev.ts < 5 * 60 * 1000;
                row.classList.toggle('cont', !!cont);
            }
            nodes.push(row);
            prev = it;
        }
        if (nodes.length === 1) nodes.push(el('div', 'empty-state', c.kind === 'room' ? 'No messages yet. Say hello 👋' : 'Say hello to ' + this.title(c) + ' 👋'));
        keep_focus(list, null, () => list.replaceChildren(...nodes));
        if (mode === 'force-bottom' || (mode === 'bottom' && at_bottom)) list.scrollTop = list.scrollHeight;
        else if (mode === 'prepend') list.scrollTop = list.scrollHeight - from_bottom;
        else list.scrollTop = top;
        this.update_jump();
        /* Not enough to scroll yet: fetch more so scroll-up can work. */
        if (c.has_more && !c.loading && c.msgs.size && list.scrollHeight <= list.clientHeight + 20) {
            setTimeout(() => this.load_older(c), 0);
        }
        this.render_sidebar();
    }

    /* The "latest" button shows while the reader is well above the newest message. */
    update_jump() {
        const list = $('message-list');
        $('jump-latest').hidden = list.scrollHeight - list.scrollTop - list.clientHeight < 300;
    }

    render_sidebar() {
        const rooms = $('room-list');
        const names = new Set([...this.rooms.keys(), ...this.joined_rooms]);
        const sorted = [...names].sort((a, b) => {
            const ja = this.joined_rooms.has(a) ? 0 : 1;
            const jb = this.joined_rooms.has(b) ? 0 : 1;
            return ja - jb || a.localeCompare(b);
        });
        keep_focus(rooms, 'data-room', () => rooms.replaceChildren(...sorted.map((name) => {
            const key = 'room:' + name;
            const c = this.convs.get(key);
            const li = el('li');
            const b = el('button', 'conv-item');
            b.type = 'button';
            b.dataset.testid = 'room-item';
            b.dataset.room = name;
            b.appendChild(el('span', 'conv-hash', '#'));
            b.appendChild(el('span', 'conv-name', name));
            if (!this.joined_rooms.has(name)) {
                b.classList.add('not-joined');
                b.title = 'Join #' + name;
            }
            if (this.active === key) {
                b.classList.add('active');
                b.setAttribute('aria-current', 'page');
            }
            const n = c ? this.unread(c) : 0;
            if (n > 0 && this.active !== key) b.appendChild(this.badge(n));
            b.addEventListener('click', () => this.switch_to(key));
            li.appendChild(b);
            return li;
        })));
        const dms = [...this.convs.values()].filter((c) => c.kind === 'dm');
        const dm_list = $('dm-list');
        keep_focus(dm_list, 'data-user-id', () => dm_list.replaceChildren(...dms.map((c) => {
            const u = this.known.get(c.name) || { id: c.name, name: c.name };
            const li = el('li');
            const b = el('button', 'conv-item');
            b.type = 'button';
            b.dataset.testid = 'dm-item';
            b.dataset.userId = u.id;
            const av = avatar_el(u.avatar, u.name, 'small');
            b.appendChild(av);
            b.appendChild(el('span', 'conv-name', u.name + (u.id === this.me.id ? ' (you)' : '')));
            if (this.users.has(u.id)) b.appendChild(el('span', 'online-dot', ''));
            if (this.active === c.key) {
                b.classList.add('active');
                b.setAttribute('aria-current', 'page');
            }
            const n = this.unread(c);
            if (n > 0 && this.active !== c.key) b.appendChild(this.badge(n));
            b.addEventListener('click', () => this.switch_to(c.key));
            li.appendChild(b);
            return li;
        })));
        $('dm-empty').hidden = dms.length > 0;
        let total = 0;
        for (const c of this.convs.values()) {
            if (this.active !== c.key) total += this.unread(c);
        }
        document.title = (total ? '(' + total + ') ' : '') + 'chatgw';
        $('toggle-sidebar').classList.toggle('has-unread', total > 0);
    }

    badge(n) {
        const s = el('span', 'unread-badge', n > 99 ? '99+' : String(n));
        s.dataset.testid = 'unread-badge';
        s.setAttribute('aria-label', n + ' unread');
        return s;
    }

    render_users() {
        const list = [...this.users.values()].sort((a, b) => String(a.name).localeCompare(String(b.name)));
        $('online-count').textContent = String(list.length);
        const ul = $('user-list');
        keep_focus(ul, 'data-user-id', () => ul.replaceChildren(...list.map((u) => {
            /* a real button in a real list item: keyboard and screen readers get both for free */
            const li = el('li');
            const b = el('button', 'user-item');
            b.type = 'button';
            b.dataset.testid = 'user-item';
            b.dataset.userId = u.id;
            b.title = 'Message ' + u.name;
            b.appendChild(avatar_el(u.avatar, u.name, 'small'));
            b.appendChild(el('span', 'user-name', String(u.name || u.id)));
            if (u.id === this.me.id) b.appendChild(el('span', 'you-tag', 'you'));
            b.appendChild(el('span', 'online-dot', ''));
            b.addEventListener('click', () => this.open_dm(u));
            li.appendChild(b);
            return li;
        })));
        this.fill_user_filter();
    }

    fill_user_filter() {
        const sel = $('search-user');
        const cur = sel.value;
        const users = [...this.known.values()].sort((a, b) => String(a.name).localeCompare(String(b.name)));
        const opts = [el('option', null, 'Anyone')];
        opts[0].value = '';
        for (const u of users) {
            const o = el('option', null, u.name);
            o.value = u.id;
            opts.push(o);
        }
        sel.replaceChildren(...opts);
        sel.value = users.some((u) => u.id === cur) ? cur : '';
    }

    /* ---- persistence */

    schedule_save(c) {
        if (this.save_timers.has(c.key)) return;
        this.save_timers.set(c.key, setTimeout(() => {
            this.save_timers.delete(c.key);
            this.save(c);
        }, 400));
    }

    /*
     * Write one conversation to the cache: its newest `keep` messages, but the bodies of only the
     * newest CACHED_IMAGES images (the rest become stubs, fetched again when clicked), so a room
     * full of pictures does not rewrite tens of megabytes on every message.
     */
    save(c) {
        let images = 0;
        const msgs = [...c.msgs.values()].sort((a, b) => a.seq - b.seq).slice(-this.keep).reverse()
            .map((m) => {
                const stub = m.stub || (m.kind === 'image' && ++images > CACHED_IMAGES);
                const o = { seq: m.seq, ts: m.ts, from: m.from, kind: m.kind, body: stub ? '' : m.body };
                if (stub) o.stub = true;
                if (m.lang) o.lang = m.lang;
                if (m.id) o.id = m.id;
                if (m.imported) o.imported = true;
                if (m.edited) o.edited = true;
                if (m.deleted) o.deleted = true;
                if (m.reactions && Object.keys(m.reactions).length) o.reactions = m.reactions;
                return o;
            }).reverse();
        this.cache.put(c.key, { msgs, system: c.system.slice(-this.keep), purged: c.purged });
    }

    flush_saves() {
        for (const [key, t] of this.save_timers) {
            clearTimeout(t);
            const c = this.convs.get(key);
            if (c) this.save(c);
        }
        this.save_timers.clear();
    }

    /* ---- export / import / clear */

    export_history() {
        const convs = [...this.convs.values()].map((c) => ({
            key: c.key,
            title: this.title(c),
            items: this.ordered_items(c).filter((it) => it.system || !it.pending),
        }));
        const text = export_text(convs, this.me.name);
        const blob = new Blob([text], { type: 'text/plain;charset=utf-8' });
        const a = el('a');
        a.href = URL.createObjectURL(blob);
        const d = new Date();
        const pad = (n) => String(n).padStart(2, '0');
        a.download = 'chatgw-history-' + d.getFullYear() + pad(d.getMonth() + 1) + pad(d.getDate()) + '-' + pad(d.getHours()) + pad(d.getMinutes()) + '.txt';
        document.body.appendChild(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(a.href), 10000);
        return text;
    }

    async import_history(file) {
        const status = $('import-status');
        try {
            const text = await file.text();
            const convs = import_text(text);
            let n = 0;
            for (const ic of convs) {
                if (ic.key.startsWith('dm:')) {
                    this.remember_user({ id: ic.key.slice(3), name: ic.title });
                    if (!this.convs.has(ic.key)) {
                        this.conv(ic.key);
                        this.save_dms();
                    }
                }
                const c = this.conv(ic.key);
                for (const m of ic.messages) {
                    if (!m.seq || c.msgs.has(m.seq)) continue;
                    m.from = this.resolve_sender(m.from, c);
                    c.msgs.set(m.seq, m);
                    n++;
                }
                for (const l of ic.system) {
                    if (!c.system.some((x) => x.ts === l.ts && x.text === l.text)) c.system.push(l);
                }
                if (ic.key.startsWith('room:') && !this.joined_rooms.has(c.name)) {
                    this.rooms.set(c.name, this.rooms.get(c.name) || { name: c.name, topic: '', members: 0 });
                }
                this.schedule_save(c);
            }
            status.textContent = 'Imported ' + n + ' message' + (n === 1 ? '' : 's') + ' in ' + convs.length + ' conversation' + (convs.length === 1 ? '' : 's') + '.';
            this.render_messages('keep');
        } catch (e) {
            status.textContent = 'Import failed: ' + e.message;
        }
    }

    /*
     * The export names senders, not ids: give an imported line back its sender's id and avatar
     * (ourselves, the other side of a private conversation, else someone known by that name), so
     * it renders as theirs and the search's "From" filter finds it.
     */
    resolve_sender(from, c) {
        if (!from || typeof from.name !== 'string' || from.id) return from;
        const pick = (u) => ({ id: u.id, name: from.name, avatar: u.avatar });
        if (from.name === this.me.name) return pick(this.me);
        const other = c.kind === 'dm' ? this.known.get(c.name) : null;
        if (other && other.name === from.name) return pick(other);
        for (const u of this.users.values()) if (u.name === from.name) return pick(u);
        for (const u of this.known.values()) if (u.name === from.name) return pick(u);
        return from;
    }

    async clear_local() {
        for (const t of this.save_timers.values()) clearTimeout(t);
        this.save_timers.clear();
        await this.cache.clear_all();
        const keep_token = store.get(KEY.token);
        const keep_user = store.get(KEY.user);
        try {
            for (const k of Object.keys(localStorage)) if (k.startsWith('chatgw.')) localStorage.removeItem(k);
        } catch (e) { /* disabled */ }
        if (keep_token) store.set(KEY.token, keep_token);
        if (keep_user) store.set(KEY.user, keep_user);
        for (const c of [...this.convs.values()]) {
            if (c.kind === 'dm' && c.key !== this.active) {
                this.convs.delete(c.key);
                continue;
            }
            c.msgs.clear();
            c.system = [];
            c.has_more = true;
        }
        this.keep = 200;
        $('keep-input').value = '200';
        this.save_rooms();
        apply_theme();
        $('import-status').textContent = 'Local data cleared.';
        this.render_messages('keep');
        /* Only the copy on this device is gone: show what the server still has. */
        const again = [...this.convs.values()].filter((c) => c.kind === 'dm' || (c.joined && this.joined_rooms.has(c.name)));
        await Promise.allSettled(again.map((c) => this.fetch_latest(c)));
    }

    /* ---- search */

    search_filters() {
        const when = $('search-when').value;
        $('search-range').hidden = when !== 'custom';
        if (when !== 'custom') return { start: range_start(when), end: null, user: $('search-user').value };
        /* whole days, local time; "to" includes its own day */
        return { start: day_start($('search-from').value), end: day_start($('search-to').value, 1), user: $('search-user').value };
    }

    async run_search() {
        const q = $('search-input').value.trim();
        const box = $('search-results');
        const seq = ++this.search_seq;
        if (!q) {
            box.hidden = true;
            return;
        }
        box.hidden = false;
        const f = this.search_filters();
        const found = new Map();
        const consider = (conv_key, m, from_server) => {
            if (m.kind === 'image') return;
            if (f.start !== null && m.ts < f.start) return;
            if (f.end !== null && m.ts >= f.end) return;
            if (f.user && (!m.from || m.from.id !== f.user)) return;
            const hit = fuzzy_match(q, m.body) || (from_server ? { score: 500, start: -1, end: -1 } : null);
            if (!hit) return;
            const k = conv_key + '#' + m.seq;
            if (!found.has(k)) found.set(k, { conv: conv_key, msg: m, hit });
        };
        for (const c of this.convs.values()) for (const m of c.msgs.values()) consider(c.key, m, false);
        this.show_results(found, true);
        if (!this.conn || !this.conn.online || q.length < 2) {
            this.show_results(found, false);
            return;
        }
        const frame = { type: 'search', q };
        if (f.start !== null) frame.after = f.start - 1;
        if (f.end !== null) frame.before = f.end;
        if (f.user) frame.user = f.user;
        try {
            const r = await this.conn.request(frame);
            if (seq !== this.search_seq) return;
            for (const m of Array.isArray(r.messages) ? r.messages : []) {
                if (!m || !Number.isInteger(m.seq)) continue;
                let key = null;
                if (typeof m.room === 'string' && ROOM_RE.test(m.room)) key = 'room:' + m.room;
                else if (m.from && m.to && typeof m.from.id === 'string' && typeof m.to.id === 'string') {
                    const other = m.from.id === this.me.id ? m.to : m.from;
                    this.remember_user(other);
                    key = 'dm:' + other.id;
                }
                if (key) consider(key, Object.assign({}, m, { ts: Number(m.ts) || 0 }), true);
            }
        } catch (e) {
            /* local results stand */
        }
        if (seq === this.search_seq) this.show_results(found, false);
    }

    show_results(found, searching) {
        const list = $('search-list');
        const items = [...found.values()].sort((a, b) => b.hit.score - a.hit.score || b.msg.ts - a.msg.ts).slice(0, 50);
        const nodes = items.map((r) => {
            const li = el('li');
            const b = el('button', 'search-result');
            b.type = 'button';
            b.dataset.testid = 'search-result';
            b.dataset.conv = r.conv;
            b.dataset.seq = String(r.msg.seq);
            const meta = el('div', 'result-meta');
            const where = r.conv.startsWith('room:') ? '#' + r.conv.slice(5) : '@' + ((this.known.get(r.conv.slice(3)) || {}).name || r.conv.slice(3));
            meta.appendChild(el('span', 'result-where', where));
            meta.appendChild(el('span', 'result-who', r.msg.from && r.msg.from.name ? r.msg.from.name : ''));
            meta.appendChild(el('span', 'result-when', fmt_stamp(r.msg.ts)));
            b.appendChild(meta);
            const snip = el('div', 'result-snippet');
            const body = String(r.msg.body);
            const { start, end } = r.hit;
            if (start >= 0 && end > start) {
                const from = Math.max(0, start - 40);
                snip.appendChild(document.createTextNode((from > 0 ? '…' : '') + body.slice(from, start)));
                snip.appendChild(el('mark', null, body.slice(start, end)));
                snip.appendChild(document.createTextNode(body.slice(end, end + 80)));
            } else {
                snip.textContent = body.slice(0, 120);
            }
            b.appendChild(snip);
            b.addEventListener('click', () => this.jump_to(r.conv, r.msg));
            li.appendChild(b);
            return li;
        });
        if (!nodes.length) nodes.push(el('li', 'search-empty', searching ? 'Searching…' : 'No messages found.'));
        list.replaceChildren(...nodes);
    }

    /* Results that point at messages gone from the server would jump to nothing. */
    drop_results(key, upto) {
        const list = $('search-list');
        for (const b of list.querySelectorAll('[data-testid="search-result"]')) {
            if (b.dataset.conv === key && Number(b.dataset.seq) <= upto) b.parentElement.remove();
        }
        if (!list.children.length) list.replaceChildren(el('li', 'search-empty', 'No messages found.'));
    }

    async jump_to(key, m) {
        /* a search still due from the last keystroke must not pop the results open again */
        clearTimeout(this.search_timer);
        this.search_seq++;
        $('search-results').hidden = true;
        if (key.startsWith('dm:') && !this.convs.has(key)) {
            this.conv(key);
            this.save_dms();
        }
        const c = this.conv(key);
        if (this.active !== key) this.switch_to(key);
        if (!c.msgs.has(m.seq)) {
            const oldest = this.oldest_seq(c);
            if (this.conn && this.conn.online && (!oldest || oldest > m.seq)) {
                const before = oldest || m.seq + 1;
                const limit = Math.max(1, Math.min(200, before - m.seq + 5));
                const frame = c.kind === 'room' ? { type: 'history', room: c.name, before, limit } : { type: 'history', with: c.name, before, limit };
                try {
                    const r = await this.conn.request(frame);
                    this.merge(c, Array.isArray(r.messages) ? r.messages : [], false);
                } catch (e) { /* fall back to the result itself */ }
            }
            if (!c.msgs.has(m.seq)) this.merge(c, [m], false);
            this.render_messages('keep');
        }
        const msg = c.msgs.get(m.seq);
        const row = msg && this.els.get(msg);
        if (row) {
            row.scrollIntoView({ block: 'center' });
            row.classList.remove('flash');
            void row.offsetWidth;
            row.classList.add('flash');
        }
    }

    /* ---- mention popup */

    mention_query() {
        const ta = $('composer');
        const before = ta.value.slice(0, ta.selectionStart);
        const m = /(^|\s)@([^\s@]{0,32})$/u.exec(before);
        return m ? { q: m[2], start: before.length - m[2].length - 1 } : null;
    }

    update_mention() {
        const mq = this.mention_query();
        if (!mq) return this.close_mention();
        const q = mq.q.toLowerCase();
        const users = [...this.users.values()].filter((u) => u.id !== this.me.id);
        const scored = users.map((u) => {
            const n = String(u.name).toLowerCase();
            const s = !q ? 1 : n.startsWith(q) ? 3 : n.includes(q) ? 2 : fuzzy_match(q, n) ? 1 : 0;
            return { u, s };
        }).filter((x) => x.s > 0).sort((a, b) => b.s - a.s || String(a.u.name).localeCompare(String(b.u.name)));
        this.mention = { open: true, items: scored.slice(0, 8).map((x) => x.u), index: 0, start: mq.start };
        this.render_mention();
    }

    render_mention() {
        const pop = $('mention-popup');
        const m = this.mention;
        pop.hidden = !m.open;
        if (!m.open) return;
        if (!m.items.length) {
            pop.replaceChildren(el('div', 'mention-empty', 'No one online matches'));
            return;
        }
        pop.replaceChildren(el('div', 'mention-title', 'Send a private message to'), ...m.items.map((u, i) => {
            const it = el('div', 'mention-item');
            it.dataset.testid = 'mention-item';
            it.dataset.userId = u.id;
            it.setAttribute('role', 'option');
            it.setAttribute('aria-selected', i === m.index ? 'true' : 'false');
            if (i === m.index) it.classList.add('selected');
            it.appendChild(avatar_el(u.avatar, u.name, 'small'));
            it.appendChild(el('span', null, u.name));
            it.addEventListener('mousedown', (ev) => {
                ev.preventDefault();
                this.choose_mention(i);
            });
            return it;
        }));
    }

    close_mention() {
        this.mention = { open: false, items: [], index: 0 };
        $('mention-popup').hidden = true;
    }

    /* Choosing someone opens the private conversation and keeps the rest of the draft. */
    choose_mention(i) {
        const u = this.mention.items[i];
        if (!u) return;
        const ta = $('composer');
        const caret = ta.selectionStart;
        const rest = (ta.value.slice(0, this.mention.start) + ta.value.slice(caret)).replace(/^\s+/, '');
        this.close_mention();
        ta.value = '';
        this.open_dm(u);
        ta.value = rest;
        this.autosize();
        ta.focus();
    }

    /* ---- UI wiring */

    autosize() {
        const ta = $('composer');
        ta.style.height = 'auto';
        ta.style.height = Math.min(ta.scrollHeight, 200) + 'px';
    }

    open_lightbox(src) {
        const img = $('lightbox-img');
        img.src = src;
        $('lightbox').hidden = false;
        $('lightbox-close').focus();
    }

    close_drawers() {
        document.body.classList.remove('show-sidebar', 'show-users');
        $('scrim').hidden = true;
    }

    bind_ui() {
        const ta = $('composer');
        ta.addEventListener('keydown', (ev) => {
            if (this.mention.open && this.mention.items.length) {
                if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
                    ev.preventDefault();
                    const n = this.mention.items.length;
                    this.mention.index = (this.mention.index + (ev.key === 'ArrowDown' ? 1 : n - 1)) % n;
                    this.render_mention();
                    return;
                }
                if (ev.key === 'Enter' || ev.key === 'Tab') {
                    ev.preventDefault();
                    this.choose_mention(this.mention.index);
                    return;
                }
            }
            if (ev.key === 'Escape') {
                this.close_mention();
                $('emoji-panel').hidden = true;
                return;
            }
            if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
                /* Inside an unclosed ``` fence, Enter is a newline. */
                const fences = (ta.value.slice(0, ta.selectionStart).match(/```/g) || []).length;
                if (fences % 2 === 1) return;
                ev.preventDefault();
                this.send_composer();
            }
        });
        ta.addEventListener('input', () => {
            this.autosize();
            this.update_mention();
            this.update_hint();
            const c = this.convs.get(this.active);
            if (c && c.kind === 'room' && c.joined && ta.value.trim() && this.conn && this.conn.online && Date.now() - this.last_typing_sent > 3000) {
                this.last_typing_sent = Date.now();
                this.conn.send({ type: 'typing', room: c.name });
            }
        });
        ta.addEventListener('click', () => this.update_mention());
        /* Close the popup when focus really moved away; a window losing focus keeps activeElement. */
        ta.addEventListener('blur', () => setTimeout(() => {
            if (document.activeElement !== ta) this.close_mention();
        }, 150));
        ta.addEventListener('paste', (ev) => {
            const files = [...(ev.clipboardData ? ev.clipboardData.files : [])].filter((f) => f.type.startsWith('image/'));
            if (!files.length) return;
            ev.preventDefault();
            files.forEach((f) => this.send_image(f));
        });
        $('composer-form').addEventListener('submit', (ev) => {
            ev.preventDefault();
            this.send_composer();
            ta.focus();
        });

        /* images: picker, drag and drop */
        $('image-input').addEventListener('change', (ev) => {
            const files = [...ev.target.files];
            ev.target.value = '';
            files.forEach((f) => this.send_image(f));
        });
        const chat = document.querySelector('.chat');
        let drag_depth = 0;
        chat.addEventListener('dragenter', (ev) => {
            if (![...(ev.dataTransfer ? ev.dataTransfer.types : [])].includes('Files')) return;
            drag_depth++;
            $('drop-hint').hidden = false;
        });
        chat.addEventListener('dragleave', () => {
            drag_depth = Math.max(0, drag_depth - 1);
            if (!drag_depth) $('drop-hint').hidden = true;
        });
        chat.addEventListener('dragover', (ev) => ev.preventDefault());
        chat.addEventListener('drop', (ev) => {
            ev.preventDefault();
            drag_depth = 0;
            $('drop-hint').hidden = true;
            const files = [...(ev.dataTransfer ? ev.dataTransfer.files : [])].filter((f) => f.type.startsWith('image/'));
            files.forEach((f) => this.send_image(f));
        });

        /* emoji panel */
        const panel = $('emoji-panel');
        const EMOJI = ['😀', '😂', '😊', '😍', '🤔', '😎', '😢', '😮', '😴', '🙃', '😅', '🥳', '👍', '👎', '👏', '🙏',
            '💪', '👋', '🤝', '✌️', '❤️', '🔥', '✨', '🎉', '💯', '✅', '❌', '⚠️', '🚀', '💡', '🐛', '☕',
            '🍕', '🍺', '🌟', '🌈', '⚡', '🎯', '📌', '👀'];
        panel.replaceChildren(...EMOJI.map((e) => {
            const b = el('button', 'emoji-option', e);
            b.type = 'button';
            b.dataset.testid = 'emoji-option';
            b.title = e;
            b.addEventListener('click', () => {
                const s = ta.selectionStart ?? ta.value.length;
                const t = ta.selectionEnd ?? ta.value.length;
                ta.value = ta.value.slice(0, s) + e + ta.value.slice(t);
                ta.selectionStart = ta.selectionEnd = s + e.length;
                panel.hidden = true;
                ta.focus();
            });
            return b;
        }));
        $('emoji-button').addEventListener('click', () => {
            panel.hidden = !panel.hidden;
            if (!panel.hidden) panel.querySelector('button').focus();
        });
        document.addEventListener('click', (ev) => {
            if (!panel.hidden && !panel.contains(ev.target) && ev.target !== $('emoji-button')) panel.hidden = true;
            const sw = document.querySelector('.search-wrap');
            if (!$('search-results').hidden && !sw.contains(ev.target)) $('search-results').hidden = true;
        });

        /* history on scroll-up */
        const list = $('message-list');
        list.addEventListener('scroll', () => {
            const c = this.convs.get(this.active);
            if (c && list.scrollTop < 60) this.load_older(c);
            this.update_jump();
        });
        $('jump-latest').addEventListener('click', () => {
            list.scrollTo({ top: list.scrollHeight, behavior: 'smooth' });
        });

        /* new room */
        const form = $('new-room-form');
        const err = $('new-room-error');
        $('new-room').addEventListener('click', () => {
            form.hidden = !form.hidden;
            err.hidden = true;
            if (!form.hidden) $('new-room-name').focus();
        });
        $('new-room-cancel').addEventListener('click', () => { form.hidden = true; });
        form.addEventListener('submit', async (ev) => {
            ev.preventDefault();
            const name = $('new-room-name').value.trim().toLowerCase();
            const topic = $('new-room-topic').value.trim();
            const fail = (t) => { err.textContent = t; err.hidden = false; };
            if (!ROOM_RE.test(name)) return fail('Use 1-32 of a-z 0-9 _ -, starting with a letter or digit.');
            if (!this.conn || !this.conn.online) return fail('Not connected. Try again in a moment.');
            try {
                const frame = { type: 'create_room', room: name };
                if (topic) frame.topic = topic;
                await this.conn.request(frame);
                this.rooms.set(name, { name, topic, members: 0 });
            } catch (e) {
                if (e.code !== 'conflict') return fail('Could not create the room: ' + e.message);
            }
            form.hidden = true;
            $('new-room-name').value = '';
            $('new-room-topic').value = '';
            this.switch_to('room:' + name);
        });

        /* search */
        const si = $('search-input');
        si.addEventListener('input', () => {
            clearTimeout(this.search_timer);
            this.search_timer = setTimeout(() => this.run_search(), 200);
        });
        si.addEventListener('focus', () => { if (si.value.trim()) $('search-results').hidden = false; });
        si.addEventListener('keydown', (ev) => {
            if (ev.key === 'Escape') {
                $('search-results').hidden = true;
                si.blur();
            } else if (ev.key === 'Enter') {
                clearTimeout(this.search_timer);
                this.run_search();
            }
        });
        $('search-when').addEventListener('change', () => this.run_search());
        $('search-user').addEventListener('change', () => this.run_search());
        for (const id of ['search-from', 'search-to']) $(id).addEventListener('change', () => this.run_search());
        $('search-when').addEventListener('change', () => {
            $('search-range').hidden = $('search-when').value !== 'custom';
            if ($('search-when').value === 'custom' && !$('search-from').value && !$('search-to').value) $('search-from').focus();
        });
        fit_placeholder(si, ['Search messages', 'Search']);

        /* settings */
        const dlg = $('settings-dialog');
        $('settings-button').addEventListener('click', () => {
            apply_theme();
            $('keep-input').value = String(this.keep);
            $('import-status').textContent = '';
            /* Not modal, and opening is idempotent: the top bar stays usable while it is open. */
            if (!dlg.open) dlg.show();
        });
        document.addEventListener('keydown', (ev) => {
            if (ev.key === 'Escape' && dlg.open) dlg.close();
        });
        document.addEventListener('click', (ev) => {
            /* only real clicks: the export's synthetic click on its download link must not close it */
            if (!ev.isTrusted || !dlg.open) return;
            if (!dlg.contains(ev.target) && !document.querySelector('.topbar').contains(ev.target)) dlg.close();
        });
        $('theme-select').addEventListener('change', () => {
            const v = $('theme-select').value;
            if (v === 'light' || v === 'dark') store.set(KEY.theme, v);
            else store.del(KEY.theme);
            apply_theme();
        });
        $('theme-toggle').addEventListener('click', () => {
            store.set(KEY.theme, effective_theme() === 'dark' ? 'light' : 'dark');
            apply_theme();
        });
        $('keep-input').addEventListener('change', () => {
            this.keep = clamp_keep(Number($('keep-input').value));
            $('keep-input').value = String(this.keep);
            store.set(KEY.keep, String(this.keep));
            for (const c of this.convs.values()) this.schedule_save(c);
        });
        $('export-button').addEventListener('click', () => this.export_history());
        $('import-input').addEventListener('change', (ev) => {
            const f = ev.target.files[0];
            ev.target.value = '';
            if (f) this.import_history(f);
        });
        /* Clearing cannot be undone: ask inline, with Cancel focused. */
        const ask = $('clear-ask');
        const show_ask = (on) => {
            ask.hidden = !on;
            $('clear-button').setAttribute('aria-expanded', on ? 'true' : 'false');
        };
        $('clear-button').addEventListener('click', () => {
            show_ask(true);
            $('clear-cancel').focus();
        });
        $('clear-cancel').addEventListener('click', () => {
            show_ask(false);
            $('clear-button').focus();
        });
        $('clear-confirm').addEventListener('click', async () => {
            show_ask(false);
            $('clear-button').focus();
            await this.clear_local();
        });
        dlg.addEventListener('close', () => show_ask(false));
        $('skip-link').addEventListener('click', (ev) => {
            ev.preventDefault();
            this.close_drawers();
            ta.focus();
        });
        $('logout-button').addEventListener('click', () => {
            this.flush_saves();
            this.conn.stop();
            store.del(KEY.token);
            store.del(KEY.user);
            location.reload();
        });
        $('retry-button').addEventListener('click', () => this.conn.retry_now());
        $('leave-room').addEventListener('click', () => {
            const c = this.convs.get(this.active);
            if (c) this.leave_room(c);
        });

        /* lightbox */
        const lb = $('lightbox');
        const close_lb = () => {
            lb.hidden = true;
            $('lightbox-img').removeAttribute('src');
        };
        lb.addEventListener('click', (ev) => { if (ev.target !== $('lightbox-img')) close_lb(); });
        document.addEventListener('keydown', (ev) => { if (ev.key === 'Escape' && !lb.hidden) close_lb(); });

        /* drawers on narrow screens */
        $('toggle-sidebar').addEventListener('click', () => {
            document.body.classList.toggle('show-sidebar');
            document.body.classList.remove('show-users');
            $('scrim').hidden = !document.body.classList.contains('show-sidebar');
        });
        $('toggle-users').addEventListener('click', () => {
            document.body.classList.toggle('show-users');
            document.body.classList.remove('show-sidebar');
            $('scrim').hidden = !document.body.classList.contains('show-users');
        });
        $('scrim').addEventListener('click', () => this.close_drawers());
    }
}

/*
 * Run `rebuild` (which replaces `container`'s children) without throwing keyboard focus back to
 * <body>: a reused element gets it back, else the new one with the same value of attribute `attr`.
 */
function keep_focus(container, attr, rebuild) {
    const a = document.activeElement;
    if (!a || a === document.body || a === container || !container.contains(a)) return rebuild();
    const key = attr ? a.getAttribute(attr) : null;
    rebuild();
    if (document.activeElement === a) return;
    if (a.isConnected) return a.focus({ preventScroll: true });
    if (key === null) return;
    const twin = [...container.querySelectorAll('[' + attr + ']')].find((n) => n.getAttribute(attr) === key);
    if (twin) twin.focus({ preventScroll: true });
}

/* The longest of `texts` that fits the input as it is laid out now (and again on resize). */
function fit_placeholder(input, texts) {
    const g = document.createElement('canvas').getContext('2d');
    const fit = () => {
        const cs = getComputedStyle(input);
        const room = input.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
        if (room <= 0) return;
        g.font = cs.fontStyle + ' ' + cs.fontWeight + ' ' + cs.fontSize + ' ' + cs.fontFamily;
        input.placeholder = texts.find((t) => g.measureText(t).width <= room) || texts[texts.length - 1];
    };
    if (window.ResizeObserver) new ResizeObserver(fit).observe(input);
    fit();
}

function fmt_size(n) {
    if (n >= 1024 * 1024) return (n / (1024 * 1024)).toFixed(n % (1024 * 1024) ? 1 : 0) + ' MB';
    return Math.max(1, Math.round(n / 1024)) + ' KB';
}

function clamp_keep(n) {
    return Number.isFinite(n) ? Math.max(10, Math.min(5000, Math.round(n))) : 200;
}

boot();
