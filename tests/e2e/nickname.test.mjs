// End-to-end: a stored token whose nickname someone online took meanwhile. The gateway closes
// it with 4009 before `welcome`; the client must go back to the login form and say why.
// Run: cd tests/e2e && npm test   (CHAT_GATEWAY_BIN selects the gateway binary)

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster } from './cluster.mjs';
import { launch, login, tid } from './browser.mjs';

const FILE_TIMEOUT_MS = 120000;
const watchdog = setTimeout(() => {
    console.error('e2e watchdog: file timeout after ' + FILE_TIMEOUT_MS + ' ms');
    process.exit(1);
}, FILE_TIMEOUT_MS);
watchdog.unref();

const run = Date.now().toString(36).slice(-4);

describe('chatgw web client: nickname taken while away', { timeout: FILE_TIMEOUT_MS - 10000 }, () => {
    let cluster;
    let browser;

    before(async () => {
        cluster = new Cluster(1); /* stopped in after() */
        await cluster.start();
        browser = await launch();
    });

    after(async () => {
        if (browser) await browser.close().catch(() => {});
        const problems = cluster ? await cluster.stop() : [];
        assert.deepEqual(problems, [], 'gateway logs after shutdown');
    });

    test('close 4009 returns to the login form with "nickname taken"', { timeout: 60000 }, async () => {
        const url = cluster.gws[0].url;
        const away = await login(browser, url, 'zed-' + run);
        /* The first zed leaves (its token stays in the browser) ... */
        await away.page.close();
        /* ... and someone online takes the nickname, in other letters' case. */
        const taker = await login(browser, url, 'Zed-' + run);
        /* The first zed comes back with the stored token. */
        const page = await away.ctx.newPage();
        await page.goto(url + '/');
        await page.locator(tid('login-nickname')).waitFor({ state: 'visible', timeout: 15000 });
        const said = await page.locator(tid('login-error')).textContent({ timeout: 5000 });
        assert.match(said || '', /nickname taken/i, 'the login form says why');
        assert.equal(await page.evaluate(() => localStorage.getItem('chatgw.token')), null,
            'the refused token is forgotten');
        /* The one who holds the name is still online and undisturbed. */
        assert.equal(await taker.page.locator(tid('conn-status') + '[data-state="online"]').count(), 1);
        await away.ctx.close();
        await taker.ctx.close();
    });
});
