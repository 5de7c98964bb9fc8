// End-to-end: what the web client does when an operator acts with the real chat-admin (kick,
// delete-room, purge: docs/operations.md "chat-admin"). Two gateways: the commands travel over
// Redis' control channel, so the page and the other user sit on different nodes.
// Run: cd tests/e2e && npm test   (CHAT_GATEWAY_BIN, CHAT_ADMIN_BIN select the binaries)

import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { watchdog, run, nick } from './cluster.mjs';
import { with_cluster, login, send, tid, messages_with, expect_once, open_room, create_room, export_file } from './browser.mjs';
import fs from 'node:fs';

const FILE_TIMEOUT_MS = 180000;
watchdog(FILE_TIMEOUT_MS);

const T = { timeout: 60000 };
const room_item = (room) => tid('room-item') + '[data-room="' + room + '"]';

describe('chatgw web client: operator commands', { timeout: FILE_TIMEOUT_MS - 10000 }, () => {
    const env = with_cluster(2);
    let cluster;
    let browser;
    let alice;
    let bob;

    before(async () => {
        ({ cluster, browser } = env);
        alice = await login(browser, cluster.gws[0].url, nick('alice'));
        bob = await login(browser, cluster.gws[1].url, nick('bob'));
    });

    test('kick: the login form says why, and the page does not reconnect', T, async () => {
        const kim = await login(browser, cluster.gws[1].url, nick('kim'));
        const sockets = [];
        kim.page.on('websocket', (ws) => sockets.push(ws.url()));
        const r = await cluster.admin('kick', kim.user.id);
        assert.deepEqual(r, { kicked: kim.user.id, nodes: 2 });
        await kim.page.locator(tid('login-nickname')).waitFor({ state: 'visible', timeout: 10000 });
        const said = await kim.page.locator(tid('login-error')).textContent();
        assert.match(said || '', /disconnected by an operator/i, 'the login form says why');
        /* A reconnect's first delay is under a second (net.js backoff_ms): a few seconds of
         * silence means none is coming. */
        await kim.page.waitForTimeout(4000);
        assert.deepEqual(sockets, [], 'no WebSocket opened after the kick');
        const online = await cluster.admin('online');
        assert.ok(!online.users.some((u) => u.id === kim.user.id), 'kim is not online: ' + JSON.stringify(online));
        /* not a ban: the same nickname logs in again */
        await kim.page.fill(tid('login-nickname'), nick('kim'));
        await kim.page.click(tid('login-submit'));
        await kim.page.locator(tid('conn-status') + '[data-state="online"]').waitFor({ timeout: 15000 });
        assert.deepEqual(kim.errors, []);
        await kim.ctx.close();
    });

    test('delete-room: the room leaves the list with its badge; the open one gives way to #general', T, async () => {
        const open = 'doomed-' + run;
        const other = 'gone-' + run;
        await create_room(alice.page, other);
        await create_room(alice.page, open);
        await bob.page.locator(room_item(other)).waitFor();
        await open_room(bob.page, other);
        await send(bob.page, 'unread in ' + other);
        await alice.page.locator(room_item(other) + ' ' + tid('unread-badge')).waitFor();

        assert.deepEqual(await cluster.admin('delete-room', other), { deleted: other, nodes: 2 });
        await alice.page.locator(room_item(other)).waitFor({ state: 'detached', timeout: 10000 });
        assert.doesNotMatch(await alice.page.title(), /^\(/, 'no unread count left in the title');
        assert.equal(await alice.page.locator(room_item(open) + '.active').count(), 1, 'the open room stays open');
        /* bob was in it: he is moved out too */
        await bob.page.locator(room_item(other)).waitFor({ state: 'detached', timeout: 10000 });
        await bob.page.locator(room_item('general') + '.active').waitFor();

        assert.deepEqual(await cluster.admin('delete-room', open), { deleted: open, nodes: 2 });
        await alice.page.locator(room_item(open)).waitFor({ state: 'detached', timeout: 10000 });
        await alice.page.locator(room_item('general') + '.active').waitFor();
        await alice.page.locator(tid('system-line')).filter({ hasText: '#' + open + ' was deleted by an operator' }).waitFor();
        /* and they do not come back with a reload */
        await alice.page.reload();
        await alice.page.locator(tid('conn-status') + '[data-state="online"]').waitFor({ timeout: 15000 });
        await alice.page.locator(room_item('general') + '.active').waitFor();
        assert.equal(await alice.page.locator(room_item(open) + ',' + room_item(other)).count(), 0);
        assert.deepEqual(alice.errors, []);
    });

    test('purge: the messages vanish from view, search, export and cache; the room goes on', T, async () => {
        const room = 'purged-' + run;
        const old = 'before purge ' + run;
        await create_room(alice.page, room);
        await bob.page.locator(room_item(room)).waitFor();
        await open_room(bob.page, room);
        for (const i of [1, 2]) {
            await send(alice.page, old + ' #' + i);
            await expect_once(bob.page, old + ' #' + i);
        }
        await alice.page.fill(tid('search-input'), old);
        await alice.page.locator(tid('search-result') + '[data-conv="room:' + room + '"]').first().waitFor();

        assert.deepEqual(await cluster.admin('purge', room), { purged: room, seq: 2, messages: 2, nodes: 2 });
        for (const p of [alice.page, bob.page]) {
            await p.locator(tid('system-line')).filter({ hasText: 'cleared the history of #' + room }).waitFor({ timeout: 10000 });
            assert.equal(await messages_with(p, old).count(), 0, 'purged messages are gone from the view');
        }
        assert.equal(await alice.page.locator(tid('search-result') + '[data-conv="room:' + room + '"]').count(), 0,
            'and from the search results shown');
        await alice.page.keyboard.press('Escape');

        /* A reload starts from the cache, which holds nothing of the room now, and resumes with
         * `since` at the purge's seq: nothing purged comes back. */
        await alice.page.waitForTimeout(1000); /* the cache write (400 ms debounce) */
        const joins = [];
        alice.page.on('websocket', (ws) => ws.on('framesent', (f) => {
            const m = JSON.parse(f.payload);
            if (m.type === 'join' && m.room === room) joins.push(m);
        }));
        await alice.page.reload();
        await alice.page.locator(tid('conn-status') + '[data-state="online"]').waitFor({ timeout: 15000 });
        await alice.page.locator(room_item(room) + '.active').waitFor();
        await alice.page.locator(tid('system-line')).filter({ hasText: 'cleared the history' }).waitFor();
        assert.equal(await messages_with(alice.page, old).count(), 0, 'purged messages stay gone after a reload');
        for (let i = 0; i < 50 && !joins.length; i++) await alice.page.waitForTimeout(100);
        assert.equal(joins[0] && joins[0].since, 2, 'resume from the purge: ' + JSON.stringify(joins));

        await send(alice.page, 'after purge ' + run);
        await expect_once(alice.page, 'after purge ' + run);
        await expect_once(bob.page, 'after purge ' + run);
        assert.equal(await messages_with(bob.page, 'after purge ' + run).getAttribute('data-seq'), '3',
            'seq numbering goes on past the purge');
        const exported = fs.readFileSync(await export_file(alice.page), 'utf8');
        assert.ok(!exported.includes(old), 'the export has no purged message');
        assert.ok(exported.includes('after purge ' + run));
        await alice.page.keyboard.press('Escape');
        assert.deepEqual(alice.errors, []);
        assert.deepEqual(bob.errors, []);
    });
});
