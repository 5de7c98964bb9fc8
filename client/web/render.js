// Safe rendering of user content. Every piece of user data reaches the DOM through
// textContent, createTextNode or a validated attribute; innerHTML is never used with it.

import { avatar_el } from './avatar.js';

/* The only image sources ever rendered: base64 data URLs of four raster types. */
const IMAGE_RE = /^data:image\/(?:png|jpeg|gif|webp);base64,[A-Za-z0-9+/]+={0,2}$/;

export function safe_image_src(s) {
    return typeof s === 'string' && s.length < 16 * 1024 * 1024 && IMAGE_RE.test(s) ? s : null;
}

/* http(s) links only; anything else stays text. */
export function safe_href(s) {
    try {
        const u = new URL(s);
        return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
    } catch (e) {
        return null;
    }
}

export function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
}

const pad = (n) => String(n).padStart(2, '0');

export function fmt_time(ts) {
    const d = new Date(ts);
    return pad(d.getHours()) + ':' + pad(d.getMinutes());
}

export function fmt_stamp(ts) {
    const d = new Date(ts);
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' +
        pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
}

export function fmt_day(ts) {
    const d = new Date(ts);
    const today = new Date();
    const y = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
    if (d.toDateString() === today.toDateString()) return 'Today';
    if (d.toDateString() === y.toDateString()) return 'Yesterday';
    return d.toLocaleDateString(undefined, { weekday: 'long', month: 'long', day: 'numeric', year: 'numeric' });
}

/* Copy text, with a fallback for contexts without the async clipboard. */
export async function copy_text(text) {
    try {
        await navigator.clipboard.writeText(text);
        return true;
    } catch (e) {
        const ta = el('textarea');
        ta.value = text;
        ta.style.position = 'fixed';
        ta.style.opacity = '0';
        document.body.appendChild(ta);
        ta.select();
        let ok = false;
        try { ok = document.execCommand('copy'); } catch (e2) { ok = false; }
        ta.remove();
        return ok;
    }
}

export function code_block(code, lang) {
    const wrap = el('div', 'code-block');
    wrap.dataset.testid = 'code-block';
    const head = el('div', 'code-head');
    head.appendChild(el('span', 'code-lang', lang || 'code'));
    const btn = el('button', 'code-copy', 'Copy');
    btn.type = 'button';
    btn.dataset.testid = 'copy-code';
    btn.addEventListener('click', async () => {
        const ok = await copy_text(code);
        btn.textContent = ok ? 'Copied' : 'Copy failed';
        setTimeout(() => { btn.textContent = 'Copy'; }, 1500);
    });
    head.appendChild(btn);
    wrap.appendChild(head);
    const pre = el('pre');
    const c = el('code', null, code);
    if (lang) c.dataset.lang = lang;
    pre.appendChild(c);
    wrap.appendChild(pre);
    return wrap;
}

