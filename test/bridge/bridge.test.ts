/**
 * The bridge as a program: a second start on the same data directory finds
 * everything where it was; the flotilla-bridge command takes its options from
 * flags and environment, prints a generated owner password once, and closes
 * cleanly on SIGTERM.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createBridge, startFailure } from '@flotilla/bridge';
import { connect } from '../helpers/bridge-fixture.js';

const BIN = fileURLToPath(new URL('../../bridge/bin/flotilla-bridge.mjs', import.meta.url));

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

describe('bridge as a program', function () {
  this.timeout(30000);
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'flotilla-run-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('finds everything where it was after a restart on the same data directory', async () => {
    const first = await createBridge({ dataDir: dir, httpPort: null, mqttPort: 0, mqttsPort: null, logLevel: 'silent' });
    assert.ok(first.generatedOwnerPassword, 'a password is generated for the first owner');
    const owner = await first.store.verifyPassword('owner', first.generatedOwnerPassword!);
    assert.ok(owner);
    const product = await first.store.createProduct({ name: 'P', slug: 'p', ownerUserId: owner.id });
    await first.store.createDevice({ id: 'cafecafecafecafecafecafe', productId: product.id });
    await first.store.setDeviceSecret('cafecafecafecafecafecafe', 's3cret');
    // What a killed process leaves: a device marked online with no session to end it (before, it stayed online for good).
    await first.store.setOnline('cafecafecafecafecafecafe', true, new Date());
    await first.close();

    // And what an upload cut by the stop left (before, kept for good, up to the image limit each).
    mkdirSync(join(dir, 'firmware', '.incoming'), { recursive: true });
    writeFileSync(join(dir, 'firmware', '.incoming', 'cut.part'), Buffer.alloc(1000));
    const second = await createBridge({ dataDir: dir, httpPort: null, mqttPort: 0, mqttsPort: null, logLevel: 'silent' });
    try {
      assert.deepEqual(readdirSync(join(dir, 'firmware', '.incoming')), [], 'partial uploads swept at start');
      assert.equal((await second.store.getDevice('cafecafecafecafecafecafe'))?.online, false, 'no session survives a restart');
      assert.equal(second.generatedOwnerPassword, null, 'no second owner');
      assert.ok(await second.store.verifyPassword('owner', first.generatedOwnerPassword!));
      assert.equal((await second.store.getDevice('cafecafecafecafecafecafe'))?.productId, product.id);
      const c = await connect(second.ports.mqtt, { clientId: 'cafecafecafecafecafecafe', username: 'cafecafecafecafecafecafe', password: 's3cret' });
      c.end(true);
    } finally {
      await second.close();
    }
  });

  it('refuses a second bridge on a data directory another one holds, and takes over one a killed bridge left (its pid file names a process that is gone)', async () => {
    const first = await createBridge({ dataDir: dir, httpPort: null, mqttPort: 0, mqttsPort: null, logLevel: 'silent' });
    try {
      const second = createBridge({ dataDir: dir, httpPort: null, mqttPort: 0, mqttsPort: null, logLevel: 'silent' });
      await assert.rejects(second, (e: unknown) => startFailure(e, { dataDir: dir }) === `another bridge (pid ${process.pid}) uses the data directory ${dir}: stop it first, or remove ${join(dir, 'bridge.pid')} if no such bridge runs`);
      // Another process's: its pid file is the lock (before, two bridges ran on one file and disagreed: a deleted webhook kept firing from the other).
      await first.close();
      const holder = spawn(process.execPath, ['-e', `require('fs').writeFileSync(${JSON.stringify(join(dir, 'bridge.pid'))}, String(process.pid)); setTimeout(() => {}, 20000)`]);
      await new Promise((r) => setTimeout(r, 500));
      await assert.rejects(createBridge({ dataDir: dir, httpPort: null, mqttPort: 0, mqttsPort: null, logLevel: 'silent' }), new RegExp(`another bridge \\(pid ${holder.pid}\\)`));
      holder.kill('SIGKILL');
      await new Promise((r) => holder.once('exit', r));
    } finally {
      await first.close();
    }
    // A pid reused by a process that is no bridge (a shell's, after a container restart) is stale too.
    const shell = spawn('sleep', ['20']);
    await new Promise((r) => shell.once('spawn', r));
    writeFileSync(join(dir, 'bridge.pid'), String(shell.pid));
    const reused = await createBridge({ dataDir: dir, httpPort: null, mqttPort: 0, mqttsPort: null, logLevel: 'silent' });
    await reused.close();
    shell.kill('SIGKILL');
    // Its process gone (killed): the file is stale, and the next bridge takes the directory over.
    const next = await createBridge({ dataDir: dir, httpPort: null, mqttPort: 0, mqttsPort: null, logLevel: 'silent' });
    assert.equal(readFileSync(join(dir, 'bridge.pid'), 'utf8').trim(), String(process.pid));
    await next.close();
    assert.equal(existsSync(join(dir, 'bridge.pid')), false, 'released at close');
  });

  it('says in one line why it cannot use a database file (here not a database at all), where SQLite gives no path: no stack trace', async () => {
    const broken = mkdtempSync(join(tmpdir(), 'flotilla-notadb-'));
    try {
      writeFileSync(join(broken, 'flotilla.db'), Buffer.alloc(4096, 7));
      const e = await createBridge({ dataDir: broken, httpPort: null, mqttPort: 0, mqttsPort: null, logLevel: 'silent' }).then(
        () => assert.fail('started on a file that is no database'),
        (x: unknown) => x,
      );
      assert.match(startFailure(e, { dataDir: broken }) ?? '', /^cannot use the database in the data directory .*: SQLITE_NOTADB \(file is not a database\)$/);
      assert.equal(existsSync(join(broken, 'bridge.pid')), false, 'the directory is released');
    } finally {
      rmSync(broken, { recursive: true, force: true });
    }
  });

  it('makes secret files an older bridge left readable to others (the database, the TLS keys) its own again on start, and says so', async () => {
    const first = await createBridge({ dataDir: dir, httpPort: null, mqttPort: 0, mqttsPort: 0, logLevel: 'silent' });
    await first.close();
    const keys = readdirSync(join(dir, 'tls')).filter((f) => f.endsWith('.key'));
    assert.ok(keys.length >= 2, 'the CA and server keys: ' + keys.join(' '));
    const loose = [join(dir, 'flotilla.db'), ...keys.map((k) => join(dir, 'tls', k))];
    for (const f of loose) chmodSync(f, 0o644);
    chmodSync(join(dir, 'tls', 'server.crt'), 0o644);
    const lines: string[] = [];
    const second = await createBridge({ dataDir: dir, httpPort: null, mqttPort: 0, mqttsPort: 0, logLevel: 'warn', logOutput: { write: (l: string) => void lines.push(l) } });
    try {
      for (const f of loose) assert.equal(statSync(f).mode & 0o777, 0o600, f);
      assert.equal(statSync(join(dir, 'tls', 'server.crt')).mode & 0o777, 0o644, 'a certificate is public: left as it was');
      const warned = lines.map((l) => JSON.parse(l) as { file?: string; msg: string }).filter((l) => /readable by others/.test(l.msg)).map((l) => l.file);
      assert.deepEqual(warned.sort(), loose.sort());
    } finally {
      await second.close();
    }
  });

  it('creates the first owner only once it listens: a first start that fails (port in use) leaves none, the next one prints its password', async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (taken.address() as { port: number }).port;
      await assert.rejects(createBridge({ dataDir: dir, httpPort: port, mqttPort: 0, mqttsPort: null, logLevel: 'silent' }), { code: 'EADDRINUSE' });
    } finally {
      taken.close();
    }
    const b = await createBridge({ dataDir: dir, httpPort: null, mqttPort: 0, mqttsPort: null, logLevel: 'silent' });
    try {
      assert.ok(b.generatedOwnerPassword, 'the owner is created now, and its password given');
      assert.ok(await b.store.verifyPassword('owner', b.generatedOwnerPassword!));
    } finally {
      await b.close();
    }
  });

  it('runs as flotilla-bridge from flags and environment, and stops on SIGTERM', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [BIN, '--data-dir', dir, '--log-level', 'warn'], {
      env: { ...process.env, FLOTILLA_MQTT_PORT: String(port), FLOTILLA_MQTTS_PORT: 'off', FLOTILLA_HTTP_PORT: 'off', FLOTILLA_OWNER_USERNAME: 'root' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      for (let i = 0; i < 100 && !/First owner "root" created with password: \S+/.test(out); i++) await new Promise((r) => setTimeout(r, 100));
      assert.match(out, /First owner "root" created with password: \S+/);
      // It listens where the environment said.
      await assert.rejects(connect(port, { clientId: 'app-1', username: 'token', password: 'nope' }), /Bad username or password/);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, out);
  });

  it('serves HTTP with hardened timeouts: /healthz, and a JSON 404 for the rest', async () => {
    const b = await createBridge({ dataDir: dir, httpPort: 0, mqttPort: 0, mqttsPort: null, logLevel: 'silent' });
    try {
      const base = 'http://127.0.0.1:' + b.ports.http;
      const ok = await fetch(base + '/healthz');
      assert.equal(ok.status, 200);
      assert.deepEqual(await ok.json(), { ok: true });
      const missing = await fetch(base + '/v1/nothing');
      assert.equal(missing.status, 404);
      assert.deepEqual(await missing.json(), { ok: false, error: 'Not found', error_description: 'Not found' });
      // 17 KiB of headers: refused (431), as Node's CVE-2018-12122 fix intends.
      const big = await fetch(base + '/healthz', { headers: { 'x-big': 'x'.repeat(17 * 1024) } });
      assert.equal(big.status, 431);
      assert.deepEqual(await big.json(), { ok: false, error: 'The request line and headers are larger than 16 KB', error_description: 'The request line and headers are larger than 16 KB' });
      // A path past the cap is refused the same way.
      const long = await fetch(base + '/v1/devices/' + 'x'.repeat(17 * 1024));
      assert.deepEqual([long.status, await long.json()], [431, { ok: false, error: 'The request line and headers are larger than 16 KB', error_description: 'The request line and headers are larger than 16 KB' }]);
    } finally {
      await b.close();
    }
  });

  it('answers a client that sends its headers too slowly with 408 within a second of the bound, and one that never finishes its body too', async () => {
    const b = await createBridge({ dataDir: dir, httpPort: 0, mqttPort: 0, mqttsPort: null, logLevel: 'silent', http: { headersTimeoutMs: 1000, requestTimeoutMs: 2000 } });
    try {
      /** Sends `text` and nothing more; resolves with what came back and when the server closed, ms after sending. */
      const stall = (text: string) =>
        new Promise<{ reply: string; ms: number }>((resolve, reject) => {
          const s = createConnection(b.ports.http!, '127.0.0.1');
          const t0 = Date.now();
          let reply = '';
          const give = setTimeout(() => (s.destroy(), reject(new Error('still open after 10 s: ' + JSON.stringify(reply)))), 10_000);
          s.on('data', (d) => (reply += d));
          s.on('close', () => (clearTimeout(give), resolve({ reply, ms: Date.now() - t0 })));
          s.on('error', () => {});
          s.write(text);
        });
      // Headers begun, never ended; a body announced, never sent. Node's own check runs every 30 s unless told:
      // without connectionsCheckingInterval these would wait up to 31 s and 32 s.
      const headers = await stall('GET /healthz HTTP/1.1\r\nhost: x\r\n');
      assert.match(headers.reply, /^HTTP\/1.1 408 /);
      assert.ok(headers.reply.endsWith('\r\n\r\n{"ok":false,"error":"The request did not arrive in time","error_description":"The request did not arrive in time"}'), headers.reply);
      assert.ok(headers.ms >= 1000 && headers.ms < 1000 + 1000 + 1500, headers.ms + ' ms');
      const body = await stall('POST /v1/devices/events HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{');
      assert.match(body.reply, /408/);
      assert.ok(body.ms >= 2000 && body.ms < 2000 + 1000 + 1500, body.ms + ' ms');
      // Not HTTP at all: 400, in the API's error shape, and the connection closed.
      const garbage = await stall('HELLO THERE\r\n\r\n');
      assert.match(garbage.reply, /^HTTP\/1.1 400 Bad Request\r\n/);
      assert.ok(garbage.reply.endsWith('\r\n\r\n{"ok":false,"error":"Malformed HTTP request","error_description":"Malformed HTTP request"}'), garbage.reply);
      assert.match(garbage.reply, /\r\naccess-control-allow-origin: \*\r\n/i, 'a page may read it too');
      // What node:http answered itself with an empty body: no Host on HTTP/1.1, an Expect it cannot meet.
      const hostless = await stall('GET /healthz HTTP/1.1\r\nconnection: close\r\n\r\n');
      assert.match(hostless.reply, /^HTTP\/1.1 400 /);
      assert.ok(hostless.reply.endsWith('{"ok":false,"error":"A Host header is required (HTTP/1.1)","error_description":"A Host header is required (HTTP/1.1)"}'), hostless.reply);
      const expect = await stall('GET /healthz HTTP/1.1\r\nhost: x\r\nexpect: foo\r\n\r\n');
      assert.match(expect.reply, /^HTTP\/1.1 417 /);
      assert.ok(expect.reply.endsWith('{"ok":false,"error":"Expect foo is not supported","error_description":"Expect foo is not supported"}'), expect.reply);
      // HTTP/1.0 has no Host to require.
      assert.match((await stall('GET /healthz HTTP/1.0\r\n\r\n')).reply, /^HTTP\/1.1 200 /);
    } finally {
      await b.close();
    }
  });

  /** Runs flotilla-bridge with `args` until it exits by itself: its exit code and standard error. */
  async function run(args: string[]): Promise<{ code: number | null; err: string }> {
    const child = spawn(process.execPath, [BIN, '--data-dir', dir, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20000);
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    clearTimeout(timer);
    return { code, err };
  }

  /** A TCP connection to the bridge's HTTP port, once connected. */
  const openTcp = (port: number) =>
    new Promise<Socket>((resolve, reject) => {
      const s = createConnection(port, '127.0.0.1', () => resolve(s));
      s.once('error', reject);
    });

  it('holds at most http.maxConnections at once: a connection past it is closed unread and logged, once per 10 s with the count', async () => {
    const lines: string[] = [];
    const b = await createBridge({ dataDir: dir, httpPort: 0, mqttPort: 0, mqttsPort: null, logLevel: 'warn', logOutput: { write: (l: string) => void lines.push(l) }, http: { maxConnections: 2 } });
    const held: Socket[] = [];
    try {
      const open = () => openTcp(b.ports.http!);
      /** What the server answers to GET /healthz on `s`, or 'closed' when it closes the socket without a word. */
      const ask = (s: Socket) =>
        new Promise<string>((resolve) => {
          let reply = '';
          s.on('error', () => {});
          s.on('data', (d) => {
            reply += d.toString('latin1');
            if (reply.includes('\r\n\r\n')) resolve(reply.split('\r\n')[0]!);
          });
          s.once('close', () => resolve(reply ? reply.split('\r\n')[0]! : 'closed'));
          s.write('GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n');
        });
      held.push(await open(), await open());
      assert.deepEqual(await Promise.all(held.map(ask)), ['HTTP/1.1 200 OK', 'HTTP/1.1 200 OK'], 'both kept alive');
      for (let i = 0; i < 3; i++) assert.equal(await ask(await open()), 'closed');
      const refused = lines.map((l) => JSON.parse(l) as { msg: string; refused: number }).filter((l) => l.msg === 'http: connections refused: the API holds its maximum');
      assert.deepEqual(refused.map((l) => l.refused), [1], lines.join('\n'));
      // A place comes back when a connection closes.
      held.shift()!.destroy();
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(await ask(await open()), 'HTTP/1.1 200 OK');
    } finally {
      for (const s of held) s.destroy();
      await b.close();
    }
  });

  it('keeps one address to its share of the connections (http.maxConnectionsPerAddress), and closes a connection on which nothing moves (a client that never reads its answers)', async () => {
    const b = await createBridge({ dataDir: dir, httpPort: 0, mqttPort: 0, mqttsPort: null, logLevel: 'silent', http: { maxConnections: 10, maxConnectionsPerAddress: 2, stalledMs: 1000 } });
    const held: Socket[] = [];
    try {
      const open = async () => {
        const s = await openTcp(b.ports.http!);
        held.push(s);
        return s;
      };
      const closedWithin = (s: Socket, ms: number) =>
        new Promise<boolean>((resolve) => {
          if (s.destroyed) return resolve(true);
          const t = setTimeout(() => resolve(false), ms);
          s.once('close', () => (clearTimeout(t), resolve(true)));
        });
      const a = await open();
      const c = await open();
      const third = await open();
      third.on('error', () => {});
      assert.equal(await closedWithin(third, 1000), true, 'past the share of 127.0.0.1: closed unread');
      // Pipelined requests whose answers are never read: nothing moves, and the connection goes after stalledMs.
      a.pause();
      a.on('error', () => {});
      a.write('GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n'.repeat(40000));
      // The bridge closes it after stalledMs (1 s); the client, not reading, sees it once it reads again.
      await new Promise((r) => setTimeout(r, 3000));
      a.resume();
      assert.equal(await closedWithin(a, 5000), true, 'a stalled connection is closed');
      // Its place in the address's share came back; the other connection, idle, was kept.
      const again = await open();
      assert.equal(await closedWithin(again, 300), false, 'a place came back');
      assert.equal(c.destroyed, false);
    } finally {
      for (const s of held) s.destroy();
      await b.close();
    }
  });

  it('closes a connection it answered 408 even when the client never closes its side, so its place comes back', async () => {
    const b = await createBridge({ dataDir: dir, httpPort: 0, mqttPort: 0, mqttsPort: null, logLevel: 'silent', http: { maxConnections: 2, headersTimeoutMs: 1000, requestTimeoutMs: 2000 } });
    const held: Socket[] = [];
    try {
      /** A socket that sends nothing and keeps its side open after the server's FIN; resolves with what it was sent. */
      const silent = () =>
        new Promise<string>((resolve) => {
          const s = createConnection({ port: b.ports.http!, host: '127.0.0.1', allowHalfOpen: true });
          held.push(s);
          let got = '';
          s.on('error', () => {});
          s.on('data', (d) => (got += d.toString('latin1')));
          s.once('end', () => resolve(got.split('\r\n')[0]!));
        });
      assert.deepEqual(await Promise.all([silent(), silent()]), ['HTTP/1.1 408 Request Timeout', 'HTTP/1.1 408 Request Timeout']);
      const status = async () => {
        for (let i = 0; i < 40; i++) {
          const r = await fetch(`http://127.0.0.1:${b.ports.http}/healthz`).then((x) => x.status, () => 0);
          if (r) return r;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        return 0;
      };
      assert.equal(await status(), 200, 'a place came back');
    } finally {
      for (const s of held) s.destroy();
      await b.close();
    }
  });

  it('says what is wrong with an unknown flag or a missing value, without a stack trace (exit 2)', async () => {
    for (const [args, message] of [[['--bogus'], "Unknown option '--bogus'"], [['--http-port'], "Option '--http-port <value>' argument missing"]] as const) {
      const { code, err } = await run([...args]);
      assert.equal(code, 2);
      assert.equal(err, `flotilla-bridge: ${message}\n(flotilla-bridge --help lists the options)\n`);
    }
  });

  it('says which address is in use when a port is taken (exit 1), without a stack trace', async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (taken.address() as { port: number }).port;
      const { code, err } = await run(['--mqtt-port', String(port), '--mqtts-port', 'off', '--http-port', 'off', '--log-level', 'silent']);
      assert.equal(code, 1);
      assert.match(err, new RegExp(`^flotilla-bridge: cannot listen on 127\\.0\\.0\\.1:${port}: the address is in use`));
      assert.doesNotMatch(err, /\n\s+at /);
    } finally {
      taken.close();
    }
  });

  it('says what is wrong, in one line and without a stack trace (exit 1), when a TLS file is missing or not PEM, or the data directory is a file', async () => {
    const notPem = join(dir, 'not.pem');
    writeFileSync(notPem, 'not a certificate');
    const file = join(dir, 'a-file');
    writeFileSync(file, 'x');
    const cases: [string[], RegExp][] = [
      [['--tls-cert', join(dir, 'none.crt'), '--tls-key', join(dir, 'none.key')], /^flotilla-bridge: cannot read the TLS (certificate \(--tls-cert\) .*none\.crt|key \(--tls-key\) .*none\.key): ENOENT$/m],
      [['--tls-cert', notPem, '--tls-key', notPem], /^flotilla-bridge: the TLS certificate or key \(--tls-cert, --tls-key\) is not a PEM certificate and its private key: /m],
      [['--data-dir', file, '--mqtts-port', 'off'], /^flotilla-bridge: cannot use the data directory .*a-file: E[A-Z]+ on /m],
    ];
    for (const [args, message] of cases) {
      const { code, err } = await run([...args, '--mqtt-port', '0', '--http-port', 'off', '--log-level', 'silent']);
      assert.equal(code, 1, args.join(' ') + ': ' + err);
      assert.match(err, message);
      assert.doesNotMatch(err, /\n\s+at /, args.join(' '));
    }
  });

  it('stops, closing cleanly, when its standard output is closed (flotilla-bridge | head)', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [BIN, '--data-dir', dir, '--mqtt-port', String(port), '--mqtts-port', 'off', '--http-port', 'off'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const timer = setTimeout(() => child.kill('SIGKILL'), 20000);
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    for (let i = 0; i < 100 && !out.includes('flotilla-bridge is running'); i++) await new Promise((r) => setTimeout(r, 100));
    // The reader goes away; the next log line (a refused connection) finds the pipe closed.
    child.stdout.destroy();
    await assert.rejects(connect(port, { clientId: 'app-1', username: 'token', password: 'nope' }));
    assert.equal(await exited, 0);
    clearTimeout(timer);
  });

  it('refuses a bad port with a clear message', async () => {
    const child = spawn(process.execPath, [BIN, '--data-dir', dir, '--mqtt-port', 'eighty', '--mqtts-port', 'off', '--http-port', 'off'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 2);
    assert.match(err, /the MQTT port must be a port number \(0 to 65535\), not "eighty"/);
  });
});
