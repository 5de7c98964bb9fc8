// Page-level helpers shared by the login screen and the chat: element lookup, local storage,
// the theme and the toast.

export const $ = (id) => document.getElementById(id);

export const KEY = {
    token: 'chatgw.token',
    user: 'chatgw.user',
    theme: 'chatgw.theme',
    keep: 'chatgw.keep',
};

/* ---------------------------------------------------------------- storage helpers */

export const store = {
    get(k, dflt = null) {
        try {
            const v = localStorage.getItem(k);
            return v === null ? dflt : v;
        } catch (e) {
            return dflt;
        }
    },
    set(k, v) {
        try { localStorage.setItem(k, v); } catch (e) { /* quota or disabled */ }
    },
    del(k) {
        try { localStorage.removeItem(k); } catch (e) { /* disabled */ }
    },
    json(k, dflt) {
        try {
            const v = JSON.parse(this.get(k, 'null'));
            return v === null ? dflt : v;
        } catch (e) {
            return dflt;
        }
    },
};

export const cp_len = (s) => Array.from(s).length;

/* ---------------------------------------------------------------- theme */

export const dark_query = window.matchMedia ? window.matchMedia('(prefers-color-scheme: dark)') : null;

export function effective_theme() {
    const t = store.get(KEY.theme);
    if (t === 'light' || t === 'dark') return t;
    return dark_query && dark_query.matches ? 'dark' : 'light';
}

/* html[data-theme] is always set: the user's choice, else the OS preference (followed live). */
export function apply_theme() {
    const cur = effective_theme();
    document.documentElement.dataset.theme = cur;
    const btn = $('theme-toggle');
    const label = cur === 'dark' ? 'Switch to light theme' : 'Switch to dark theme';
    btn.textContent = cur === 'dark' ? '☀️' : '🌙';
    btn.title = label;
    btn.setAttribute('aria-label', label);
    btn.dataset.theme = cur;
    const chosen = store.get(KEY.theme);
    $('theme-select').value = chosen === 'light' || chosen === 'dark' ? chosen : 'system';
}

/* ---------------------------------------------------------------- toast */

let toast_timer = null;
export function toast(text) {
    const t = $('toast');
    t.textContent = text;
    t.hidden = false;
    clearTimeout(toast_timer);
    toast_timer = setTimeout(() => { t.hidden = true; }, 4000);
}
