// Generated avatars. An avatar travels as a short string:
//   "color:#rrggbb"  initials of the name on that colour
//   "emoji:🦊"       one emoji
// Anything else (or nothing) falls back to initials on a colour hashed from the name.

export const EMOJI_AVATARS = ['🦊', '🐼', '🐙', '🦉', '🐢', '🦄', '🐝', '🐳', '🌵', '🍉', '🚀', '🎧'];

/* Dark enough for white initials at 4.5:1 (WCAG AA). */
const PALETTE = ['#c62828', '#ad1457', '#8e24aa', '#5e35b1', '#3949ab', '#1e63d6', '#00769a',
    '#00796b', '#2e7d32', '#4e7a1e', '#9a6700', '#b35500', '#c43e12', '#795548', '#546e7a'];

function luminance(hex) {
    const c = hex.match(/[0-9a-f]{2}/gi).map((x) => parseInt(x, 16) / 255)
        .map((v) => (v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4));
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
}

/* Older tokens carry lighter colours: white initials where they stay readable, else dark ones. */
export function text_on(hex) {
    return 1.05 / (luminance(hex) + 0.05) >= 4.5 ? '#ffffff' : '#15171f';
}

/* FNV-1a over UTF-16 units: stable across browsers and sessions. */
export function hash_string(s) {
    let h = 0x811c9dc5;
    for (let i = 0; i < s.length; i++) {
        h ^= s.charCodeAt(i);
        h = Math.imul(h, 0x01000193) >>> 0;
    }
    return h >>> 0;
}

export function color_for(name) {
    return PALETTE[hash_string(String(name || '').toLowerCase()) % PALETTE.length];
}

export function initials(name) {
    const words = String(name || '?').trim().split(/[\s._-]+/u).filter(Boolean);
    const first = (w) => Array.from(w)[0] || '';
    let s = words.length >= 2 ? first(words[0]) + first(words[1]) : Array.from(words[0] || '?').slice(0, 2).join('');
    return s.toUpperCase() || '?';
}

/* Parse an avatar string into {type, value}; never trusts it beyond these two shapes. */
export function parse_avatar(avatar, name) {
    if (typeof avatar === 'string') {
        const c = /^color:(#[0-9a-fA-F]{6})$/.exec(avatar);
        if (c) return { type: 'color', value: c[1] };
        if (avatar.startsWith('emoji:')) {
            const e = Array.from(avatar.slice(6)).slice(0, 8).join('');
            if (e && /\p{Extended_Pictographic}|\p{Regional_Indicator}/u.test(e)) return { type: 'emoji', value: e };
        }
    }
    return { type: 'color', value: color_for(name) };
}

/* Build an avatar element; text only, the colour through a validated style value. */
export function avatar_el(avatar, name, size) {
    const el = document.createElement('span');
    el.className = 'avatar' + (size ? ' ' + size : '');
    el.setAttribute('aria-hidden', 'true');
    fill_avatar(el, avatar, name);
    return el;
}

export function fill_avatar(el, avatar, name) {
    const a = parse_avatar(avatar, name);
    if (a.type === 'emoji') {
        el.textContent = a.value;
        el.classList.add('emoji');
        el.style.backgroundColor = '';
        el.style.color = '';
    } else {
        el.textContent = initials(name);
        el.classList.remove('emoji');
        el.style.backgroundColor = a.value;
        el.style.color = text_on(a.value);
    }
}
