// Chromium (the Debian package, no downloaded browser) and small page helpers.

import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

export function launch() {
    return chromium.launch({
        executablePath: CHROMIUM,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
            '--disable-component-update'],
    });
}

export const tid = (id) => '[data-testid="' + id + '"]';

/*
 * Open the client on gateway `url` in a fresh context and log in as `nickname`. `fallbacks` is
 * the list of other gateways' ws URLs (the page's ?ws= parameter). Returns {ctx, page, dialogs,
 * errors, user}; dialogs and page errors are collected so tests can assert none happened.
 */
export async function login(browser, url, nickname, fallbacks = [], opts = {}) {
    const ctx = await browser.newContext({ viewport: opts.viewport || { width: 1280, height: 800 }, acceptDownloads: true });
    const page = await ctx.newPage();
    const dialogs = [];
    const errors = [];
    page.on('dialog', (d) => {
        dialogs.push(d.message());
        d.dismiss().catch(() => {});
    });
    page.on('pageerror', (e) => errors.push(e.message));
    const q = fallbacks.length ? '/?ws=' + encodeURIComponent(fallbacks.join(',')) : '/';
    await page.goto(url + q);
    await page.fill(tid('login-nickname'), nickname);
    if (opts.avatar) await page.click('[data-avatar="' + opts.avatar + '"]');
    await page.click(tid('login-submit'));
    await page.locator(tid('conn-status') + '[data-state="online"]').waitFor({ timeout: 15000 });
    const user = await page.evaluate(() => JSON.parse(localStorage.getItem('chatgw.user')));
    return { ctx, page, dialogs, errors, user };
}

export async function send(page, text) {
    await page.fill(tid('composer'), text);
    await page.press(tid('composer'), 'Enter');
}

export function messages_with(page, text) {
    return page.locator(tid('message-list') + ' ' + tid('message')).filter({ hasText: text });
}

/* Wait until exactly one message row contains `text`, and that it carries a seq. */
export async function expect_once(page, text, timeout = 10000) {
    const loc = messages_with(page, text);
    await loc.first().waitFor({ timeout });
    await page.waitForFunction(([sel, t]) => {
        const rows = [...document.querySelectorAll(sel)].filter((r) => r.textContent.includes(t));
        return rows.length === 1 && rows[0].dataset.seq !== '';
    }, [tid('message-list') + ' ' + tid('message'), text], { timeout });
    /* and it stays one: nothing arrives twice a moment later */
    await page.waitForTimeout(300);
    return loc.count();
}

export async function open_room(page, room) {
    await page.click(tid('room-item') + '[data-room="' + room + '"]');
    await page.locator(tid('room-item') + '[data-room="' + room + '"].active').waitFor();
}

/* Back to a known state after a test that may have stopped half-way: no open dialog, #room active. */
export async function reset(page, room = 'general') {
    await page.evaluate(() => {
        document.querySelectorAll('dialog[open]').forEach((d) => d.close());
        document.getElementById('search-results').hidden = true;
    });
    await page.fill(tid('composer'), '');
    await open_room(page, room);
}
