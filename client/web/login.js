// The login screen: nickname, a generated avatar (initials on a colour from the name, or an
// emoji), inline errors for 400 and 409; on success the token goes to localStorage.

import { $, KEY, store, cp_len } from './page.js';
import { fill_avatar, color_for, initials, text_on, EMOJI_AVATARS } from './avatar.js';
import { el } from './render.js';

/* Show the login form; `on_login(token, user)` runs after a successful login. */
export function show_login(error, on_login) {
    $('app-view').hidden = true;
    $('login-view').hidden = false;
    const picker = $('avatar-picker');
    const nick = $('login-nickname');
    const err = $('login-error');
    let choice = store.get('chatgw.lastAvatar', 'initials');
    if (choice !== 'initials' && !EMOJI_AVATARS.includes(choice)) choice = 'initials';

    const options = ['initials', ...EMOJI_AVATARS];
    picker.textContent = '';
    const buttons = options.map((opt) => {
        const b = el('button', 'avatar-option');
        b.type = 'button';
        b.setAttribute('role', 'radio');
        b.dataset.avatar = opt;
        b.dataset.testid = 'avatar-option';
        const a = el('span', 'avatar large');
        b.appendChild(a);
        b.title = opt === 'initials' ? 'Initials' : opt;
        b.addEventListener('click', () => { choice = opt; paint(); });
        picker.appendChild(b);
        return b;
    });
    picker.onkeydown = (ev) => {
        const i = options.indexOf(choice);
        if (ev.key === 'ArrowRight' || ev.key === 'ArrowDown') choice = options[(i + 1) % options.length];
        else if (ev.key === 'ArrowLeft' || ev.key === 'ArrowUp') choice = options[(i + options.length - 1) % options.length];
        else return;
        ev.preventDefault();
        paint();
        buttons[options.indexOf(choice)].focus();
    };
    function avatar_string() {
        const name = nick.value.trim();
        return choice === 'initials' ? 'color:' + color_for(name || '?') : 'emoji:' + choice;
    }
    function paint() {
        const name = nick.value.trim() || '?';
        buttons.forEach((b, i) => {
            const a = b.firstChild;
            if (options[i] === 'initials') {
                a.textContent = initials(name);
                a.classList.remove('emoji');
                a.style.backgroundColor = color_for(name);
                a.style.color = text_on(color_for(name));
            } else {
                fill_avatar(a, 'emoji:' + options[i], name);
            }
            const on = options[i] === choice;
            b.setAttribute('aria-checked', on ? 'true' : 'false');
            b.tabIndex = on ? 0 : -1;
            b.classList.toggle('selected', on);
        });
    }
    function set_error(text) {
        err.textContent = text || '';
        err.hidden = !text;
        nick.setAttribute('aria-invalid', text ? 'true' : 'false');
    }
    nick.oninput = () => { paint(); set_error(''); };
    paint();
    set_error(error || '');
    nick.focus();

    $('login-form').onsubmit = async (ev) => {
        ev.preventDefault();
        const name = nick.value.trim();
        if (!name) return set_error('Please choose a nickname.');
        if (cp_len(name) > 32) return set_error('A nickname is at most 32 characters.');
        /* eslint-disable-next-line no-control-regex */
        if (/[\u0000-\u001f\u007f-\u009f]/.test(name)) return set_error('A nickname cannot contain control characters.');
        const submit = $('login-submit');
        submit.disabled = true;
        set_error('');
        try {
            const res = await fetch('/api/login', {
                method: 'POST',
                headers: { 'Content-Type': 'application/json' },
                body: JSON.stringify({ nickname: name, avatar: avatar_string() }),
            });
            let data = null;
            try { data = await res.json(); } catch (e) { data = null; }
            if (res.status === 409) {
                set_error('“' + name + '” is taken by someone who is online. Try another nickname.');
            } else if (res.status === 400) {
                const m = data && data.error && typeof data.error.message === 'string' ? data.error.message : '';
                set_error('That nickname is not valid' + (m ? ': ' + m : '.'));
            } else if (!res.ok || !data || typeof data.token !== 'string' || !data.user) {
                set_error('Login failed (' + res.status + '). Please try again.');
            } else {
                store.set(KEY.token, data.token);
                store.set(KEY.user, JSON.stringify(data.user));
                store.set('chatgw.lastAvatar', choice);
                on_login(data.token, data.user);
            }
        } catch (e) {
            set_error('Could not reach the server. Check your connection and try again.');
        } finally {
            submit.disabled = false;
        }
    };
}
