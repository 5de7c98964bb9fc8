// Generated avatars. An avatar travels as a short string:
//   "color:#rrggbb"  initials of the name on that colour
//   "emoji:🦊"       one emoji
// Anything else (or nothing) falls back to initials on a colour hashed from the name.

export const EMOJI_AVATARS = ['🦊', '🐼', '🐙', '🦉', '🐢', '🦄', '🐝', '🐳', '🌵', '🍉', '🚀', '🎧'];

const PALETTE = ['#e57373', '#f06292', '#ba68c8', '#9575cd', '#7986cb', '#4f8ff7', '#29a3c7',
    '#26a69a', '#43a047', '#7cb342', '#f9a825', '#fb8c00', '#f4511e', '#8d6e63', '#607d8b'];

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
    } else {
        el.textContent = initials(name);
        el.classList.remove('emoji');
        el.style.backgroundColor = a.value;
    }
}
