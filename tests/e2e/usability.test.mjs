// End-to-end: what a new user trips on in the browser client. Each test asserts what the user sees.
// Its own cluster (one gateway, --history 30) so that trimmed history is cheap to reach.
// Run: cd tests/e2e && npm test   (CHAT_GATEWAY_BIN selects the gateway binary)

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster } from './cluster.mjs';
import { launch, login, send, tid, messages_with, expect_once, open_room, reset, fmt_stamp, post_raw, clear_local,
    export_file, serious_a11y } from './browser.mjs';

const FILE_TIMEOUT_MS = 240000;
const watchdog = setTimeout(() => {
    console.error('e2e watchdog: file timeout after ' + FILE_TIMEOUT_MS + ' ms');
    process.exit(1);
}, FILE_TIMEOUT_MS);
watchdog.unref();

const T = { timeout: 60000 };
const HISTORY = 30;
const run = Date.now().toString(36).slice(-4);
const nick = (n) => n + '-' + run;
const DAY = 24 * 3600 * 1000;
const ymd = (ts) => fmt_stamp(ts).slice(0, 10);

describe('chatgw web client: first-use defects', { timeout: FILE_TIMEOUT_MS - 10000 }, () => {
    let cluster;
    let browser;
    let alice;
    let bob;

    before(async () => {
        cluster = new Cluster(1, { args: ['--history', String(HISTORY)] }); /* stopped in after() */
        await cluster.start();
        browser = await launch();
        alice = await login(browser, cluster.gws[0].url, nick('alice'), [], { avatar: '🦊' });
        bob = await login(browser, cluster.gws[0].url, nick('bob'));
        await alice.page.locator(tid('user-item') + '[data-user-id="' + bob.user.id + '"]').waitFor();
    });

    after(async () => {
        if (browser) await browser.close().catch(() => {});
        const problems = cluster ? await cluster.stop() : [];
        assert.deepEqual(problems, [], 'gateway logs after shutdown');
    });

    test('a line starting with @known-user goes privately, never to the room', T, async () => {
        await reset(alice.page);
        await reset(bob.page);
        const text = 'are you there? ' + run;
        await alice.page.fill(tid('composer'), '@' + bob.user.name + ' ' + text);
        /* before sending, the composer says who will read it */
        const hint = await alice.page.locator(tid('composer-hint')).filter({ hasText: 'privately' }).filter({ hasText: bob.user.name })
            .waitFor({ timeout: 3000 }).then(() => true, () => false);
        await alice.page.press(tid('composer'), 'Enter');
        const dm = bob.page.locator(tid('dm-item') + '[data-user-id="' + alice.user.id + '"]');
        await alice.page.waitForTimeout(500);
        assert.equal(await messages_with(bob.page, text).count(), 0, 'not in #general for bob');
        await dm.locator(tid('unread-badge')).waitFor({ timeout: 5000 });
        await alice.page.locator(tid('dm-item') + '[data-user-id="' + bob.user.id + '"].active').waitFor({ timeout: 3000 });
        await expect_once(alice.page, text);
        assert.equal(await messages_with(alice.page, text).locator('.msg-text').innerText(), text, 'sent without the @name prefix');
        await open_room(alice.page, 'general');
        assert.equal(await messages_with(alice.page, text).count(), 0, 'not in #general for alice');
        assert.equal(await messages_with(bob.page, text).count(), 0, 'not in #general for bob');
        await dm.click();
        await expect_once(bob.page, text);
        assert.ok(hint, 'the composer said it goes privately to bob');
        /* someone the client does not know is just text in the room */
        const plain = '@nobody-' + run + ' is a plain word';
        await send(alice.page, plain);
        await open_room(bob.page, 'general');
        await expect_once(bob.page, plain);
    });

    test('export, clear, import and reload: no unread badge for nothing new', T, async () => {
        await reset(alice.page);
        await reset(bob.page);
        /* bob writes to alice privately; she reads it */
        await bob.page.click(tid('user-item') + '[data-user-id="' + alice.user.id + '"]');
        await send(bob.page, 'a word before the export ' + run);
        const dm = alice.page.locator(tid('dm-item') + '[data-user-id="' + bob.user.id + '"]');
        await dm.click();
        await expect_once(alice.page, 'a word before the export ' + run);
        await open_room(alice.page, 'general');
        await open_room(bob.page, 'general');
        const file = await export_file(alice.page);
        await clear_local(alice.page);
        await alice.page.setInputFiles(tid('import-input'), file);
        await alice.page.locator('#import-status').filter({ hasText: 'Imported' }).waitFor();
        await alice.page.waitForTimeout(600); /* the import reaches the local cache */
        await alice.page.reload();
        await alice.page.locator(tid('conn-status') + '[data-state="online"]').waitFor();
        await dm.waitFor();
        await alice.page.waitForTimeout(1500); /* the history of every conversation is back */
        assert.equal(await alice.page.locator(tid('unread-badge')).count(), 0, 'no unread badge');
        assert.doesNotMatch(await alice.page.title(), /\(\d+\)/);
    });

    test('imported messages keep their sender: avatar, own tint and the From filter', T, async () => {
        await reset(alice.page);
        const room = 'arch-' + run;
        const ts = Date.now() - 2 * DAY;
        const file = [
            'chatgw history export',
            'exported ' + fmt_stamp(ts + 3600000) + ' by ' + alice.user.name,
            '',
            '== #' + room + ' ==',
            '[' + fmt_stamp(ts) + '] #1 <' + alice.user.name + '> my archived line ' + run,
            '[' + fmt_stamp(ts + 60000) + '] #2 <' + bob.user.name + '> his archived line ' + run,
            '',
        ].join('\n');
        await alice.page.click(tid('settings-button'));
        await alice.page.setInputFiles(tid('import-input'), { name: 'old.txt', mimeType: 'text/plain', buffer: Buffer.from(file) });
        await alice.page.locator('#import-status').filter({ hasText: 'Imported 2' }).waitFor();
        await alice.page.keyboard.press('Escape');
        await open_room(alice.page, room);
        const mine = messages_with(alice.page, 'my archived line ' + run);
        await mine.waitFor();
        assert.equal(await mine.getAttribute('data-from'), alice.user.id);
        assert.match(await mine.getAttribute('class'), /\bmine\b/, 'own-message tint');
        assert.equal(await mine.locator('.avatar').textContent(), '🦊', 'own avatar, not initials');
        assert.equal(await messages_with(alice.page, 'his archived line ' + run).getAttribute('data-from'), bob.user.id);
        /* "From user" finds them */
        await alice.page.fill(tid('search-input'), 'archived line ' + run);
        const results = alice.page.locator(tid('search-results') + ' ' + tid('search-result'));
        await results.first().waitFor();
        await alice.page.selectOption('#search-user', alice.user.id);
        await results.filter({ hasText: 'my archived line' }).waitFor({ timeout: 3000 });
        await alice.page.waitForTimeout(300);
        assert.equal(await results.count(), 1);
        await alice.page.selectOption('#search-user', bob.user.id);
        await results.filter({ hasText: 'his archived line' }).waitFor({ timeout: 3000 });
        await alice.page.waitForTimeout(300);
        assert.equal(await results.count(), 1);
        await alice.page.selectOption('#search-user', '');
        await alice.page.fill(tid('search-input'), '');
    });

    test('clear local data asks first, and the open room shows the server history again', T, async () => {
        await reset(alice.page);
        await reset(bob.page);
        const text = 'kept on the server ' + run;
        await send(bob.page, text);
        await expect_once(alice.page, text);
        await alice.page.click(tid('settings-button'));
        await alice.page.click(tid('clear-button'));
        const confirm = alice.page.locator(tid('clear-confirm'));
        await confirm.waitFor({ state: 'visible', timeout: 3000 });
        /* asking changed nothing yet; "Cancel" keeps everything */
        assert.equal(await messages_with(alice.page, text).count(), 1);
        await alice.page.click(tid('clear-cancel'));
        await confirm.waitFor({ state: 'hidden' });
        assert.equal(await messages_with(alice.page, text).count(), 1);
        await alice.page.click(tid('clear-button'));
        await confirm.click();
        await alice.page.locator('#import-status').filter({ hasText: 'cleared' }).waitFor();
        await alice.page.keyboard.press('Escape');
        assert.equal(await expect_once(alice.page, text), 1, 'the server history is shown again');
        assert.equal(await alice.page.locator('.empty-state').count(), 0);
    });

    test('focus: the message box after login, and it survives live updates', T, async () => {
        const carol = await login(browser, cluster.gws[0].url, nick('carol'));
        const page = carol.page;
        const focused = () => page.evaluate(() => {
            const a = document.activeElement;
            return { testid: a.dataset.testid || a.tagName, room: a.dataset.room || '', user: a.dataset.userId || '' };
        });
        await page.waitForFunction(() => document.activeElement?.dataset.testid === 'composer', null, { timeout: 3000 });
        /* a keyboard user sits on #random in the sidebar while a message arrives there */
        await page.focus(tid('room-item') + '[data-room="random"]');
        await open_room(bob.page, 'random');
        await send(bob.page, 'focus test ' + run);
        await page.locator(tid('room-item') + '[data-room="random"] ' + tid('unread-badge')).waitFor();
        assert.deepEqual(await focused(), { testid: 'room-item', room: 'random', user: '' });
        /* ... and on alice in the online list while someone else comes online */
        await page.focus(tid('user-item') + '[data-user-id="' + alice.user.id + '"]');
        const dave = await page.evaluate(async ([name, url]) => {
            const r = await fetch('/api/login', { method: 'POST', body: JSON.stringify({ nickname: name }) });
            const { token, user } = await r.json();
            window.dave_ws = new WebSocket(url + '?token=' + encodeURIComponent(token));
            return user;
        }, [nick('dave'), cluster.ws_url(0)]);
        await page.locator(tid('user-item') + '[data-user-id="' + dave.id + '"]').waitFor();
        assert.deepEqual(await focused(), { testid: 'user-item', room: '', user: alice.user.id });
        /* Enter still acts on it */
        await page.keyboard.press('Enter');
        await page.locator(tid('dm-item') + '[data-user-id="' + alice.user.id + '"].active').waitFor();
        await carol.ctx.close();
        await open_room(bob.page, 'general');
        assert.deepEqual(carol.errors, []);
    });

    test('a large image shows a placeholder at once; an oversized file is refused clearly', T, async () => {
        await reset(alice.page);
        await reset(bob.page);
        /* 21 MB: refused right away, nothing sent */
        const before = await bob.page.locator(tid('message') + '[data-kind="image"]').count();
        await alice.page.evaluate(() => {
            const dt = new DataTransfer();
            dt.items.add(new File([new Uint8Array(21 * 1024 * 1024)], 'huge.png', { type: 'image/png' }));
            document.querySelector('.chat').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
        });
        await alice.page.locator('#toast').filter({ hasText: 'huge.png' }).filter({ hasText: /up to 20 MB/ }).waitFor({ timeout: 2000 });
        /* a 2400x1600 picture: something shows before it is shrunk */
        const seen = await alice.page.evaluate(async () => {
            const c = document.createElement('canvas');
            c.width = 2400;
            c.height = 1600;
            const g = c.getContext('2d');
            const grad = g.createLinearGradient(0, 0, 2400, 1600);
            grad.addColorStop(0, '#f76e9a');
            grad.addColorStop(1, '#4f6ef7');
            g.fillStyle = grad;
            g.fillRect(0, 0, 2400, 1600);
            const blob = await new Promise((r) => c.toBlob(r, 'image/png'));
            const list = document.querySelector('[data-testid="message-list"]');
            const old = new Set(list.querySelectorAll('[data-kind="image"]'));
            const first = new Promise((resolve) => {
                const t0 = performance.now();
                const mo = new MutationObserver(() => {
                    const row = [...list.querySelectorAll('[data-kind="image"]')].find((r) => !old.has(r));
                    if (!row) return;
                    mo.disconnect();
                    resolve({ ms: performance.now() - t0, img: !!row.querySelector('img'), text: row.textContent });
                });
                mo.observe(list, { childList: true, subtree: true });
            });
            const dt = new DataTransfer();
            dt.items.add(new File([blob], 'noise.png', { type: 'image/png' }));
            document.querySelector('.chat').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
            return Object.assign(await first, { size: blob.size });
        });
        assert.equal(seen.img, false, 'a placeholder first, not the finished image');
        assert.match(seen.text, /Preparing/);
        assert.ok(seen.ms < 500, 'shown at once: ' + seen.ms + ' ms');
        await bob.page.waitForFunction(([sel, n]) => document.querySelectorAll(sel).length === n + 1,
            [tid('message-list') + ' ' + tid('message') + '[data-kind="image"] img', before], { timeout: 30000 });
        await alice.page.waitForFunction((sel) => [...document.querySelectorAll(sel)].every((r) => r.dataset.seq !== ''),
            tid('message') + '[data-kind="image"]', { timeout: 15000 });
        assert.equal(await alice.page.locator('.image-preparing').count(), 0);
    });

    test('trimmed history does not claim to be the beginning of the room', T, async () => {
        await reset(alice.page);
        const room = 'trim-' + run;
        await post_raw(alice.page, cluster.ws_url(0), room, 3, 14, 'trim');
        await alice.page.fill(tid('composer'), '');
        await alice.page.evaluate((r) => {
            const b = document.querySelector('[data-testid="new-room"]');
            b.click();
            document.getElementById('new-room-name').value = r;
            document.getElementById('new-room-form').requestSubmit();
        }, room);
        await alice.page.locator(tid('room-item') + '[data-room="' + room + '"].active').waitFor();
        const rows = alice.page.locator(tid('message-list') + ' ' + tid('message'));
        await alice.page.waitForFunction(([sel, n]) => document.querySelectorAll(sel).length >= n, [tid('message-list') + ' ' + tid('message'), HISTORY]);
        for (let i = 0; i < 5; i++) {
            await alice.page.locator(tid('message-list')).evaluate((e) => { e.scrollTop = 0; });
            await alice.page.waitForTimeout(200);
        }
        assert.equal(await rows.count(), HISTORY);
        assert.equal(await rows.first().getAttribute('data-seq'), String(42 - HISTORY + 1));
        const edge = alice.page.locator('.history-edge');
        await alice.page.waitForFunction(() => !/Loading/.test(document.querySelector('.history-edge').textContent));
        const text = await edge.textContent();
        assert.doesNotMatch(text, /beginning/);
        assert.match(text, new RegExp('last ' + HISTORY + ' '));
        await open_room(alice.page, 'general');
    });

    test('a reload by another user adds no left/joined lines', T, async () => {
        await reset(alice.page);
        await reset(bob.page);
        const lines = () => alice.page.locator(tid('system-line')).filter({ hasText: bob.user.name }).count();
        const n = await lines();
        await bob.page.reload();
        await bob.page.locator(tid('conn-status') + '[data-state="online"]').waitFor();
        const text = 'back after a reload ' + run;
        await send(bob.page, text);
        await expect_once(alice.page, text);
        await alice.page.waitForTimeout(300);
        assert.equal(await lines(), n);
        /* a real departure still shows */
        await bob.page.click(tid('room-item') + '[data-room="tech"]');
        await alice.page.click(tid('room-item') + '[data-room="tech"]');
        await bob.page.click(tid('leave-room'));
        await alice.page.locator(tid('system-line')).filter({ hasText: bob.user.name + ' left #tech' }).waitFor({ timeout: 5000 });
        await open_room(alice.page, 'general');
    });

    test('at 375 px the search placeholder is not cut off', T, async () => {
        const u = alice;
        await u.page.setViewportSize({ width: 375, height: 740 });
        await u.page.waitForTimeout(100);
        const fit = await u.page.locator(tid('search-input')).evaluate((i) => {
            const cs = getComputedStyle(i);
            const g = document.createElement('canvas').getContext('2d');
            g.font = cs.fontStyle + ' ' + cs.fontWeight + ' ' + cs.fontSize + ' ' + cs.fontFamily;
            const room = i.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
            return { text: i.placeholder, need: g.measureText(i.placeholder).width, room };
        });
        assert.match(fit.text, /^Search/);
        assert.ok(fit.need <= fit.room, JSON.stringify(fit));
        assert.ok(await u.page.evaluate(() => document.documentElement.scrollWidth) <= 375);
        /* and the full text comes back when there is room */
        await u.page.setViewportSize({ width: 1280, height: 800 });
        await u.page.waitForFunction(() => document.querySelector('[data-testid="search-input"]').placeholder === 'Search messages');
    });

    test('search by a custom date range', T, async () => {
        await reset(alice.page);
        await reset(bob.page);
        const text = 'dated note ' + run;
        await send(bob.page, text);
        await expect_once(alice.page, text);
        const page = alice.page;
        await page.fill(tid('search-input'), text);
        const results = page.locator(tid('search-results') + ' ' + tid('search-result'));
        const none = page.locator(tid('search-results')).filter({ hasText: 'No messages found' });
        await results.first().waitFor();
        await page.selectOption('#search-when', 'custom');
        const now = Date.now();
        await page.fill('#search-from', ymd(now + DAY));
        await none.waitFor({ timeout: 3000 });
        await page.fill('#search-from', ymd(now - DAY));
        await page.fill('#search-to', ymd(now));
        await results.first().waitFor({ timeout: 3000 });
        await page.fill('#search-to', ymd(now - DAY));
        await none.waitFor({ timeout: 3000 });
        await page.selectOption('#search-when', 'all');
        await results.first().waitFor({ timeout: 3000 });
        await page.fill(tid('search-input'), '');
    });

    test('no serious or critical accessibility violations (axe-core)', { timeout: 90000 }, async () => {
        await reset(alice.page);
        await reset(bob.page);
        const report = [];
        const check = async (page, what) => {
            for (const v of await serious_a11y(page)) report.push(what + ': ' + v);
        };
        const theme = (page, t) => page.evaluate((x) => { document.documentElement.dataset.theme = x; }, t);
        /* login page */
        const ctx = await browser.newContext({ viewport: { width: 375, height: 740 } });
        const lp = await ctx.newPage();
        await lp.goto(cluster.gws[0].url + '/');
        await lp.locator(tid('login-nickname')).waitFor();
        for (const t of ['light', 'dark']) {
            await theme(lp, t);
            await check(lp, 'login 375 ' + t);
        }
        await ctx.close();
        const page = alice.page;
        for (const [w, h] of [[1280, 800], [375, 740]]) {
            await page.setViewportSize({ width: w, height: h });
            for (const t of ['light', 'dark']) {
                await theme(page, t);
                /* clicks through the DOM: at 375 px the lists sit in closed drawers */
                await page.evaluate(() => document.querySelector('[data-testid="room-item"][data-room="general"]').click());
                await page.locator(tid('room-item') + '[data-room="general"].active').waitFor();
                await check(page, 'room ' + w + ' ' + t);
                await page.evaluate((id) => document.querySelector('[data-testid="user-item"][data-user-id="' + id + '"]').click(), bob.user.id);
                await page.locator(tid('dm-item') + '[data-user-id="' + bob.user.id + '"].active').waitFor();
                await check(page, 'dm ' + w + ' ' + t);
                await page.fill(tid('search-input'), 'archived');
                await page.locator(tid('search-results')).waitFor();
                await page.waitForTimeout(300);
                await check(page, 'search ' + w + ' ' + t);
                await page.evaluate(() => { document.getElementById('search-results').hidden = true; });
                await page.fill(tid('search-input'), '');
                await page.click(tid('settings-button'));
                await page.locator('#settings-dialog[open]').waitFor();
                await check(page, 'settings ' + w + ' ' + t);
                await page.keyboard.press('Escape');
            }
        }
        await page.setViewportSize({ width: 1280, height: 800 });
        await page.evaluate(() => { localStorage.removeItem('chatgw.theme'); });
        await open_room(page, 'general');
        assert.deepEqual(report, []);
    });

    test('new messages are announced without moving focus', T, async () => {
        await reset(alice.page);
        await reset(bob.page);
        await alice.page.focus(tid('composer'));
        const text = 'announce me ' + run;
        await send(bob.page, text);
        await alice.page.locator('#announcer').filter({ hasText: text }).waitFor({ timeout: 5000 });
        assert.equal(await alice.page.evaluate(() => document.activeElement.dataset.testid), 'composer');
        assert.equal(await alice.page.getAttribute('#announcer', 'aria-live'), 'polite');
        /* and the message list itself does not re-announce every re-render */
        assert.notEqual(await alice.page.getAttribute(tid('message-list'), 'aria-live'), 'polite');
        for (const u of [alice, bob]) {
            assert.deepEqual(u.errors, []);
            assert.deepEqual(u.console_errors, []);
            assert.deepEqual(u.dialogs, []);
        }
    });
});
