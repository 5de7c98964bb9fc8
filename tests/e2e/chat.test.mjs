// End-to-end: the browser client in real Chromium against three real gateways and one Redis.
// Run: cd tests/e2e && npm test   (CHAT_GATEWAY_BIN selects the gateway binary)

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Cluster, REPO, JWT_SECRET } from './cluster.mjs';
import { launch, login, send, tid, messages_with, expect_once, open_room, reset } from './browser.mjs';

/* The whole file must finish in bounded time, whatever hangs. */
const FILE_TIMEOUT_MS = 240000;
const watchdog = setTimeout(() => {
    console.error('e2e watchdog: file timeout after ' + FILE_TIMEOUT_MS + ' ms');
    process.exit(1);
}, FILE_TIMEOUT_MS);
watchdog.unref();

const T = { timeout: 60000 };
const run = Date.now().toString(36).slice(-4);
const nick = (n) => n + '-' + run;

describe('chatgw web client', { timeout: FILE_TIMEOUT_MS - 10000 }, () => {
    let cluster;
    let browser;
    let alice;
    let bob;

    before(async () => {
        cluster = new Cluster(3); /* stopped in after(), also when start() fails half-way */
        await cluster.start();
        browser = await launch();
        /* alice on gw1, bob on gw2 with gw3 as his fallback node */
        alice = await login(browser, cluster.gws[0].url, nick('alice'), [cluster.ws_url(1), cluster.ws_url(2)], { avatar: '🦊' });
        bob = await login(browser, cluster.gws[1].url, nick('bob'), [cluster.ws_url(2), cluster.ws_url(0)]);
    });

    after(async () => {
        if (browser) await browser.close().catch(() => {});
        const problems = cluster ? await cluster.stop() : [];
        assert.deepEqual(problems, [], 'gateway logs after shutdown');
    });

    test('login shows inline errors: nickname taken (409) and invalid', T, async () => {
        const ctx = await browser.newContext();
        const page = await ctx.newPage();
        await page.goto(cluster.gws[2].url + '/');
        await page.fill(tid('login-nickname'), nick('ALICE'));
        await page.click(tid('login-submit'));
        await page.locator(tid('login-error')).waitFor({ state: 'visible' });
        assert.match(await page.textContent(tid('login-error')), /taken/i);
        await page.fill(tid('login-nickname'), 'x'.repeat(40));
        await page.click(tid('login-submit'));
        await page.waitForFunction((sel) => /at most 32|not valid/.test(document.querySelector(sel).textContent), tid('login-error'));
        assert.equal(await page.isVisible(tid('conn-status')), false);
        await ctx.close();
    });

    test('two users on different gateways chat and see each message once', T, async () => {
        assert.notEqual(await alice.page.getAttribute(tid('conn-status'), 'title'), await bob.page.getAttribute(tid('conn-status'), 'title'));
        const a = 'hello from alice ' + run;
        await send(alice.page, a);
        assert.equal(await expect_once(bob.page, a), 1);
        assert.equal(await expect_once(alice.page, a), 1);
        const b = 'hi alice, bob here ' + run;
        await send(bob.page, b);
        assert.equal(await expect_once(alice.page, b), 1);
        assert.equal(await expect_once(bob.page, b), 1);
        /* both sides agree on the order: the same seqs */
        const seqs = async (p) => p.locator(tid('message-list') + ' ' + tid('message')).evaluateAll((rs) => rs.map((r) => r.dataset.seq));
        assert.deepEqual(await seqs(alice.page), await seqs(bob.page));
        /* the user list is cluster-wide */
        await bob.page.locator(tid('user-item') + '[data-user-id="' + alice.user.id + '"]').waitFor();
        await alice.page.locator(tid('user-item') + '[data-user-id="' + bob.user.id + '"]').waitFor();
    });

    test('the user list follows presence_batch: a user who comes and goes', T, async () => {
        const frames = [];
        const carol = await login(browser, cluster.gws[2].url, nick('carol'), [], { frames });
        const item = (u) => tid('user-item') + '[data-user-id="' + u.user.id + '"]';
        await alice.page.locator(item(carol)).waitFor();
        await bob.page.locator(item(carol)).waitFor();
        const types = () => frames.map((p) => { try { return JSON.parse(p).type; } catch { return null; } });
        /* carol's own online comes back as a batch within the interval (500 ms) */
        for (let i = 0; i < 50 && !types().includes('presence_batch'); i++) await carol.page.waitForTimeout(100);
        assert.ok(types().includes('presence_batch'), 'carol got no presence_batch: ' + types().join(' '));
        assert.ok(!types().includes('online') && !types().includes('offline'), 'carol got online/offline frames');
        await carol.page.locator(item(alice)).waitFor();
        await carol.ctx.close();
        await alice.page.locator(item(carol)).waitFor({ state: 'detached', timeout: 15000 });
        await bob.page.locator(item(carol)).waitFor({ state: 'detached', timeout: 15000 });
    });

    test('screenshots of the main screen, light and dark', T, async () => {
        const ctx = await browser.newContext({ viewport: { width: 1280, height: 760 }, deviceScaleFactor: 1 });
        const page = await ctx.newPage();
        await page.goto(cluster.gws[0].url + '/');
        await page.fill(tid('login-nickname'), 'grace');
        await page.click(tid('login-submit'));
        await page.locator(tid('conn-status') + '[data-state="online"]').waitFor();
        await open_room(page, 'tech');
        await open_room(alice.page, 'tech');
        await open_room(bob.page, 'tech');
        await send(page, 'Good morning everyone! ☕ The new gateway cluster is live.');
        await expect_once(page, 'Good morning');
        await send(bob.page, 'Nice! Failover works too: I was moved to another node without losing a message 🎉');
        await expect_once(page, 'Failover works');
        await send(alice.page, 'Here is the health check:\n```sh\ncurl -s localhost:8080/healthz\n```');
        await expect_once(page, 'curl -s');
        await send(bob.page, '👍');
        await expect_once(page, '👍');
        /* something unread elsewhere: a room and a private conversation */
        await open_room(bob.page, 'random');
        await send(bob.page, 'Anyone up for lunch? 🍕');
        await expect_once(bob.page, 'Anyone up for lunch');
        await bob.page.click(tid('user-item') + '[data-user-id="' + (await page.evaluate(() => JSON.parse(localStorage.getItem('chatgw.user')).id)) + '"]');
        await send(bob.page, 'Welcome aboard, Grace!');
        await expect_once(bob.page, 'Welcome aboard');
        await page.locator(tid('dm-item') + ' ' + tid('unread-badge')).waitFor();
        await open_room(alice.page, 'general');
        await open_room(bob.page, 'general');
        await page.mouse.move(1, 1);
        // docs/ keeps the published screenshots; a test run refreshes them only
        // when asked, so running the suite leaves the tree clean.
        const docs = process.env.CHAT_E2E_UPDATE_SCREENSHOTS
            ? path.join(REPO, 'docs')
            : path.join(REPO, 'tests', 'e2e', 'artifacts');
        fs.mkdirSync(docs, { recursive: true });
        for (const theme of ['light', 'dark']) {
            await page.evaluate((t) => localStorage.setItem('chatgw.theme', t), theme);
            await page.reload();
            await page.locator(tid('conn-status') + '[data-state="online"]').waitFor();
            await expect_once(page, 'curl -s');
            await page.locator(tid('user-item') + '[data-user-id="' + bob.user.id + '"]').waitFor();
            await page.mouse.move(1, 1);
            await page.waitForTimeout(300);
            await page.screenshot({ path: path.join(docs, 'screenshot-' + theme + '.png') });
        }
        await ctx.close();
    });

    test('typing indicator shows who is typing', T, async () => {
        await reset(alice.page);
        await reset(bob.page);
        await alice.page.fill(tid('composer'), '');
        await alice.page.type(tid('composer'), 'typ', { delay: 30 });
        await bob.page.waitForFunction(([sel, n]) => document.querySelector(sel).textContent.includes(n + ' is typing'),
            [tid('typing-indicator'), alice.user.name], { timeout: 5000 });
        await alice.page.fill(tid('composer'), '');
    });

    test('messages in another room raise its unread badge', T, async () => {
        await reset(alice.page);
        await reset(bob.page);
        await open_room(bob.page, 'general');
        await open_room(alice.page, 'random');
        await send(alice.page, 'random one ' + run);
        await send(alice.page, 'random two ' + run);
        const badge = bob.page.locator(tid('room-item') + '[data-room="random"] ' + tid('unread-badge'));
        await badge.waitFor();
        await bob.page.waitForFunction((sel) => document.querySelector(sel)?.textContent === '2', tid('room-item') + '[data-room="random"] ' + tid('unread-badge'));
        await open_room(bob.page, 'random');
        await expect_once(bob.page, 'random two ' + run);
        assert.equal(await badge.count(), 0);
        await open_room(alice.page, 'general');
        await open_room(bob.page, 'general');
    });

    test('@mention opens a private conversation', T, async () => {
        await reset(alice.page);
        await reset(bob.page);
        await alice.page.fill(tid('composer'), '');
        await alice.page.type(tid('composer'), '@' + nick('bo').slice(0, 2));
        const popup = alice.page.locator(tid('mention-popup'));
        await popup.waitFor({ state: 'visible' });
        await alice.page.locator(tid('mention-item') + '[data-user-id="' + bob.user.id + '"]').waitFor();
        /* arrow keys move the choice, Enter picks */
        const items = await alice.page.locator(tid('mention-item')).count();
        if (items > 1) {
            const ids = await alice.page.locator(tid('mention-item')).evaluateAll((rs) => rs.map((r) => r.dataset.userId));
            for (let i = 0; i < ids.indexOf(bob.user.id); i++) await alice.page.press(tid('composer'), 'ArrowDown');
        }
        await alice.page.press(tid('composer'), 'Enter');
        await popup.waitFor({ state: 'hidden' });
        await alice.page.locator(tid('dm-item') + '[data-user-id="' + bob.user.id + '"].active').waitFor();
        const secret = 'psst, a private note ' + run;
        await send(alice.page, secret);
        await expect_once(alice.page, secret);
        const dm = bob.page.locator(tid('dm-item') + '[data-user-id="' + alice.user.id + '"]');
        await dm.locator(tid('unread-badge')).waitFor();
        assert.equal(await dm.locator(tid('unread-badge')).textContent(), '1');
        assert.equal(await messages_with(bob.page, secret).count(), 0, 'not shown in #general');
        await dm.click();
        await expect_once(bob.page, secret);
        await open_room(alice.page, 'general');
        await open_room(bob.page, 'general');
    });

    test('create a room; others see it and can join; several rooms at once', T, async () => {
        await reset(alice.page);
        await reset(bob.page);
        const room = 'design-' + run;
        await alice.page.click(tid('new-room'));
        await alice.page.fill('#new-room-name', room);
        await alice.page.fill('#new-room-topic', 'pixels and palettes');
        await alice.page.press('#new-room-name', 'Enter');
        await alice.page.locator(tid('room-item') + '[data-room="' + room + '"].active').waitFor();
        await bob.page.locator(tid('room-item') + '[data-room="' + room + '"]').waitFor();
        await open_room(bob.page, room);
        await send(alice.page, 'first in ' + room);
        await expect_once(bob.page, 'first in ' + room);
        /* bob is still in #general too: a message there raises its badge */
        await open_room(alice.page, 'general');
        await send(alice.page, 'back in general ' + run);
        await bob.page.locator(tid('room-item') + '[data-room="general"] ' + tid('unread-badge')).waitFor();
        await open_room(bob.page, 'general');
        await expect_once(bob.page, 'back in general ' + run);
        /* a bad name is refused inline */
        await alice.page.click(tid('new-room'));
        await alice.page.fill('#new-room-name', 'Bad Name!');
        await alice.page.press('#new-room-name', 'Enter');
        await alice.page.locator('#new-room-error').waitFor({ state: 'visible' });
        await alice.page.click('#new-room-cancel');
        /* bob leaves the new room: alice sees him go, and its traffic no longer reaches him */
        await open_room(alice.page, room);
        await open_room(bob.page, room);
        await bob.page.click(tid('leave-room'));
        await bob.page.locator(tid('room-item') + '[data-room="general"].active').waitFor();
        await bob.page.locator(tid('room-item') + '[data-room="' + room + '"].not-joined').waitFor();
        await alice.page.locator(tid('system-line')).filter({ hasText: bob.user.name + ' left #' + room }).waitFor();
        await send(alice.page, 'after bob left ' + run);
        await expect_once(alice.page, 'after bob left ' + run);
        await bob.page.waitForTimeout(500);
        assert.equal(await bob.page.locator(tid('room-item') + '[data-room="' + room + '"] ' + tid('unread-badge')).count(), 0);
    });

    test('emoji panel inserts emoji into the composer', T, async () => {
        await reset(alice.page);
        await reset(bob.page);
        await alice.page.fill(tid('composer'), 'nice ');
        await alice.page.click(tid('emoji-button'));
        await alice.page.locator(tid('emoji-panel')).waitFor({ state: 'visible' });
        await alice.page.locator(tid('emoji-option')).filter({ hasText: '🎉' }).click();
        await alice.page.locator(tid('emoji-panel')).waitFor({ state: 'hidden' });
        assert.equal(await alice.page.inputValue(tid('composer')), 'nice 🎉');
        /* Shift+Enter is a newline, Enter sends */
        await alice.page.press(tid('composer'), 'Shift+Enter');
        await alice.page.type(tid('composer'), 'second line ' + run);
        assert.equal(await alice.page.inputValue(tid('composer')), 'nice 🎉\nsecond line ' + run);
        await alice.page.press(tid('composer'), 'Enter');
        await expect_once(bob.page, 'second line ' + run);
        assert.equal(await messages_with(bob.page, 'second line ' + run).locator('.msg-text').innerText(), 'nice 🎉\nsecond line ' + run);
        assert.equal(await alice.page.inputValue(tid('composer')), '');
    });

    test('usable at 360 px wide', T, async () => {
        const u = await login(browser, cluster.gws[2].url, nick('mo'), [], { viewport: { width: 360, height: 740 } });
        const width = await u.page.evaluate(() => document.documentElement.scrollWidth);
        assert.ok(width <= 360, 'no horizontal scroll: ' + width);
        assert.ok(await u.page.isVisible(tid('composer')));
        assert.ok(await u.page.isVisible(tid('send')));
        await u.page.click('#toggle-sidebar');
        await u.page.locator(tid('room-item') + '[data-room="random"]').click();
        await u.page.locator(tid('room-item') + '[data-room="random"].active').waitFor();
        await u.page.locator('#sidebar').evaluate((e) => new Promise((r) => setTimeout(r, 300)));
        await send(u.page, 'from a phone ' + run);
        await expect_once(u.page, 'from a phone ' + run);
        await u.ctx.close();
    });

    test('an uploaded image is downscaled and shown on the other side', T, async () => {
        await reset(alice.page);
        await reset(bob.page);
        /* a 2400x1600 PNG drawn by the browser itself */
        const b64 = await alice.page.evaluate(() => {
            const c = document.createElement('canvas');
            c.width = 2400;
            c.height = 1600;
            const g = c.getContext('2d');
            const grad = g.createLinearGradient(0, 0, 2400, 1600);
            grad.addColorStop(0, '#4f6ef7');
            grad.addColorStop(1, '#f76e9a');
            g.fillStyle = grad;
            g.fillRect(0, 0, 2400, 1600);
            g.fillStyle = '#fff';
            g.font = 'bold 200px sans-serif';
            g.fillText('chatgw', 700, 850);
            return c.toDataURL('image/png').split(',')[1];
        });
        await alice.page.setInputFiles(tid('image-input'), { name: 'big.png', mimeType: 'image/png', buffer: Buffer.from(b64, 'base64') });
        const img = bob.page.locator(tid('message') + '[data-kind="image"] img').last();
        await img.waitFor({ timeout: 15000 });
        const info = await img.evaluate(async (i) => {
            await i.decode();
            return { w: i.naturalWidth, h: i.naturalHeight, src: i.getAttribute('src').slice(0, 30) };
        });
        assert.ok(info.w <= 1280 && info.h <= 1280, 'downscaled: ' + info.w + 'x' + info.h);
        assert.equal(info.w, 1280);
        assert.match(info.src, /^data:image\/(webp|jpeg);base64,/);
        await img.click();
        await bob.page.locator('#lightbox').waitFor({ state: 'visible' });
        await bob.page.keyboard.press('Escape');
        await bob.page.locator('#lightbox').waitFor({ state: 'hidden' });
        await alice.page.waitForFunction((sel) => {
            const rows = document.querySelectorAll(sel);
            return rows.length === 1 && rows[0].dataset.seq !== '';
        }, tid('message') + '[data-kind="image"]');
    });

    test('images by drag-and-drop and paste', T, async () => {
        await reset(alice.page);
        await reset(bob.page);
        const sent = await alice.page.evaluate(async () => {
            const c = document.createElement('canvas');
            c.width = 300;
            c.height = 200;
            const g = c.getContext('2d');
            g.fillStyle = '#30a46c';
            g.fillRect(0, 0, 300, 200);
            const blob = await new Promise((r) => c.toBlob(r, 'image/png'));
            const file = new File([blob], 'drop.png', { type: 'image/png' });
            const dt = new DataTransfer();
            dt.items.add(file);
            document.querySelector('.chat').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
            const dt2 = new DataTransfer();
            dt2.items.add(new File([blob], 'paste.png', { type: 'image/png' }));
            document.querySelector('[data-testid="composer"]').dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt2, bubbles: true, cancelable: true }));
            return true;
        });
        assert.ok(sent);
        await bob.page.waitForFunction((sel) => document.querySelectorAll(sel).length >= 3, tid('message-list') + ' ' + tid('message') + '[data-kind="image"]');
        const small = await bob.page.locator(tid('message') + '[data-kind="image"] img').last().evaluate(async (i) => {
            await i.decode();
            return i.naturalWidth;
        });
        assert.equal(small, 300, 'small images keep their size');
    });

    test('an image the local cache dropped is fetched again on demand', T, async () => {
        await reset(alice.page);
        await reset(bob.page);
        await bob.page.waitForTimeout(1000); /* let pending cache writes land */
        const stubbed = await bob.page.evaluate(async (uid) => {
            const db = await new Promise((res, rej) => {
                const rq = indexedDB.open('chatgw', 1);
                rq.onsuccess = () => res(rq.result);
                rq.onerror = () => rej(rq.error);
            });
            const store = db.transaction('convs', 'readwrite').objectStore('convs');
            const rec = await new Promise((res) => { const g = store.get(uid + '|room:general'); g.onsuccess = () => res(g.result); });
            let n = 0;
            for (const m of rec.msgs) if (m.kind === 'image') { m.body = ''; m.stub = true; n++; }
            await new Promise((res) => { const p = store.put(rec); p.onsuccess = res; });
            db.close();
            return n;
        }, bob.user.id);
        assert.ok(stubbed >= 3);
        await bob.page.reload();
        await bob.page.locator(tid('conn-status') + '[data-state="online"]').waitFor();
        await open_room(bob.page, 'general');
        const stub = bob.page.locator(tid('message') + '[data-kind="image"] .image-stub');
        assert.equal(await stub.count(), stubbed);
        await stub.first().click();
        await bob.page.waitForFunction((sel) => document.querySelectorAll(sel).length === 1, tid('message') + '[data-kind="image"] img');
        assert.equal(await stub.count(), stubbed - 1);
    });

    test('connection lost banner after 10 tries, retry reconnects', T, async () => {
        const u = await (async () => {
            const ctx = await browser.newContext();
            const page = await ctx.newPage();
            const state = { fail: false, live: null, attempts: 0 };
            await page.routeWebSocket(/\/ws/, (ws) => {
                if (state.fail) {
                    state.attempts++;
                    ws.close({ code: 4000, reason: 'test' });
                    return;
                }
                state.live = ws;
                ws.connectToServer();
            });
            await page.goto(cluster.gws[2].url + '/');
            await page.fill(tid('login-nickname'), nick('flaky'));
            await page.click(tid('login-submit'));
            await page.locator(tid('conn-status') + '[data-state="online"]').waitFor();
            return { ctx, page, state };
        })();
        const { page, state } = u;
        /* the schedule itself: full jitter under 1, 2, 4 ... s, capped at 30 s */
        const caps = await page.evaluate(async () => {
            const { backoff_ms, MAX_TRIES } = await import('/net.js');
            const real = Math.random;
            Math.random = () => 0.9999;
            const hi = Array.from({ length: 12 }, (_, i) => backoff_ms(i));
            Math.random = () => 0;
            const lo = Array.from({ length: 12 }, (_, i) => backoff_ms(i));
            Math.random = real;
            return { hi, lo, MAX_TRIES };
        });
        assert.deepEqual(caps.hi.map((ms) => Math.ceil(ms / 1000)), [1, 2, 4, 8, 16, 30, 30, 30, 30, 30, 30, 30]);
        assert.deepEqual(caps.lo, new Array(12).fill(0));
        assert.equal(caps.MAX_TRIES, 10);
        await page.evaluate(() => { Math.random = () => 0.999; });
        state.fail = true;
        await state.live.close({ code: 4000, reason: 'test' });
        await page.waitForFunction((sel) => /^reconnecting in 1 s$/.test(document.querySelector(sel).textContent), tid('conn-status'));
        await page.evaluate(() => { Math.random = () => 0; });
        await page.locator('#conn-banner').waitFor({ state: 'visible', timeout: 10000 });
        assert.match((await page.textContent('#conn-banner')).replace(/\s+/g, ' '), /Connection lost — retry/);
        assert.equal(await page.getAttribute(tid('conn-status'), 'data-state'), 'lost');
        assert.equal(state.attempts, 10);
        state.fail = false;
        await page.click(tid('retry-button'));
        await page.locator(tid('conn-status') + '[data-state="online"]').waitFor();
        assert.equal(await page.isVisible('#conn-banner'), false);
        await u.ctx.close();
    });

    test('a ``` fenced block renders as code with a copy button', T, async () => {
        await reset(alice.page);
        await reset(bob.page);
        const code = 'console.log("fenced ' + run + '");\nreturn 42;';
        await alice.page.fill(tid('composer'), '```js\n' + code + '\n```');
        await alice.page.click(tid('send'));
        const msg = bob.page.locator(tid('message') + '[data-kind="code"]').filter({ hasText: 'fenced ' + run });
        await msg.waitFor();
        assert.equal(await msg.locator('pre code').textContent(), code);
        const font = await msg.locator('pre code').evaluate((e) => getComputedStyle(e).fontFamily);
        assert.match(font, /mono/i);
        assert.equal(await msg.locator('.code-lang').textContent(), 'js');
        assert.equal(await msg.locator(tid('copy-code')).count(), 1);
    });

    test('HTML in a message is shown as text and runs nothing', T, async () => {
        await reset(alice.page);
        await reset(bob.page);
        const evil = '<img src=x onerror=alert(1)>';
        await send(alice.page, evil);
        await send(alice.page, 'javascript:alert(2) <script>alert(3)</script> ' + run);
        for (const p of [alice.page, bob.page]) {
            const row = messages_with(p, evil);
            await row.first().waitFor();
            assert.equal(await row.count(), 1);
            assert.equal(await row.locator('.msg-body').textContent(), evil);
            assert.equal(await row.locator('img').count(), 0);
            await messages_with(p, 'javascript:alert(2)').first().waitFor();
            assert.equal(await p.locator(tid('message-list') + ' script, ' + tid('message-list') + ' a[href^="javascript"]').count(), 0);
        }
        /* links are http(s) only, open in a new tab, rel=noopener */
        await send(alice.page, 'docs at https://example.com/chat?x=1 and javascript:void(0) ' + run);
        const link = messages_with(bob.page, 'docs at').locator('a');
        await link.first().waitFor();
        assert.equal(await link.count(), 1);
        assert.equal(await link.getAttribute('href'), 'https://example.com/chat?x=1');
        assert.match(await link.getAttribute('rel'), /\bnoopener\b/);
        assert.equal(await link.getAttribute('target'), '_blank');
        await bob.page.waitForTimeout(500);
        assert.deepEqual(alice.dialogs, []);
        assert.deepEqual(bob.dialogs, []);
        assert.equal(await bob.page.evaluate(() => document.querySelectorAll('img[src="x"]').length), 0);
    });

    test('an admin broadcast reaches every user', T, async () => {
        await reset(alice.page);
        await reset(bob.page);
        const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
        const head = b64({ alg: 'HS256', typ: 'JWT' }) + '.' + b64({ sub: 'ops-' + run, name: 'ops-' + run, role: 'admin', exp: Math.floor(Date.now() / 1000) + 600 });
        const token = head + '.' + crypto.createHmac('sha256', JWT_SECRET).update(head).digest('base64url');
        const body = 'maintenance window at noon ' + run;
        const reply = await alice.page.evaluate(([url, tok, text]) => new Promise((resolve, reject) => {
            const ws = new WebSocket(url + '?token=' + encodeURIComponent(tok));
            ws.onerror = () => reject(new Error('ws error'));
            ws.onmessage = (ev) => {
                const m = JSON.parse(ev.data);
                if (m.type === 'welcome') ws.send(JSON.stringify({ type: 'broadcast', body: text, id: 'b1' }));
                else if (m.id === 'b1') {
                    ws.close();
                    resolve(m.type);
                }
            };
        }), [cluster.ws_url(2), token, body]);
        assert.equal(reply, 'ack');
        for (const p of [alice.page, bob.page]) {
            await p.locator(tid('system-line')).filter({ hasText: '📢 ops-' + run + ': ' + body }).waitFor();
        }
    });

    test('search finds messages and jumps to them', T, async () => {
        await reset(alice.page);
        await reset(bob.page);
        await bob.page.fill(tid('search-input'), 'hello from alice');
        const result = bob.page.locator(tid('search-results') + ' ' + tid('search-result')).first();
        await result.waitFor();
        /* fuzzy: letters in order */
        await bob.page.fill(tid('search-input'), 'hlo frm alce');
        await result.waitFor();
        await bob.page.selectOption('#search-when', 'week');
        await result.waitFor();
        /* by user: bob's own messages only */
        await bob.page.selectOption('#search-user', bob.user.id);
        await bob.page.locator(tid('search-results')).filter({ hasText: 'No messages found' }).waitFor();
        await bob.page.selectOption('#search-user', alice.user.id);
        await result.waitFor();
        await result.click();
        await bob.page.locator(tid('search-results')).waitFor({ state: 'hidden' });
        await bob.page.locator(tid('message') + '.flash').filter({ hasText: 'hello from alice' }).waitFor();
    });

    test('history loads on scroll-up', T, async () => {
        await reset(alice.page);
        await reset(bob.page);
        /* 60 messages in a fresh room, through three raw sockets (so no rate limit is hit) */
        const room = 'hist-' + run;
        await alice.page.evaluate(async ([r, urls]) => {
            const token = localStorage.getItem('chatgw.token');
            const open = (u) => new Promise((res, rej) => {
                const ws = new WebSocket(u + '?token=' + encodeURIComponent(token));
                ws.onmessage = (ev) => { if (JSON.parse(ev.data).type === 'welcome') res(ws); };
                ws.onerror = rej;
            });
            const acked = (ws, n) => new Promise((res) => {
                let k = 0;
                ws.addEventListener('message', (ev) => { if (JSON.parse(ev.data).type === 'ack' && ++k === n) res(); });
            });
            const socks = await Promise.all(urls.map(open));
            for (const [i, ws] of socks.entries()) {
                const joined = new Promise((res) => ws.addEventListener('message', (ev) => { if (JSON.parse(ev.data).type === 'joined') res(); }));
                ws.send(JSON.stringify({ type: 'join', room: r, id: 'j' }));
                await joined;
                const done = acked(ws, 19);
                for (let k = 0; k < 19; k++) ws.send(JSON.stringify({ type: 'message', room: r, kind: 'text', body: 'hist ' + (i * 19 + k + 1), id: 'h' + i + '-' + k }));
                await done;
            }
            socks.forEach((ws) => ws.close());
        }, [room, [cluster.ws_url(0), cluster.ws_url(1), cluster.ws_url(2)]]);
        await bob.page.locator(tid('room-item') + '[data-room="' + room + '"]').waitFor();
        await open_room(bob.page, room);
        const rows = bob.page.locator(tid('message-list') + ' ' + tid('message'));
        await bob.page.waitForFunction((sel) => document.querySelectorAll(sel).length >= 50, tid('message-list') + ' ' + tid('message'));
        for (let i = 0; i < 20 && (await rows.count()) < 57; i++) {
            await bob.page.locator(tid('message-list')).evaluate((e) => { e.scrollTop = 0; });
            await bob.page.waitForTimeout(300);
        }
        assert.equal(await rows.count(), 57);
        assert.equal(await rows.first().getAttribute('data-seq'), '1');
        /* far from the newest message, a button jumps back down */
        await bob.page.locator(tid('jump-latest')).waitFor({ state: 'visible' });
        await bob.page.click(tid('jump-latest'));
        await bob.page.locator(tid('jump-latest')).waitFor({ state: 'hidden' });
        /* drafts stay with their conversation */
        await bob.page.fill(tid('composer'), 'half-written thought');
        await open_room(bob.page, 'general');
        assert.equal(await bob.page.inputValue(tid('composer')), '');
        await open_room(bob.page, room);
        assert.equal(await bob.page.inputValue(tid('composer')), 'half-written thought');
        await bob.page.fill(tid('composer'), '');
        await open_room(bob.page, 'general');
    });

    test('export produces a text file with timestamps, joins and messages; import restores it', T, async () => {
        await reset(alice.page);
        await reset(bob.page);
        await alice.page.click(tid('settings-button'));
        const [dl] = await Promise.all([alice.page.waitForEvent('download'), alice.page.click(tid('export-button'))]);
        const file = await dl.path();
        const text = fs.readFileSync(file, 'utf8');
        assert.match(text, /^chatgw history export\n/);
        assert.match(text, /\n== #general ==\n/);
        const ts = '\\[\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\]';
        assert.match(text, new RegExp(ts + ' #\\d+ <' + alice.user.name + '> hello from alice ' + run + '\\n'));
        assert.match(text, new RegExp(ts + ' #\\d+ <' + bob.user.name + '> hi alice, bob here ' + run + '\\n'));
        assert.match(text, new RegExp(ts + ' -- ' + bob.user.name + ' joined #general\\n'));
        assert.match(text, new RegExp('<' + alice.user.name + '> ```js\\n    console.log\\("fenced ' + run + '"\\);\\n    return 42;\\n    ```\\n'));
        assert.match(text, new RegExp('== @' + bob.user.name + ' \\(dm:' + bob.user.id + '\\) ==\\n' + ts + ' #1 <' + alice.user.name + '> psst'));

        /* clear local data (confirmed): the server's copy is shown again; importing the file on top doubles nothing */
        await alice.page.click(tid('clear-button'));
        await alice.page.click(tid('clear-confirm'));
        await alice.page.locator('#import-status').filter({ hasText: 'cleared' }).waitFor();
        await expect_once(alice.page, 'hello from alice ' + run);
        await alice.page.setInputFiles(tid('import-input'), file);
        await alice.page.locator('#import-status').filter({ hasText: 'Imported' }).waitFor();
        await alice.page.keyboard.press('Escape');
        await expect_once(alice.page, 'hello from alice ' + run);
    });

    test('theme toggle persists across reload', T, async () => {
        await reset(alice.page);
        await reset(bob.page);
        const page = alice.page;
        const theme = () => page.evaluate(() => document.documentElement.dataset.theme);
        const before_theme = await theme();
        const want = before_theme === 'dark' ? 'light' : 'dark';
        /* the top-bar toggle works directly, and with the settings panel open too */
        await page.click(tid('theme-toggle'));
        assert.equal(await theme(), want);
        await page.click(tid('settings-button'));
        await page.click(tid('theme-toggle'));
        assert.equal(await theme(), before_theme);
        assert.equal(await page.inputValue('#theme-select'), before_theme);
        await page.click(tid('theme-toggle'));
        assert.equal(await theme(), want);
        await page.keyboard.press('Escape');
        await page.locator('#settings-dialog').waitFor({ state: 'hidden' });
        /* dark and light really differ */
        const bg_want = await page.evaluate(() => getComputedStyle(document.querySelector('.chat')).backgroundColor);
        await page.evaluate(() => { document.documentElement.dataset.theme = document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark'; });
        assert.notEqual(await page.evaluate(() => getComputedStyle(document.querySelector('.chat')).backgroundColor), bg_want);
        await page.reload();
        await page.locator(tid('conn-status') + '[data-state="online"]').waitFor();
        assert.equal(await theme(), want);
        assert.equal(await page.evaluate(() => getComputedStyle(document.querySelector('.chat')).backgroundColor), bg_want);
        /* the session survived the reload too (token in localStorage) */
        assert.equal(await page.isVisible(tid('login-nickname')), false);
        /* without a choice, the page follows the OS preference */
        for (const scheme of ['dark', 'light']) {
            const ctx = await browser.newContext({ colorScheme: scheme });
            const p = await ctx.newPage();
            await p.goto(cluster.gws[0].url + '/');
            assert.equal(await p.evaluate(() => document.documentElement.dataset.theme), scheme);
            await ctx.close();
        }
    });

    test('log out forgets the token', T, async () => {
        const u = await login(browser, cluster.gws[0].url, nick('zed'));
        await u.page.click(tid('logout-button'));
        await u.page.locator(tid('login-nickname')).waitFor();
        assert.equal(await u.page.evaluate(() => localStorage.getItem('chatgw.token')), null);
        await u.page.reload();
        await u.page.locator(tid('login-nickname')).waitFor();
        /* the nickname is free again once its holder is offline */
        await u.page.fill(tid('login-nickname'), nick('zed'));
        await u.page.click(tid('login-submit'));
        await u.page.locator(tid('conn-status') + '[data-state="online"]').waitFor();
        await u.ctx.close();
    });

    test('kill the gateway a user is on: reconnects to another node, resumes, nothing lost or doubled', T, async () => {
        await reset(alice.page);
        await reset(bob.page);
        const away = 'sent while bob was away ' + run;
        const offline = 'bob typed this while offline ' + run;
        assert.deepEqual(cluster.problems(), [], 'every gateway still healthy before the kill');
        const node_before = await bob.page.getAttribute(tid('conn-status'), 'title');
        assert.equal(node_before, 'connected to gw2');
        /* the longest jitter: ~1 s to find gw2 dead, ~2 s more before gw3; time to send meanwhile */
        await bob.page.evaluate(() => { Math.random = () => 0.999; });
        await cluster.kill_gateway(1);
        await bob.page.locator(tid('conn-status') + ':not([data-state="online"])').waitFor({ timeout: 5000 });
        await send(alice.page, away);
        await send(bob.page, offline);
        const dm_away = 'a private word while bob was away ' + run;
        await alice.page.click(tid('dm-item') + '[data-user-id="' + bob.user.id + '"]');
        await send(alice.page, dm_away);
        await expect_once(alice.page, dm_away);
        assert.notEqual(await bob.page.getAttribute(tid('conn-status'), 'data-state'), 'online', 'sent while bob was offline');
        await bob.page.locator(tid('conn-status') + '[data-state="online"]').waitFor({ timeout: 30000 });
        assert.equal(await bob.page.getAttribute(tid('conn-status'), 'title'), 'connected to gw3');
        assert.equal(await expect_once(bob.page, away, 15000), 1);
        assert.equal(await expect_once(bob.page, offline, 15000), 1);
        await open_room(alice.page, 'general');
        assert.equal(await expect_once(alice.page, offline, 15000), 1);
        /* the private conversation resumed too */
        const dm = bob.page.locator(tid('dm-item') + '[data-user-id="' + alice.user.id + '"]');
        await dm.locator(tid('unread-badge')).waitFor();
        await dm.click();
        assert.equal(await expect_once(bob.page, dm_away), 1);
        await open_room(bob.page, 'general');
        /* the conversation is whole and in order on both sides */
        const seqs = (p) => p.locator(tid('message-list') + ' ' + tid('message')).evaluateAll((rs) => rs.map((r) => Number(r.dataset.seq)));
        const a = await seqs(alice.page);
        const b = await seqs(bob.page);
        assert.deepEqual(b.slice(-a.length), a.slice(-b.length));
        for (let i = 1; i < b.length; i++) assert.ok(b[i] > b[i - 1], 'strictly increasing seqs');
        assert.deepEqual(bob.errors, []);
        assert.deepEqual(alice.errors, []);
    });

    test('no gateway crashed or reported a sanitizer error', T, async () => {
        assert.deepEqual(cluster.problems(), []);
    });
});
