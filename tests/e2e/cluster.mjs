// Test cluster: one real redis-server and N real chat-gateway processes on free loopback ports.
// Every process is started here, tracked by PID and stopped by PID (also when the test run fails
// or is interrupted).

import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(here, '..', '..');
export const GATEWAY_BIN = process.env.CHAT_GATEWAY_BIN || path.join(REPO, 'build', 'gateway', 'chat-gateway');
export const ADMIN_BIN = process.env.CHAT_ADMIN_BIN || path.join(REPO, 'build', 'client', 'admin', 'chat-admin');
export const REDIS_BIN = process.env.REDIS_SERVER_BIN || 'redis-server';
export const JWT_SECRET = 'e2e-secret-0123456789-abcdefghij-KLMNOPQR'; // 40 characters
// Lets a test prove it fails against another client tree (an older checkout, say) without
// touching this one.
export const STATIC_DIR = process.env.CHAT_E2E_STATIC_DIR || path.join(REPO, 'client', 'web');

const live = new Set();

/* node --test gives each file its own process: a tag per file keeps nicknames and rooms apart
 * from those of an earlier run against the same Redis. */
export const run = Date.now().toString(36).slice(-4);
export const nick = (n) => n + '-' + run;

/* Ends this file's process after `ms` whatever is stuck (a browser, a gateway, a wait):
 * the 'exit' handler below still kills what was started. */
export function watchdog(ms) {
    const t = setTimeout(() => {
        console.error('e2e watchdog: file timeout after ' + ms + ' ms');
        process.exit(1);
    }, ms);
    t.unref();
}

/* Last resort: anything still running when node exits gets SIGKILL, by PID. */
process.on('exit', () => {
    for (const p of live) {
        try { process.kill(p.pid, 'SIGKILL'); } catch (e) { /* gone */ }
    }
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => process.exit(130));
}

