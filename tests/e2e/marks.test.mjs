// End-to-end: read markers, edits, deletions and reactions across tabs, devices and nodes.
// Two gateways; alice has one tab on each (the same token), bob is on the second.
// Run: cd tests/e2e && npm test   (CHAT_GATEWAY_BIN selects the gateway binary)

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster } from './cluster.mjs';
import { launch, login, send, tid, messages_with, expect_once, open_room, reset, clear_local } from './browser.mjs';

const FILE_TIMEOUT_MS = 180000;
const watchdog = setTimeout(() => {
    console.error('e2e watchdog: file timeout after ' + FILE_TIMEOUT_MS + ' ms');
    process.exit(1);
}, FILE_TIMEOUT_MS);
watchdog.unref();

const T = { timeout: 60000 };
const run = Date.now().toString(36).slice(-4);
const nick = (n) => n + '-' + run;
const badge_of = (page, room) => page.locator(tid('room-item') + '[data-room="' + room + '"] ' + tid('unread-badge'));

async function badge_is(page, room, text) {
    await page.waitForFunction(([sel, t]) => (document.querySelector(sel)?.textContent ?? '') === t,
        [tid('room-item') + '[data-room="' + room + '"] ' + tid('unread-badge'), text], { timeout: 10000 });
}

describe('chatgw web client: read markers, edits and reactions', { timeout: FILE_TIMEOUT_MS - 10000 }, () => {
    let cluster;
    let browser;
    let alice;
    let alice2;
    let bob;

    before(async () => {
        cluster = new Cluster(2); /* stopped in after() */
        await cluster.start();
        browser = await launch();
        alice = await login(browser, cluster.gws[0].url, nick('alice'));
        /* the same user on another device, through the other node */
        const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
        const page = await ctx.newPage();
        const errors = [];
        page.on('pageerror', (e) => errors.push(e.message));
        const creds = await alice.page.evaluate(() => [localStorage.getItem('chatgw.token'), localStorage.getItem('chatgw.user')]);
        await page.goto(cluster.gws[1].url + '/');
        await page.evaluate(([t, u]) => {
            localStorage.setItem('chatgw.token', t);
            localStorage.setItem('chatgw.user', u);
        }, creds);
        await page.reload();
        await page.locator(tid('conn-status') + '[data-state="online"]').waitFor({ timeout: 15000 });
        alice2 = { ctx, page, errors };
        bob = await login(browser, cluster.gws[1].url, nick('bob'));
    });

    after(async () => {
        if (browser) await browser.close().catch(() => {});
        const problems = cluster ? await cluster.stop() : [];
        assert.deepEqual(problems, [], 'gateway logs after shutdown');
    });

    test('an unread badge is the same on both devices, and reading on one clears both', T, async () => {
        await reset(alice.page);
        await reset(alice2.page);
        await open_room(bob.page, 'random');
        await send(bob.page, 'lunch? ' + run);
        await send(bob.page, 'pizza at noon ' + run);
        await expect_once(bob.page, 'pizza at noon ' + run);
        await badge_is(alice.page, 'random', '2');
        await badge_is(alice2.page, 'random', '2');
        /* reading on the first device: the divider marks where the unread part starts */
        await open_room(alice.page, 'random');
        await expect_once(alice.page, 'pizza at noon ' + run);
        const divider = alice.page.locator(tid('new-messages'));
        await divider.waitFor();
        const first_after = await divider.evaluate((d) => d.nextElementSibling?.textContent || '');
        assert.match(first_after, new RegExp('lunch\\? ' + run));
        await badge_of(alice2.page, 'random').waitFor({ state: 'detached', timeout: 10000 });
        assert.equal(await alice2.page.title(), 'chatgw');
        await open_room(alice.page, 'general');

        /* the count survives clearing the local data of a device */
        await send(bob.page, 'one more ' + run);
        await badge_is(alice.page, 'random', '1');
        await badge_is(alice2.page, 'random', '1');
        await clear_local(alice2.page);
        await alice2.page.reload();
        await alice2.page.locator(tid('conn-status') + '[data-state="online"]').waitFor();
        await badge_is(alice2.page, 'random', '1');
        await open_room(alice2.page, 'random');
        await badge_of(alice.page, 'random').waitFor({ state: 'detached', timeout: 10000 });
        await open_room(alice2.page, 'general');
        await open_room(bob.page, 'general');
        assert.deepEqual(alice2.errors, []);
    });

    test('edit, reactions and delete reach the other user and the other device', T, async () => {
        await reset(alice.page);
        await reset(alice2.page);
        await reset(bob.page);
        await send(alice.page, 'teh plan ' + run);
        await expect_once(bob.page, 'teh plan ' + run);
        /* edit in place */
        const mine = messages_with(alice.page, 'teh plan ' + run);
        await mine.hover();
        await mine.locator(tid('msg-edit')).click();
        await alice.page.fill(tid('edit-input'), 'the plan ' + run);
        await alice.page.press(tid('edit-input'), 'Enter');
        for (const page of [bob.page, alice2.page, alice.page]) {
            const row = messages_with(page, 'the plan ' + run);
            await row.locator(tid('edited-mark')).waitFor();
            assert.equal(await messages_with(page, 'teh plan ' + run).count(), 0);
        }
        /* someone else's message offers no edit */
        const theirs = messages_with(bob.page, 'the plan ' + run);
        assert.equal(await theirs.locator(tid('msg-edit')).count(), 0);
        /* bob reacts; alice sees the count, and adds hers */
        await theirs.hover();
        await theirs.locator(tid('msg-react')).click();
        await theirs.locator(tid('react-option')).filter({ hasText: '👍' }).click();
        const chip = (page) => messages_with(page, 'the plan ' + run).locator(tid('reaction') + '[data-emoji="👍"]');
        await alice.page.waitForFunction((sel) => [...document.querySelectorAll(sel)].some((b) => b.textContent === '👍 1'),
            tid('reaction') + '[data-emoji="👍"]');
        await chip(alice.page).click();
        for (const page of [bob.page, alice2.page]) {
            await page.waitForFunction((sel) => [...document.querySelectorAll(sel)].some((b) => b.textContent === '👍 2'),
                tid('reaction') + '[data-emoji="👍"]');
        }
        assert.equal(await chip(alice.page).getAttribute('aria-pressed'), 'true');
        /* delete asks once more, then it is gone everywhere */
        const edited = messages_with(alice.page, 'the plan ' + run);
        await edited.hover();
        await edited.locator(tid('msg-delete')).click();
        await edited.locator(tid('msg-delete')).click();
        for (const page of [bob.page, alice2.page, alice.page]) {
            await page.locator(tid('message-list') + ' ' + tid('deleted-mark')).first().waitFor();
            await messages_with(page, 'the plan ' + run).waitFor({ state: 'detached' });
        }
        /* and it stays so after a reload */
        await bob.page.reload();
        await bob.page.locator(tid('conn-status') + '[data-state="online"]').waitFor();
        await bob.page.locator(tid('message-list') + ' ' + tid('deleted-mark')).first().waitFor();
        assert.equal(await messages_with(bob.page, 'the plan ' + run).count(), 0);
        assert.deepEqual(alice.errors, []);
        assert.deepEqual(bob.errors, []);
    });
});
