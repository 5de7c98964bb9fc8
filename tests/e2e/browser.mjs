// Chromium (the Debian package, no downloaded browser) and small page helpers.

import fs from 'node:fs';
import { createRequire } from 'node:module';
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { Cluster } from './cluster.mjs';

export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

export function launch() {
    return chromium.launch({
        executablePath: CHROMIUM,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
            '--disable-component-update'],
    });
}

/*
 * Inside a describe(): a cluster of `n` gateways and a browser for its tests, started before
 * them and stopped after them, where gateway logs with a problem (a sanitizer report, a crash)
 * fail the file. Returns {cluster, browser}, filled in once the before() hook has run.
 */
export function with_cluster(n, opts = {}) {
    const env = { cluster: null, browser: null };
    before(async () => {
        env.cluster = new Cluster(n, opts);
        await env.cluster.start();
        env.browser = await launch();
    });
    after(async () => {
        if (env.browser) await env.browser.close().catch(() => {});
        const problems = env.cluster ? await env.cluster.stop() : [];
        assert.deepEqual(problems, [], 'gateway logs after shutdown');
    });
    return env;
}

export const tid = (id) => '[data-testid="' + id + '"]';

/*
 * Open the client on gateway `url` in a fresh context and log in as `nickname`. `fallbacks` is
 * the list of other gateways' ws URLs (the page's ?ws= parameter). Returns {ctx, page, dialogs,
 * errors, console_errors, user}; dialogs, page errors and console errors are collected so tests
 * can assert none happened.
 */
export async function login(browser, url, nickname, fallbacks = [], opts = {}) {
    const ctx = await browser.newContext({ viewport: opts.viewport || { width: 1280, height: 800 }, acceptDownloads: true });
    /* opts.init: a script run in the page before its own (to watch what it creates) */
    if (opts.init) await ctx.addInitScript(opts.init);
    const page = await ctx.newPage();
    const dialogs = [];
    const errors = [];
    page.on('dialog', (d) => {
        dialogs.push(d.message());
        d.dismiss().catch(() => {});
    });
    page.on('pageerror', (e) => errors.push(e.message));
    /* console errors too, apart: a test that kills a gateway expects failed WebSocket attempts */
    const console_errors = [];
    page.on('console', (m) => { if (m.type() === 'error') console_errors.push(m.text()); });
    /* opts.frames: an array that collects every WebSocket text frame the page receives */
    if (opts.frames) page.on('websocket', (ws) => ws.on('framereceived', (f) => opts.frames.push(String(f.payload))));
    const q = fallbacks.length ? '/?ws=' + encodeURIComponent(fallbacks.join(',')) : '/';
    await page.goto(url + q);
    await page.fill(tid('login-nickname'), nickname);
    if (opts.avatar) await page.click('[data-avatar="' + opts.avatar + '"]');
    await page.click(tid('login-submit'));
    await page.locator(tid('conn-status') + '[data-state="online"]').waitFor({ timeout: 15000 });
    const user = await page.evaluate(() => JSON.parse(localStorage.getItem('chatgw.user')));
    return { ctx, page, dialogs, errors, console_errors, user };
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

/* Create `room` from the sidebar's "new room" form; the page ends up in it. */
export async function create_room(page, room) {
    await page.click(tid('new-room'));
    await page.fill('#new-room-name', room);
    await page.press('#new-room-name', 'Enter');
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

const pad = (n) => String(n).padStart(2, '0');

/* The export file's local-time stamp, as the client writes it. */
export function fmt_stamp(ts) {
    const d = new Date(ts);
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' +
        pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
}

/*
 * `sockets` x `per` messages "<prefix> N" into `room`, through raw sockets with the page's token:
 * each socket stays within the server's burst, so nothing is rate limited.
 */
export async function post_raw(page, ws_url, room, sockets, per, prefix) {
    await page.evaluate(async ([r, url, n, k, pre]) => {
        const token = localStorage.getItem('chatgw.token');
        const open = () => new Promise((res, rej) => {
            const ws = new WebSocket(url + '?token=' + encodeURIComponent(token));
            ws.onmessage = (ev) => { if (JSON.parse(ev.data).type === 'welcome') res(ws); };
            ws.onerror = rej;
        });
        for (let i = 0; i < n; i++) {
            const ws = await open();
            const joined = new Promise((res) => ws.addEventListener('message', (ev) => { if (JSON.parse(ev.data).type === 'joined') res(); }));
            ws.send(JSON.stringify({ type: 'join', room: r, id: 'j' }));
            await joined;
            let acks = 0;
            const done = new Promise((res) => ws.addEventListener('message', (ev) => { if (JSON.parse(ev.data).type === 'ack' && ++acks === k) res(); }));
            for (let j = 0; j < k; j++) ws.send(JSON.stringify({ type: 'message', room: r, kind: 'text', body: pre + ' ' + (i * k + j + 1), id: 'p' + i + '-' + j }));
            await done;
            ws.close();
        }
    }, [room, ws_url, sockets, per, prefix]);
}

/* Settings -> Export; returns the downloaded file's path. The dialog stays open. */
export async function export_file(page) {
    await page.click(tid('settings-button'));
    const [dl] = await Promise.all([page.waitForEvent('download'), page.click(tid('export-button'))]);
    return dl.path();
}

/* Settings -> Clear local data, confirmed (tolerates a client that does not ask, to compare). */
export async function clear_local(page) {
    await page.click(tid('settings-button'));
    await page.click(tid('clear-button'));
    const confirm = page.locator(tid('clear-confirm'));
    if (await confirm.waitFor({ timeout: 1500 }).then(() => true, () => false)) await confirm.click();
    await page.locator('#import-status').filter({ hasText: 'cleared' }).waitFor();
}

const AXE = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/* axe-core on the page as it is now: its serious and critical violations, one line each. */
export async function serious_a11y(page) {
    if (!(await page.evaluate(() => !!window.axe))) await page.addScriptTag({ content: AXE });
    const violations = await page.evaluate(async () => {
        const r = await window.axe.run(document, { resultTypes: ['violations'] });
        return r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
            .map((v) => v.id + ' (' + v.impact + '): ' + v.nodes.slice(0, 5).map((n) => n.target.join(' ')).join(', '));
    });
    return violations;
}
