// TLS at the edge: `deploy/cluster up --tls` (Redis, two gateways, HAProxy with a
// self-signed certificate it makes) and the browser client over https:// and wss://.
// Chromium accepts the test certificate only here (--ignore-certificate-errors); the
// certificate itself is checked by Node against its own SANs for 127.0.0.1.
// Run: cd tests/e2e && node --test tls.test.mjs   (CHAT_GATEWAY_BIN selects the gateway binary)

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { REPO, GATEWAY_BIN, free_port } from './cluster.mjs';
import { CHROMIUM, login, send, expect_once } from './browser.mjs';

const FILE_TIMEOUT_MS = 150000;
const watchdog = setTimeout(() => {
    console.error('tls e2e watchdog: file timeout after ' + FILE_TIMEOUT_MS + ' ms');
    process.exit(1);
}, FILE_TIMEOUT_MS);
watchdog.unref();

const CLUSTER = path.join(REPO, 'deploy', 'cluster');
const T = { timeout: 60000 };
const run = Date.now().toString(36).slice(-4);

/* deploy/cluster CMD ARGS...: resolves with {code, out}; never rejects. */
function cluster(args, timeout_ms) {
    return new Promise((resolve) => {
        /* No load-balancer grace: down should not wait 3 s per gateway here. */
        const env = { ...process.env, CHAT_DRAIN_GRACE: '0' };
        execFile('bash', [CLUSTER, ...args], { env, timeout: timeout_ms }, (err, stdout, stderr) => {
            resolve({ code: err ? (err.code ?? 1) : 0, out: stdout + stderr });
        });
    });
}

