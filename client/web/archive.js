// History export/import (a plain text file) and the local message cache (IndexedDB).
//
// Export format, one section per conversation, one line per event:
//   chatgw history export
//   exported 2026-11-24 23:50:00 by alice
//
//   == #general ==
//   [2026-11-24 23:41:02] -- bob joined
//   [2026-11-24 23:41:05] #12 <alice> hello
//   [2026-11-24 23:41:09] #13 <alice> ```js
//       console.log(1)
//       ```
//   [2026-11-24 23:41:12] #14 <bob> [image] data:image/webp;base64,...
//
//   == @bob (dm:u_8f3a) ==
//   ...
// Continuation lines of a multi-line message start with four spaces.

import { fmt_stamp } from './render.js';

const CONT = '    ';

export function message_text(m) {
    if (m.kind === 'code') return '```' + (m.lang || '') + '\n' + m.body + '\n```';
    if (m.kind === 'image') return '[image] ' + m.body;
    return String(m.body);
}

/* convs: [{key, title, items}] with items in display order ({system,text,ts} or messages). */
export function export_text(convs, me_name, now = Date.now()) {
    const out = ['chatgw history export', 'exported ' + fmt_stamp(now) + ' by ' + me_name, ''];
    for (const c of convs) {
        if (!c.items.length) continue;
        out.push(c.key.startsWith('dm:') ? '== @' + c.title + ' (' + c.key + ') ==' : '== #' + c.key.slice(5) + ' ==');
        for (const it of c.items) {
            if (it.system) {
                out.push('[' + fmt_stamp(it.ts) + '] -- ' + it.text);
                continue;
            }
            const lines = message_text(it).split('\n');
            const who = it.from && it.from.name ? it.from.name : 'unknown';
            out.push('[' + fmt_stamp(it.ts) + '] ' + (it.seq ? '#' + it.seq + ' ' : '') + '<' + who + '> ' + lines[0]);
            for (const l of lines.slice(1)) out.push(CONT + l);
        }
        out.push('');
    }
    return out.join('\n');
}

function parse_stamp(s) {
    const m = /^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)$/.exec(s);
    if (!m) return null;
    const d = new Date(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
    return isNaN(d.getTime()) ? null : d.getTime();
}

function to_message(text) {
    const code = /^```([^\n`]{0,32})\n([\s\S]*)\n```$/.exec(text);
    if (code) return { kind: 'code', lang: code[1] || undefined, body: code[2] };
    if (text.startsWith('[image] data:image/')) return { kind: 'image', body: text.slice(8) };
    return { kind: 'text', body: text };
}

/*
 * Parse an exported file. Returns [{key, title, messages:[...], system:[...]}]; lines that do
 * not parse are skipped, so a hand-edited file imports what it can.
 */
export function import_text(text) {
    const convs = [];
    let cur = null;
    let last = null;
    for (const raw of String(text).split(/\r?\n/)) {
        let m;
        if ((m = /^== #([a-z0-9][a-z0-9_-]{0,31}) ==$/.exec(raw))) {
            cur = { key: 'room:' + m[1], title: m[1], messages: [], system: [] };
            convs.push(cur);
            last = null;
        } else if ((m = /^== @(.*) \(dm:([A-Za-z0-9_-]{1,64})\) ==$/.exec(raw))) {
            cur = { key: 'dm:' + m[2], title: m[1], messages: [], system: [] };
            convs.push(cur);
            last = null;
        } else if (cur && raw.startsWith(CONT) && last) {
            last.text += '\n' + raw.slice(CONT.length);
        } else if (cur && (m = /^\[([^\]]+)\] -- (.*)$/.exec(raw))) {
            const ts = parse_stamp(m[1]);
            if (ts !== null) cur.system.push({ system: true, ts, text: m[2] });
            last = null;
        } else if (cur && (m = /^\[([^\]]+)\] (?:#(\d{1,15}) )?<(.*?)> (.*)$/.exec(raw))) {
            const ts = parse_stamp(m[1]);
            if (ts === null) { last = null; continue; }
            last = { ts, seq: m[2] ? Number(m[2]) : 0, name: m[3], text: m[4] };
            cur.messages.push(last);
        } else {
            last = null;
        }
    }
    for (const c of convs) {
        c.messages = c.messages.map((p) => Object.assign(
            { seq: p.seq, ts: p.ts, from: { id: '', name: p.name }, imported: true }, to_message(p.text)));
    }
    return convs;
}

/* ---- the local cache: one IndexedDB record per (user, conversation) ---- */

const DB_NAME = 'chatgw';
const STORE = 'convs';

function open_db() {
    return new Promise((resolve, reject) => {
        if (!window.indexedDB) {
            reject(new Error('no indexedDB'));
            return;
        }
        const rq = indexedDB.open(DB_NAME, 1);
        rq.onupgradeneeded = () => rq.result.createObjectStore(STORE, { keyPath: 'key' });
        rq.onsuccess = () => resolve(rq.result);
        rq.onerror = () => reject(rq.error);
    });
}

export class LocalCache {
    constructor(user_id) {
        this.prefix = user_id + '|';
        this.db = open_db().catch(() => null);
    }

    async load_all() {
        const db = await this.db;
        if (!db) return [];
        return new Promise((resolve) => {
            const out = [];
            const tx = db.transaction(STORE, 'readonly');
            const rq = tx.objectStore(STORE).openCursor();
            rq.onsuccess = () => {
                const cur = rq.result;
                if (!cur) {
                    resolve(out);
                    return;
                }
                if (typeof cur.key === 'string' && cur.key.startsWith(this.prefix)) out.push(cur.value);
                cur.continue();
            };
            rq.onerror = () => resolve(out);
        });
    }

    async put(conv_key, record) {
        const db = await this.db;
        if (!db) return;
        await new Promise((resolve) => {
            const tx = db.transaction(STORE, 'readwrite');
            tx.objectStore(STORE).put(Object.assign({}, record, { key: this.prefix + conv_key, conv: conv_key }));
            tx.oncomplete = tx.onerror = tx.onabort = () => resolve();
        });
    }

    async remove(conv_key) {
        const db = await this.db;
        if (!db) return;
        await new Promise((resolve) => {
            const tx = db.transaction(STORE, 'readwrite');
            tx.objectStore(STORE).delete(this.prefix + conv_key);
            tx.oncomplete = tx.onerror = tx.onabort = () => resolve();
        });
    }

    async clear_all() {
        const db = await this.db;
        if (!db) return;
        await new Promise((resolve) => {
            const tx = db.transaction(STORE, 'readwrite');
            tx.objectStore(STORE).clear();
            tx.oncomplete = tx.onerror = tx.onabort = () => resolve();
        });
    }
}
