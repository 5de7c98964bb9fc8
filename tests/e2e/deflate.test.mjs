// permessage-deflate (RFC 7692) in a real browser: Chromium offers it, the gateway takes it, and
// the chat works through HAProxy with compressed frames both ways (long messages, an image).

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Cluster, free_port, stop_process, watchdog, nick } from './cluster.mjs';
import { launch, login, send, expect_once, tid } from './browser.mjs';

watchdog(180000);
const T = { timeout: 60000 };

/* Every WebSocket the page makes, kept where the test can read its negotiated extensions. */
const WATCH_SOCKETS = () => {
    const Native = window.WebSocket;
    window.__sockets = [];
    window.WebSocket = class extends Native {
        constructor(...args) {
            super(...args);
            window.__sockets.push(this);
        }
    };
};

async function healthy(url) {
    try {
        return (await fetch(url + '/healthz', { signal: AbortSignal.timeout(1000) })).status === 200;
    } catch (e) {
        return false;
    }
}

describe('permessage-deflate through HAProxy', { timeout: 170000 }, () => {
    let cluster;
    let browser;
    let haproxy;
    let lb;

    before(async () => {
        /* The pages come from HAProxy's address, which the gateways must accept as an Origin. */
        const port = await free_port();
        lb = 'http://127.0.0.1:' + port;
        cluster = new Cluster(2, { args: ['--origins', lb] });
        await cluster.start();
        const cfg = path.join(cluster.dir, 'haproxy.cfg');
        fs.writeFileSync(cfg, [
            'global', '    log stdout format raw local0 warning',
            'defaults', '    mode http', '    timeout connect 5s', '    timeout client 60s',
            '    timeout server 60s', '    timeout tunnel 1h',
            'frontend chat', '    bind 127.0.0.1:' + port, '    default_backend gateways',
            /* roundrobin: the two users land on different nodes */
            'backend gateways', '    balance roundrobin', '    option httpchk GET /healthz',
            ...cluster.gws.map((g) => '    server ' + g.node + ' 127.0.0.1:' + g.port + ' check inter 500'),
            '',
        ].join('\n'));
        const log = fs.openSync(path.join(cluster.dir, 'haproxy.log'), 'a');
        haproxy = spawn(process.env.HAPROXY_BIN || 'haproxy', ['-db', '-f', cfg], { stdio: ['ignore', log, log] });
        fs.closeSync(log);
        haproxy.exited = new Promise((resolve) => haproxy.on('exit', resolve));
        const end = Date.now() + 15000;
        while (!(await healthy(lb))) {
            if (Date.now() > end || haproxy.exitCode !== null) throw new Error('haproxy not ready: ' + cluster.log('haproxy'));
            await new Promise((r) => setTimeout(r, 200));
        }
        browser = await launch();
    });

    after(async () => {
        if (browser) await browser.close().catch(() => {});
        await stop_process(haproxy);
        const problems = cluster ? await cluster.stop() : [];
        assert.deepEqual(problems, [], 'gateway logs after shutdown');
    });

    test('Chromium negotiates permessage-deflate and two users chat through HAProxy', T, async () => {
        const alice = await login(browser, lb, nick('zalice'), [], { init: WATCH_SOCKETS });
        const bob = await login(browser, lb, nick('zbob'), [], { init: WATCH_SOCKETS });
        for (const u of [alice, bob]) {
            const ext = await u.page.evaluate(() => window.__sockets.filter((w) => w.readyState === 1).map((w) => w.extensions));
            assert.equal(ext.length, 1, 'one open socket');
            assert.match(ext[0], /^permessage-deflate/, 'negotiated: ' + ext[0]);
            assert.match(ext[0], /server_no_context_takeover/);
        }
        /* Through HAProxy, on two nodes (both pages came from the same address). */
        const nodes = await Promise.all([alice, bob].map((u) => u.page.getAttribute(tid('conn-status'), 'title')));
        assert.notEqual(nodes[0], nodes[1], 'roundrobin put them on different nodes');
        /* A short message (sent plain) and a long one (compressed by the node, and by Chromium). */
        const short = 'hi ' + nick('z');
        const long = 'the deploy is green again and the build is fast, '.repeat(30) + nick('z');
        await send(alice.page, short);
        await send(alice.page, long);
        assert.equal(await expect_once(bob.page, short), 1);
        assert.equal(await expect_once(bob.page, long.slice(-60)), 1);
        await send(bob.page, long + ' back');
        assert.equal(await expect_once(alice.page, long.slice(-60) + ' back'), 1);
        /* The nodes compressed what they sent and inflated what they got. */
        let out = 0;
        let inn = 0;
        for (const g of cluster.gws) {
            const m = await (await fetch(g.url + '/metrics')).text();
            out += Number(/^chat_deflate_out_bytes_total\{[^}]*\} (\d+)/m.exec(m)[1]);
            inn += Number(/^chat_deflate_in_bytes_total\{[^}]*\} (\d+)/m.exec(m)[1]);
        }
        assert.ok(out > 0, 'compressed frames sent');
        assert.ok(inn > 0, 'compressed frames received from Chromium');
        for (const u of [alice, bob]) {
            assert.deepEqual(u.errors, []);
            await u.ctx.close();
        }
    });
});