function port_free(port) {
    return new Promise((resolve) => {
        const s = net.createServer();
        s.once('error', () => resolve(false));
        s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
}

/* deploy/cluster puts the gateways on P+1..P+N: find a P with those free too. */
async function base_port(n) {
    for (let i = 0; i < 50; i++) {
        const p = await free_port();
        if (p + n > 65535) continue;
        let free = true;
        for (let k = 1; k <= n && free; k++) free = await port_free(p + k);
        if (free) return p;
    }
    throw new Error('no free port range found');
}

/* GET over https, trusting only `ca`: proves the certificate is valid for 127.0.0.1. */
function https_get(url, ca) {
    return new Promise((resolve, reject) => {
        /* agent: false: no kept-alive socket holding the process open at the end */
        const req = https.get(url, { ca, timeout: 5000, agent: false }, (res) => {
            let body = '';
            res.on('data', (d) => (body += d));
            res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
        });
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.on('error', reject);
    });
}

/* A zombie has exited: deploy/cluster's daemons are reparented to init, which reaps
   them a moment after they exit. */
function alive(pid) {
    try {
        const stat = fs.readFileSync('/proc/' + pid + '/stat', 'utf8');
        return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
    } catch (e) {
        return false;
    }
}

describe('TLS at HAProxy (deploy/cluster up --tls)', { timeout: FILE_TIMEOUT_MS - 10000 }, () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatgw-e2e-tls-'));
    let ports;
    let browser;
    let up;
    const pids = {};

    before(async () => {
        const port = await base_port(2);
        ports = { port, tls: await free_port(), stats: await free_port(), redis: await free_port() };
        up = await cluster(['up', '--no-deps', '--tls', '--gateways', '2', '--port', String(port),
            '--tls-port', String(ports.tls), '--stats-port', String(ports.stats),
            '--redis-port', String(ports.redis), '--run-dir', dir, '--gateway-bin', GATEWAY_BIN], 90000);
        for (const f of fs.readdirSync(dir)) {
            if (f.endsWith('.pid')) pids[f.slice(0, -4)] = Number(fs.readFileSync(path.join(dir, f), 'utf8'));
        }
        assert.equal(up.code, 0, 'deploy/cluster up --tls failed:\n' + up.out);
        browser = await chromium.launch({
            executablePath: CHROMIUM,
            args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
                '--disable-component-update', '--ignore-certificate-errors'],
        });
    });

    after(async () => {
        if (browser) await browser.close().catch(() => {});
        const down = await cluster(['down', '--run-dir', dir, '--stop-timeout', '10'], 60000);
        const left = Object.entries(pids).filter(([, pid]) => alive(pid));
        if (down.code === 0 && left.length === 0) fs.rmSync(dir, { recursive: true, force: true });
        else console.error('tls e2e: run dir kept in ' + dir);
        assert.equal(down.code, 0, 'deploy/cluster down failed:\n' + down.out);
        assert.deepEqual(left, [], 'processes left after down');
    });

    test('up --tls prints the https URL and status checks it', T, async () => {
        assert.match(up.out, new RegExp('https://127\\.0\\.0\\.1:' + ports.tls + '/'));
        assert.deepEqual(Object.keys(pids).sort(), ['gw1', 'gw2', 'haproxy', 'redis']);
        const st = await cluster(['status', '--run-dir', dir], 30000);
        assert.equal(st.code, 0, st.out);
        assert.match(st.out, new RegExp('https :' + ports.tls + ' /healthz 200'));
    });

    test('the self-signed certificate is valid for 127.0.0.1; HSTS over https only', T, async () => {
        const pem = fs.readFileSync(path.join(dir, 'tls', 'chat.pem'), 'utf8');
        const cert = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/)[0];
        assert.equal(fs.statSync(path.join(dir, 'tls', 'chat.pem')).mode & 0o077, 0, 'the key is private');
        const r = await https_get('https://127.0.0.1:' + ports.tls + '/healthz', cert);
        assert.equal(r.status, 200);
        assert.equal(JSON.parse(r.body).status, 'ok');
        assert.match(r.headers['strict-transport-security'] || '', /max-age=\d+/);
        /* plain http keeps working next to it, without HSTS (browsers ignore it there anyway) */
        const plain = await fetch('http://127.0.0.1:' + ports.port + '/healthz', { headers: { connection: 'close' } });
        assert.equal(plain.status, 200);
        assert.equal(plain.headers.get('strict-transport-security'), null);
    });

    test('two browsers chat over https:// and wss:// through HAProxy', T, async () => {
        const url = 'https://127.0.0.1:' + ports.tls;
        const alice = await login(browser, url, 'alice-tls-' + run);
        const bob = await login(browser, url, 'bob-tls-' + run);
        try {
            assert.equal(await alice.page.evaluate(() => location.protocol), 'https:');
            /* Reload to watch the client's WebSocket from its start: it must be wss:// to
               the same HAProxy listener, and its first frame the gateway's welcome. */
            const seen = new Promise((resolve) => {
                alice.page.on('websocket', (ws) => {
                    ws.on('framereceived', (f) => {
                        if (typeof f.payload === 'string' && f.payload.includes('"welcome"')) resolve(ws.url());
                    });
                });
            });
            await alice.page.reload();
            let timer;
            const ws_url = await Promise.race([seen, new Promise((r) => (timer = setTimeout(() => r('none'), 15000)))]);
            clearTimeout(timer);
            assert.match(ws_url, new RegExp('^wss://127\\.0\\.0\\.1:' + ports.tls + '/ws'));
            await alice.page.locator('[data-testid="conn-status"][data-state="online"]').waitFor({ timeout: 15000 });

            const text = 'over wss ' + run;
            await send(alice.page, text);
            assert.equal(await expect_once(bob.page, text), 1);
            assert.equal(await expect_once(alice.page, text), 1);
            const reply = 'wss reply ' + run;
            await send(bob.page, reply);
            assert.equal(await expect_once(alice.page, reply), 1);
            assert.deepEqual([...alice.dialogs, ...bob.dialogs], []);
            assert.deepEqual([...alice.errors, ...bob.errors], []);
        } finally {
            await alice.ctx.close().catch(() => {});
            await bob.ctx.close().catch(() => {});
        }
    });
});