export function free_port() {
    return new Promise((resolve, reject) => {
        const s = net.createServer();
        s.unref();
        s.on('error', reject);
        s.listen(0, '127.0.0.1', () => {
            const { port } = s.address();
            s.close(() => resolve(port));
        });
    });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function start_process(bin, args, log_path) {
    const out = fs.openSync(log_path, 'a');
    // No load-balancer grace when the suite stops (or kills) a gateway.
    // One address logs in many users and creates rooms freely in the suite: the
    // per-address and per-user limits stay off (production defaults elsewhere).
    const env = {
        CHAT_LOGIN_RATE: '0', CHAT_MAX_CONNS_PER_IP: '0', CHAT_ROOM_CREATE_RATE: '0',
        ...process.env, CHAT_DRAIN_GRACE: process.env.CHAT_DRAIN_GRACE ?? '0',
    };
    const p = spawn(bin, args, { stdio: ['ignore', out, out], env });
    fs.closeSync(out);
    p.exited = new Promise((resolve) => p.on('exit', (code, sig) => {
        live.delete(p);
        resolve({ code, sig });
    }));
    p.on('error', () => live.delete(p));
    live.add(p);
    return p;
}

/* Stop by PID: SIGTERM, then SIGKILL if it has not exited within `grace_ms`. */
export async function stop_process(p, grace_ms = 5000) {
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    try { process.kill(p.pid, 'SIGTERM'); } catch (e) { return; }
    const t = sleep(grace_ms).then(() => 'timeout');
    if ((await Promise.race([p.exited, t])) === 'timeout') {
        try { process.kill(p.pid, 'SIGKILL'); } catch (e) { /* gone */ }
        await p.exited;
    }
}

function redis_ping(port) {
    return new Promise((resolve) => {
        const s = net.connect(port, '127.0.0.1');
        let buf = '';
        s.setTimeout(500, () => { s.destroy(); resolve(false); });
        s.on('error', () => resolve(false));
        s.on('connect', () => s.write('PING\r\n'));
        s.on('data', (d) => {
            buf += d;
            if (buf.includes('\r\n')) {
                s.destroy();
                resolve(buf.startsWith('+PONG'));
            }
        });
    });
}

async function wait_until(what, fn, timeout_ms, proc) {
    const end = Date.now() + timeout_ms;
    while (Date.now() < end) {
        if (proc && (proc.exitCode !== null || proc.signalCode !== null)) throw new Error(what + ': process exited early');
        if (await fn()) return;
        await sleep(100);
    }
    throw new Error(what + ': not ready after ' + timeout_ms + ' ms');
}

async function healthz(port) {
    try {
        const r = await fetch('http://127.0.0.1:' + port + '/healthz', { signal: AbortSignal.timeout(1000) });
        return r.status === 200;
    } catch (e) {
        return false;
    }
}

export class Cluster {
    /* `opts.args`: extra gateway flags, e.g. a small --history so trimming is cheap to reach. */
    constructor(n, opts = {}) {
        this.n = n;
        this.extra_args = opts.args || [];
        this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatgw-e2e-'));
        this.redis = null;
        this.gws = [];
    }

    async start() {
        if (!fs.existsSync(GATEWAY_BIN)) throw new Error('gateway binary not found: ' + GATEWAY_BIN + ' (set CHAT_GATEWAY_BIN)');
        const rport = await free_port();
        const rproc = start_process(REDIS_BIN, ['--port', String(rport), '--bind', '127.0.0.1', '--save', '',
            '--appendonly', 'no', '--dir', this.dir], path.join(this.dir, 'redis.log'));
        this.redis = { port: rport, proc: rproc };
        await wait_until('redis', () => redis_ping(rport), 10000, rproc);
        const ports = [];
        for (let i = 0; i < this.n; i++) ports.push(await free_port());
        this.origins = ports.map((p) => 'http://127.0.0.1:' + p).join(',');
        for (let i = 0; i < this.n; i++) {
            this.gws.push({ index: i, port: ports[i], node: 'gw' + (i + 1), url: 'http://127.0.0.1:' + ports[i], proc: null });
        }
        await Promise.all(this.gws.map((g) => this.start_gateway(g.index)));
        return this;
    }

    async start_gateway(i) {
        const g = this.gws[i];
        const args = ['--port', String(g.port), '--bind', '127.0.0.1', '--redis', 'redis://127.0.0.1:' + this.redis.port + '/0',
            '--jwt-secret', JWT_SECRET, '--node-id', g.node, '--static-dir', STATIC_DIR,
            '--origins', this.origins, ...this.extra_args];
        g.proc = start_process(GATEWAY_BIN, args, path.join(this.dir, g.node + '.log'));
        try {
            await wait_until(g.node + ' /healthz', () => healthz(g.port), 15000, g.proc);
        } catch (e) {
            throw new Error(e.message + '\n' + this.log(g.node).split('\n').slice(-15).join('\n'));
        }
    }

    /* A crash, not a drain: the node vanishes without closing anything. */
    async kill_gateway(i) {
        const g = this.gws[i];
        if (!g.proc) return;
        try { process.kill(g.proc.pid, 'SIGKILL'); } catch (e) { /* gone */ }
        await g.proc.exited;
        g.proc = null;
    }

    /* Gateways that died without being killed by a test, and sanitizer reports in any log. */
    problems() {
        const out = [];
        for (const g of this.gws) {
            const done = g.proc && (g.proc.exitCode !== null || g.proc.signalCode !== null);
            if (done && !g.stopping) out.push(g.node + ' exited unexpectedly (' + (g.proc.exitCode ?? g.proc.signalCode) + ')');
            if (done && g.stopping && g.proc.exitCode !== 0) out.push(g.node + ' did not exit 0 after SIGTERM (' + (g.proc.exitCode ?? g.proc.signalCode) + ')');
            const log = this.log(g.node);
            const m = /^.*(runtime error|ERROR: AddressSanitizer|ERROR: LeakSanitizer).*$/m.exec(log);
            if (m) out.push(g.node + ': ' + m[0]);
        }
        return out;
    }

    /* `chat-admin ARGS --json` against this cluster's Redis: its parsed output, or a throw
     * carrying its stderr when it exits non-zero. */
    admin(...args) {
        if (!fs.existsSync(ADMIN_BIN)) throw new Error('chat-admin not found: ' + ADMIN_BIN + ' (set CHAT_ADMIN_BIN)');
        const redis = 'redis://127.0.0.1:' + this.redis.port + '/0';
        return new Promise((resolve, reject) => {
            execFile(ADMIN_BIN, [...args, '--redis', redis, '--json'], { timeout: 15000 }, (err, out, errout) => {
                if (err) reject(new Error('chat-admin ' + args.join(' ') + ': ' + (errout || err.message)));
                else resolve(JSON.parse(out));
            });
        });
    }

    ws_url(i) {
        return 'ws://127.0.0.1:' + this.gws[i].port + '/ws';
    }

    log(name) {
        try {
            return fs.readFileSync(path.join(this.dir, name + '.log'), 'utf8');
        } catch (e) {
            return '';
        }
    }

    /*
     * Stop everything by PID. Returns the problems found in the logs afterwards (a sanitizer
     * reports leaks only at exit); the logs are kept when there are any.
     */
    async stop() {
        for (const g of this.gws) g.stopping = true;
        await Promise.all(this.gws.map((g) => stop_process(g.proc, 11000)));
        if (this.redis) await stop_process(this.redis.proc);
        const problems = this.problems();
        if (process.env.CHAT_E2E_KEEP_LOGS || problems.length) console.error('e2e: logs kept in ' + this.dir);
        else fs.rmSync(this.dir, { recursive: true, force: true });
        return problems;
    }
}