const URL_RE = /\bhttps?:\/\/[^\s<>"'`]+[^\s<>"'`.,;:!?)\]}]/g;

/* Inline text: `code` spans and http(s) links, everything else as text nodes. */
function append_inline(parent, text) {
    const parts = text.split(/(`[^`\n]+`)/);
    for (const part of parts) {
        if (!part) continue;
        if (part.length > 2 && part.startsWith('`') && part.endsWith('`')) {
            parent.appendChild(el('code', 'inline-code', part.slice(1, -1)));
            continue;
        }
        let last = 0;
        URL_RE.lastIndex = 0;
        let m;
        while ((m = URL_RE.exec(part)) !== null) {
            const href = safe_href(m[0]);
            if (!href) continue;
            if (m.index > last) parent.appendChild(document.createTextNode(part.slice(last, m.index)));
            const a = el('a', 'link', m[0]);
            a.href = href;
            a.target = '_blank';
            a.rel = 'noopener noreferrer';
            parent.appendChild(a);
            last = m.index + m[0].length;
        }
        if (last < part.length) parent.appendChild(document.createTextNode(part.slice(last)));
    }
}

/* Split a text body into text and ```lang fenced segments. */
export function split_fences(body) {
    const out = [];
    const re = /```([^\n`]{0,32})\n([\s\S]*?)\n?```/g;
    let last = 0;
    let m;
    while ((m = re.exec(body)) !== null) {
        if (m.index > last) out.push({ type: 'text', text: body.slice(last, m.index) });
        out.push({ type: 'code', lang: m[1].trim(), text: m[2] });
        last = m.index + m[0].length;
    }
    if (last < body.length) out.push({ type: 'text', text: body.slice(last) });
    return out;
}

/* A composer text that is exactly one fence becomes a `code` message. */
export function as_code_message(text) {
    const m = /^```([^\n`]{0,32})\n([\s\S]*?)\n?```\s*$/.exec(text.trim());
    if (!m) return null;
    if (m[2].includes('```')) return null;
    return { kind: 'code', lang: m[1].trim() || undefined, body: m[2] };
}

const EMOJI_ONLY_RE = /^(?:\p{Extended_Pictographic}|\p{Emoji_Component}|\u200d|\ufe0f|\s)+$/u;

/* `acts`: {open_image(src), load_stub(msg)}. */
export function render_body(msg, acts) {
    const body = el('div', 'msg-body');
    const text = typeof msg.body === 'string' ? msg.body : '';
    if (msg.deleted) {
        const gone = el('span', 'msg-deleted', 'message deleted');
        gone.dataset.testid = 'deleted-mark';
        body.appendChild(gone);
    } else if (msg.kind === 'image' && msg.preparing) {
        /* our own image while the browser shrinks it: a placeholder, replaced when it is ready */
        const box = el('div', 'image-preparing');
        box.appendChild(el('span', 'spinner'));
        box.appendChild(el('span', null, 'Preparing image… ' + msg.preparing));
        body.appendChild(box);
    } else if (msg.kind === 'image' && msg.stub) {
        /* an older image the local cache did not keep: fetched again on demand */
        const btn = el('button', 'btn small image-stub', '🖼️ Load image');
        btn.type = 'button';
        btn.addEventListener('click', () => acts.load_stub(msg));
        body.appendChild(btn);
    } else if (msg.kind === 'image') {
        const src = safe_image_src(text);
        if (src) {
            const btn = el('button', 'thumb');
            btn.type = 'button';
            btn.title = 'Open full size';
            const img = el('img');
            img.alt = 'Image from ' + (msg.from && msg.from.name ? msg.from.name : 'someone');
            img.loading = 'lazy';
            img.decoding = 'async';
            img.src = src;
            btn.appendChild(img);
            btn.addEventListener('click', () => acts.open_image(src));
            body.appendChild(btn);
        } else {
            body.appendChild(el('span', 'muted', '[image not shown: unsupported format]'));
        }
    } else if (msg.kind === 'code') {
        body.appendChild(code_block(text, typeof msg.lang === 'string' ? msg.lang.slice(0, 32) : ''));
    } else {
        if (text.length <= 24 && EMOJI_ONLY_RE.test(text) && /\p{Extended_Pictographic}/u.test(text)) {
            body.classList.add('jumbo');
        }
        for (const seg of split_fences(text)) {
            if (seg.type === 'code') {
                body.appendChild(code_block(seg.text, seg.lang));
            } else {
                const p = el('div', 'msg-text');
                append_inline(p, seg.text);
                body.appendChild(p);
            }
        }
    }
    return body;
}

/* The quick choices of the react button; any other emoji can be sent with chat-cli's /react. */
export const QUICK_REACTIONS = ['👍', '❤️', '😂', '🎉', '😮', '😢'];

/* Reaction chips under a message: one per emoji, with its count; ours is pressed. */
function reactions_el(msg, me_id, acts) {
    const bar = el('div', 'msg-reactions');
    for (const [emoji, users] of Object.entries(msg.reactions || {})) {
        if (!Array.isArray(users) || !users.length) continue;
        const mine = users.includes(me_id);
        const b = el('button', 'reaction' + (mine ? ' mine' : ''), emoji + ' ' + users.length);
        b.type = 'button';
        b.dataset.testid = 'reaction';
        b.dataset.emoji = emoji;
        b.setAttribute('aria-pressed', mine ? 'true' : 'false');
        b.title = (acts.names ? acts.names(users) : users.join(', ')) + ' reacted with ' + emoji;
        b.addEventListener('click', () => acts.react(msg, emoji));
        bar.appendChild(b);
    }
    return bar;
}

/* Hover/focus tools of a stored message: react to anything, edit and delete one's own. */
function tools_el(msg, me_id, acts) {
    const tools = el('div', 'msg-tools');
    const mine = msg.from && msg.from.id === me_id;
    /* The picker is built when opened: its emoji are not part of the row's text until then. */
    let picker = null;
    const react = el('button', 'msg-tool', '☺+');
    react.type = 'button';
    react.dataset.testid = 'msg-react';
    react.setAttribute('aria-label', 'Add a reaction');
    react.setAttribute('aria-expanded', 'false');
    react.addEventListener('click', () => {
        if (picker) {
            picker.remove();
            picker = null;
            react.setAttribute('aria-expanded', 'false');
            return;
        }
        picker = el('div', 'react-picker');
        for (const e of QUICK_REACTIONS) {
            const o = el('button', 'react-option', e);
            o.type = 'button';
            o.dataset.testid = 'react-option';
            o.setAttribute('aria-label', 'React with ' + e);
            o.addEventListener('click', () => {
                picker.remove();
                picker = null;
                acts.react(msg, e);
            });
            picker.appendChild(o);
        }
        tools.appendChild(picker);
        react.setAttribute('aria-expanded', 'true');
    });
    tools.appendChild(react);
    if (mine && msg.kind !== 'image') {
        const edit = el('button', 'msg-tool', 'Edit');
        edit.type = 'button';
        edit.dataset.testid = 'msg-edit';
        edit.addEventListener('click', () => acts.edit(msg));
        tools.appendChild(edit);
    }
    if (mine) {
        /* a second click within 3 s confirms: no modal dialog for a one-line decision */
        const del = el('button', 'msg-tool', 'Delete');
        del.type = 'button';
        del.dataset.testid = 'msg-delete';
        let armed = null;
        del.addEventListener('click', () => {
            if (armed) {
                clearTimeout(armed);
                armed = null;
                acts.remove(msg);
                return;
            }
            del.textContent = 'Delete?';
            del.classList.add('armed');
            armed = setTimeout(() => {
                armed = null;
                del.textContent = 'Delete';
                del.classList.remove('armed');
            }, 3000);
        });
        tools.appendChild(del);
    }
    return tools;
}

/*
 * One message row. `msg`: {seq?, ts, from:{id,name,avatar}, kind, body, lang?, pending?, failed?,
 * stub?, edited?, deleted?, reactions?: {emoji: [user ids]}}; `acts` as for render_body, plus
 * react(msg, emoji), edit(msg), remove(msg) and names(ids) for stored messages.
 */
export function message_el(msg, me_id, acts) {
    const row = el('div', 'msg');
    row.dataset.testid = 'message';
    row.dataset.kind = ['text', 'code', 'image'].includes(msg.kind) ? msg.kind : 'text';
    const from = msg.from || {};
    if (from.id && from.id === me_id) row.classList.add('mine');
    row.dataset.from = typeof from.id === 'string' ? from.id : '';
    row.appendChild(avatar_el(from.avatar, from.name || '?'));
    const main = el('div', 'msg-main');
    const head = el('div', 'msg-head');
    head.appendChild(el('span', 'msg-name', from.name || 'unknown'));
    const t = el('time', 'msg-time', fmt_time(msg.ts || Date.now()));
    t.dateTime = new Date(msg.ts || Date.now()).toISOString();
    t.title = fmt_stamp(msg.ts || Date.now());
    head.appendChild(t);
    if (msg.edited && !msg.deleted) {
        const ed = el('span', 'msg-edited', '(edited)');
        ed.dataset.testid = 'edited-mark';
        head.appendChild(ed);
    }
    const state = el('span', 'msg-state');
    head.appendChild(state);
    main.appendChild(head);
    main.appendChild(render_body(msg, acts));
    if (msg.seq && !msg.pending && !msg.imported && !msg.deleted && acts.react) {
        main.appendChild(reactions_el(msg, me_id, acts));
        main.appendChild(tools_el(msg, me_id, acts));
    }
    row.appendChild(main);
    update_message_el(row, msg);
    return row;
}

export function update_message_el(row, msg) {
    row.dataset.seq = msg.seq ? String(msg.seq) : '';
    row.id = msg.seq ? 'msg-' + msg.seq : 'pending-' + (msg.id || '');
    row.classList.toggle('pending', !!msg.pending && !msg.failed);
    row.classList.toggle('failed', !!msg.failed);
    if (msg.pending) row.dataset.pending = 'true';
    else delete row.dataset.pending;
    const state = row.querySelector('.msg-state');
    if (state) state.textContent = msg.failed ? '⚠ ' + msg.failed : msg.pending ? 'sending…' : '';
    const t = row.querySelector('.msg-time');
    if (t && msg.ts) {
        t.textContent = fmt_time(msg.ts);
        t.title = fmt_stamp(msg.ts);
    }
}

export function system_el(line) {
    const row = el('div', 'system-line');
    row.dataset.testid = 'system-line';
    row.appendChild(el('span', null, line.text));
    const t = el('time', 'msg-time', fmt_time(line.ts));
    t.title = fmt_stamp(line.ts);
    row.appendChild(t);
    return row;
}
