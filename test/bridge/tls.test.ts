/**
 * MQTT over TLS with device certificates, and MQTT over WebSocket, against a
 * real bridge on loopback with real mqtt.js clients. Certificates are issued
 * by the bridge's CA repository (node-forge) and verified by Node's TLS; each
 * bad certificate (wrong CN, another product's CA, an unknown CA, expired,
 * revoked) is refused at CONNECT and the broker goes on serving everyone else.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tcp, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { IClientOptions, MqttClient } from 'mqtt';
import WebSocket from 'ws';
import { encode } from '@flotilla/protocol';
import { createBridge, defaultOptions, type Bridge } from '@flotilla/bridge';
import { openCa, type IssuedCertificate } from '../../bridge/src/identity/ca.js';
import { closed, connectTo } from '../helpers/bridge-fixture.js';

const A1 = 'a1a1a1a1a1a1a1a1a1a1a1a1';
const A2 = 'a2a2a2a2a2a2a2a2a2a2a2a2';
const A3 = 'a3a3a3a3a3a3a3a3a3a3a3a3'; // no secret: a certificate is its only way in
const B1 = 'b1b1b1b1b1b1b1b1b1b1b1b1';
const SECRET: Record<string, string> = { [A1]: 'secret-a1', [A2]: 'secret-a2', [B1]: 'secret-b1' };
const DAY = 86400000;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
/** A CONNECT's fixed header claiming 268,435,455 bytes: the largest length MQTT can express. */
const HUGE = Buffer.from([0x10, 0xff, 0xff, 0xff, 0x7f]);

describe('bridge over TLS and WebSocket', function () {
  this.timeout(30000);
  let dir: string;
  let bridge: Bridge;
  let bridgeCa: string;
  let products: { A: string; B: string };
  const clients: MqttClient[] = [];
  const hello = () =>
    Buffer.from(encode('hello', {
      agent: '0.1.0', firmware: 1, product: Number(products.A), variables: [], functions: [], subscriptions: [],
      bootReason: 'power_down', ota: { slot: 0, trial: false, rolledBackFrom: null },
    }));

  /** An mqtt.js client, closed after the test; rejects with the refusal (its `code` is the CONNACK return code). */
  async function open(url: string, opts: IClientOptions): Promise<MqttClient> {
    const c = await connectTo(url, opts);
    clients.push(c);
    return c;
  }
  const mqtts = (clientId: string, cert: IssuedCertificate | null, extra: IClientOptions = {}) =>
    open(`mqtts://127.0.0.1:${bridge.ports.mqtts}`, {
      clientId, ca: bridgeCa, rejectUnauthorized: true, ...(cert ? { cert: cert.certPem, key: cert.keyPem } : {}), ...extra,
    });
  const secret = (id: string) => ({ username: id, password: SECRET[id] });

  async function refused(p: Promise<MqttClient>, code: number): Promise<void> {
    await assert.rejects(p, (e: Error & { code?: number }) => {
      assert.equal(e.code, code, e.message);
      return true;
    });
  }
  /** A device with a good certificate still gets in and has its hello acknowledged. */
  async function stillServing(): Promise<void> {
    const c = await mqtts(A2, await bridge.identity.issueDeviceCert(A2, products.A));
    await c.publishAsync(`dev/${A2}/hello`, hello(), { qos: 1 });
    c.end(true);
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flotilla-tls-'));
    bridge = await createBridge({ dataDir: dir, mqttPort: 0, mqttsPort: 0, wsPort: 0, wssPort: 0, logLevel: 'silent', ownerPassword: 'owner-password' });
    const s = bridge.store;
    const alice = (await s.createUser('alice', 'alice-password')).id;
    const bob = (await s.createUser('bob', 'bob-password')).id;
    products = {
      A: String((await s.createProduct({ name: 'A', slug: 'prod-a', ownerUserId: alice })).id),
      B: String((await s.createProduct({ name: 'B', slug: 'prod-b', ownerUserId: bob })).id),
    };
    for (const [id, product] of [[A1, products.A], [A2, products.A], [A3, products.A], [B1, products.B]] as const) {
      await s.createDevice({ id, productId: product });
      if (SECRET[id]) await s.setDeviceSecret(id, SECRET[id]);
    }
    bridgeCa = readFileSync(join(dir, 'tls', 'bridge-ca.crt'), 'utf8');
  });

  afterEach(() => {
    for (const c of clients.splice(0)) c.end(true);
  });

  after(async () => {
    await bridge?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('certificates', () => {
    it('issues device certificates as specified, and keeps CA keys private on disk', async () => {
      const cert = await bridge.identity.issueDeviceCert(A1, products.A, { days: 30 });
      const { X509Certificate, createHash } = await import('node:crypto');
      const x = new X509Certificate(cert.certPem);
      assert.equal(x.subject, `CN=${A1}\nO=${products.A}`);
      assert.match(x.issuer, new RegExp(`O=${products.A}`));
      assert.equal(cert.fingerprint, createHash('sha256').update(x.raw).digest('hex'));
      assert.deepEqual(x.keyUsage, ['1.3.6.1.5.5.7.3.2'], 'extKeyUsage clientAuth');
      assert.equal(Math.round((Date.parse(x.validTo) - Date.parse(x.validFrom)) / DAY), 30);
      assert.ok(x.checkIssued(new X509Certificate((await bridge.identity.productCa(products.A)).certPem)));
      const other = await bridge.identity.issueDeviceCert(A1, products.A);
      assert.notEqual(other.fingerprint, cert.fingerprint);
      assert.notEqual(new X509Certificate(other.certPem).serialNumber, x.serialNumber, 'random serials');
      assert.equal(Math.round((Date.parse(new X509Certificate(other.certPem).validTo) - Date.now()) / DAY), 365, 'a year by default');
      for (const key of ['bridge-ca.key', 'server.key', `products/${products.A}/ca.key`])
        assert.equal(statSync(join(dir, 'tls', key)).mode & 0o777, 0o600, key);
      await assert.rejects(bridge.identity.issueDeviceCert('not-a-device', products.A), /not a device id/);
      await assert.rejects(bridge.identity.productCa('../etc'), /not a product id/);
    });

    it('serves a certificate from the bridge CA, which clients pin', async () => {
      const foreign = await openCa(mkdtempSync(join(tmpdir(), 'flotilla-foreign-')));
      const otherRoot = (await foreign.serverContext()).bridgeCaPem!;
      await assert.rejects(mqtts(A1, null, { ca: otherRoot, ...secret(A1) }), /self-signed|unable to verify|certificate/i);
      rmSync(foreign.dir, { recursive: true, force: true });
      // Pinned to the right CA, the name checks too (the certificate names 127.0.0.1 and localhost).
      const c = await open(`mqtts://localhost:${bridge.ports.mqtts}`, { clientId: A1, ca: bridgeCa, rejectUnauthorized: true, ...secret(A1) });
      c.end(true);
    });
  });

  describe('mutual TLS', () => {
    it('a device with a valid certificate connects without a password (client id = CN) and its hello is acknowledged', async () => {
      const c = await mqtts(A1, await bridge.identity.issueDeviceCert(A1, products.A));
      await c.publishAsync(`dev/${A1}/hello`, hello(), { qos: 1 });
      assert.equal((await bridge.store.getDevice(A1))?.firmwareVersion, 1, 'the acknowledged hello is stored');
      c.end(true);
    });

    it('a device without a secret connects with its certificate alone, username optional but must be its id', async () => {
      const cert = await bridge.identity.issueDeviceCert(A3, products.A);
      (await mqtts(A3, cert, { username: A3 })).end(true);
      await refused(mqtts(A3, cert, { username: 'someone-else' }), 4);
      await refused(mqtts(A3, null, { username: A3, password: 'anything' }), 4);
      await stillServing();
    });

    it('refuses a certificate whose CN is not the client id', async () => {
      const cert = await bridge.identity.issueDeviceCert(A2, products.A);
      await refused(mqtts(A1, cert), 4);
      // Not even with the right secret of the client id beside it: a presented certificate decides.
      await refused(mqtts(A1, cert, secret(A1)), 4);
      await stillServing();
    });

    it('refuses a certificate from another product\'s CA for a device of product A', async () => {
      await refused(mqtts(A1, await bridge.identity.issueDeviceCert(A1, products.B)), 5);
      // And the other way round.
      await refused(mqtts(B1, await bridge.identity.issueDeviceCert(B1, products.A)), 5);
      await stillServing();
    });

    it('refuses a certificate of a device that does not exist', async () => {
      await refused(mqtts('cccccccccccccccccccccccc', await bridge.identity.issueDeviceCert('cccccccccccccccccccccccc', products.A)), 5);
      await stillServing();
    });

    it('refuses certificates signed by an unknown CA, even one with the same names', async () => {
      const otherDir = mkdtempSync(join(tmpdir(), 'flotilla-foreign-'));
      try {
        const foreign = await openCa(otherDir);
        // Same product id, so the same issuer name as the real product CA: only the signature differs.
        await refused(mqtts(A1, await foreign.issueDeviceCert(A1, products.A)), 4);
        await refused(mqtts(A1, await foreign.issueDeviceCert(A1, 'elsewhere')), 4);
        await stillServing();
      } finally {
        rmSync(otherDir, { recursive: true, force: true });
      }
    });

    it('refuses an expired certificate and one not yet valid', async () => {
      const expired = await bridge.identity.issueDeviceCert(A1, products.A, { notBefore: new Date(Date.now() - 400 * DAY), days: 30 });
      await refused(mqtts(A1, expired), 4);
      const early = await bridge.identity.issueDeviceCert(A1, products.A, { notBefore: new Date(Date.now() + 10 * DAY), days: 30 });
      await refused(mqtts(A1, early), 4);
      await stillServing();
    });

    it('revoking a certificate ends its live session, refuses it from then on, and is kept on disk', async () => {
      const cert = await bridge.identity.issueDeviceCert(A1, products.A);
      const c = await mqtts(A1, cert);
      const gone = closed(c);
      assert.equal(await bridge.identity.revoke(cert.fingerprint.toUpperCase()), true);
      assert.equal(await bridge.identity.revoke(cert.fingerprint), false, 'already revoked');
      await gone;
      await refused(mqtts(A1, cert), 4);
      // Another certificate of the same device is not affected.
      (await mqtts(A1, await bridge.identity.issueDeviceCert(A1, products.A))).end(true);
      const reopened = await openCa(join(dir, 'tls'));
      assert.equal(reopened.isRevoked(cert.fingerprint), true);
      await stillServing();
    });

    it('without a certificate, the device secret works over TLS and a wrong one is refused', async () => {
      const c = await mqtts(A1, null, secret(A1));
      await c.publishAsync(`dev/${A1}/hello`, hello(), { qos: 1 });
      await refused(mqtts(A2, null, { username: A2, password: 'wrong' }), 4);
      await refused(mqtts(A2, null, { username: A2 }), 4);
      assert.ok(c.connected, 'the first device is still connected');
      c.end(true);
      await stillServing();
    });

    it('trusts a product CA made after the listener started', async () => {
      const s = bridge.store;
      const carol = (await s.createUser('carol', 'carol-password')).id;
      const C = String((await s.createProduct({ name: 'C', slug: 'prod-c', ownerUserId: carol })).id);
      const C1 = 'c1c1c1c1c1c1c1c1c1c1c1c1';
      await s.createDevice({ id: C1, productId: C });
      (await mqtts(C1, await bridge.identity.issueDeviceCert(C1, C))).end(true);
    });

    it('the frame guard applies over TLS: a 268 MB claimed length closes the link', async () => {
      const result = await new Promise<{ closed: boolean; received: number }>((resolve) => {
        const s = tlsConnect({ host: '127.0.0.1', port: bridge.ports.mqtts!, ca: bridgeCa });
        let received = 0;
        s.on('data', (d) => (received += d.length));
        s.on('error', () => {});
        const t = setTimeout(() => {
          s.destroy();
          resolve({ closed: false, received });
        }, 3000);
        s.once('close', () => {
          clearTimeout(t);
          resolve({ closed: true, received });
        });
        s.once('secureConnect', () => s.write(HUGE));
      });
      assert.deepEqual(result, { closed: true, received: 0 });
      await stillServing();
    });
  });

  describe('WebSocket', () => {
    it('a device connects over ws with its secret and publishes', async () => {
      const c = await open(`ws://127.0.0.1:${bridge.ports.ws}/mqtt`, { clientId: A1, ...secret(A1) });
      await c.publishAsync(`dev/${A1}/hello`, hello(), { qos: 1 });
      await refused(open(`ws://127.0.0.1:${bridge.ports.ws}/mqtt`, { clientId: A2, username: A2, password: 'wrong' }), 4);
      assert.ok(c.connected);
      c.end(true);
    });

    it('a device connects over wss with its certificate, and a bad certificate is refused there too', async () => {
      const url = `wss://127.0.0.1:${bridge.ports.wss}/mqtt`;
      const c = await open(url, { clientId: A1, ca: bridgeCa, rejectUnauthorized: true, ...pair(await bridge.identity.issueDeviceCert(A1, products.A)) });
      await c.publishAsync(`dev/${A1}/hello`, hello(), { qos: 1 });
      c.end(true);
      const expired = await bridge.identity.issueDeviceCert(A1, products.A, { notBefore: new Date(Date.now() - 400 * DAY), days: 30 });
      await refused(open(url, { clientId: A1, ca: bridgeCa, ...pair(expired) }), 4);
      await refused(open(url, { clientId: A1, ca: bridgeCa, ...pair(await bridge.identity.issueDeviceCert(A1, products.B)) }), 5);
      (await open(url, { clientId: A2, ca: bridgeCa, ...secret(A2) })).end(true);
    });

    it('only /mqtt upgrades; other paths are refused', async () => {
      const status = await new Promise<number>((resolve) => {
        const ws = new WebSocket(`ws://127.0.0.1:${bridge.ports.ws}/other`, ['mqtt']);
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('error', () => resolve(-1));
      });
      assert.equal(status, 400);
    });

    it('the frame guard applies over WebSocket: a 268 MB claimed length closes the link', async () => {
      const result = await new Promise<{ closed: boolean; received: number }>((resolve) => {
        const ws = new WebSocket(`ws://127.0.0.1:${bridge.ports.ws}/mqtt`, ['mqtt']);
        let received = 0;
        ws.on('message', (d: Buffer) => (received += d.length));
        ws.on('error', () => {});
        const t = setTimeout(() => {
          ws.terminate();
          resolve({ closed: false, received });
        }, 3000);
        ws.once('close', () => {
          clearTimeout(t);
          resolve({ closed: true, received });
        });
        ws.once('open', () => {
          assert.equal(ws.protocol, 'mqtt');
          ws.send(HUGE);
        });
      });
      assert.deepEqual(result, { closed: true, received: 0 });
      const c = await open(`ws://127.0.0.1:${bridge.ports.ws}/mqtt`, { clientId: A2, ...secret(A2) });
      c.end(true);
    });

    it('a WebSocket message larger than the packet limit closes the link', async () => {
      const closedCode = await new Promise<number>((resolve) => {
        const ws = new WebSocket(`ws://127.0.0.1:${bridge.ports.ws}/mqtt`, ['mqtt']);
        ws.on('error', () => {});
        ws.once('close', (code) => resolve(code));
        ws.once('open', () => ws.send(Buffer.alloc(4 * 1024 * 1024)));
      });
      assert.ok(closedCode === 1009 || closedCode === 1006, 'closed with ' + closedCode);
    });
  });

  describe('admission', () => {
    it('counts a TLS or WebSocket connection against the limits as it arrives: past them no handshake is done', async () => {
      const small = mkdtempSync(join(tmpdir(), 'flotilla-tls-admit-'));
      const b = await createBridge({
        dataDir: small, httpPort: null, mqttPort: 0, mqttsPort: 0, wsPort: 0, wssPort: 0, logLevel: 'silent',
        mqtt: { ...defaultOptions.mqtt, admission: { maxConnections: 2, maxPendingPerAddress: 10 } },
      });
      const held: Socket[] = [];
      try {
        const ca = readFileSync(join(small, 'tls', 'bridge-ca.crt'), 'utf8');
        /** 'handshaken' when the TLS handshake completes within a second, else 'closed' (the bridge closed it first) or 'waiting'. */
        const handshake = (port: number) =>
          new Promise<string>((resolve) => {
            const s = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost', rejectUnauthorized: false });
            const t = setTimeout(() => (s.destroy(), resolve('waiting')), 1000);
            s.on('error', () => {});
            s.once('secureConnect', () => (clearTimeout(t), s.destroy(), resolve('handshaken')));
            s.once('close', () => (clearTimeout(t), resolve('closed')));
          });
        const upgrade = (url: string) =>
          new Promise<string>((resolve) => {
            const ws = new WebSocket(url, ['mqtt'], { ca, rejectUnauthorized: false });
            ws.on('error', () => {});
            ws.once('open', () => (ws.terminate(), resolve('open')));
            ws.once('close', () => resolve('closed'));
          });
        const idle = (port: number) =>
          new Promise<Socket>((resolve, reject) => {
            const s = tcp({ host: '127.0.0.1', port }, () => resolve(s));
            s.once('error', reject);
          });
        // Under the limit a handshake is done, so the test's probes work.
        assert.equal(await handshake(b.ports.mqtts!), 'handshaken');
        // Two TCP connections that never start a handshake, one on each TLS port, take both places.
        held.push(await idle(b.ports.mqtts!), await idle(b.ports.wss!));
        await sleep(50);
        assert.equal(await handshake(b.ports.mqtts!), 'closed');
        assert.equal(await handshake(b.ports.wss!), 'closed');
        assert.equal(await upgrade(`ws://127.0.0.1:${b.ports.ws}/mqtt`), 'closed');
        assert.ok(held.every((s) => !s.destroyed), 'the admitted ones stay');
        // Their places come back when they close.
        for (const s of held.splice(0)) s.destroy();
        await sleep(100);
        assert.equal(await upgrade(`wss://127.0.0.1:${b.ports.wss}/mqtt`), 'open');
        assert.equal(await handshake(b.ports.mqtts!), 'handshaken');
      } finally {
        for (const s of held) s.destroy();
        await b.close();
        rmSync(small, { recursive: true, force: true });
      }
    });
  });

  describe('handshake timeout', () => {
    it('closes a connection to mqtts that never finishes its TLS handshake, and its place comes back', async () => {
      const small = mkdtempSync(join(tmpdir(), 'flotilla-tls-idle-'));
      const b = await createBridge({
        dataDir: small, httpPort: null, mqttPort: 0, mqttsPort: 0, wsPort: null, wssPort: null, logLevel: 'silent',
        mqtt: { ...defaultOptions.mqtt, connectTimeoutMs: 500, admission: { maxConnections: 1, maxPendingPerAddress: 10 } },
      });
      try {
        // Silent, then half a ClientHello: each must be closed by the bridge (bounded wait, 5 s).
        for (const bytes of [Buffer.alloc(0), Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])]) {
          const closedByBridge = await new Promise<boolean>((resolve) => {
            const s = tcp({ host: '127.0.0.1', port: b.ports.mqtts! }, () => bytes.length && s.write(bytes));
            const t = setTimeout(() => (s.destroy(), resolve(false)), 5000);
            s.on('error', () => {});
            s.once('close', () => (clearTimeout(t), resolve(true)));
            s.resume();
          });
          assert.equal(closedByBridge, true);
        }
        await sleep(50);
        const ca = readFileSync(join(small, 'tls', 'bridge-ca.crt'), 'utf8');
        const c = await connectTo(`mqtts://127.0.0.1:${b.ports.mqtts}`, { clientId: 'x'.repeat(24), ca, rejectUnauthorized: true, username: 'nobody', password: 'wrong' }).catch((e: Error & { code?: number }) => e.code);
        assert.equal(c, 4, 'the one place is free: the handshake is done and CONNECT answered (bad credentials)');
      } finally {
        await b.close();
        rmSync(small, { recursive: true, force: true });
      }
    });

    it('closes a connection to ws or wss that never finishes its handshake or its upgrade request, at the connect timeout', async () => {
      const small = mkdtempSync(join(tmpdir(), 'flotilla-ws-idle-'));
      const b = await createBridge({
        dataDir: small, httpPort: null, mqttPort: 0, mqttsPort: null, wsPort: 0, wssPort: 0, logLevel: 'silent',
        mqtt: { ...defaultOptions.mqtt, connectTimeoutMs: 500, admission: { maxConnections: 1, maxPendingPerAddress: 10 } },
      });
      try {
        const ca = readFileSync(join(small, 'tls', 'bridge-ca.crt'), 'utf8');
        /** Whether the bridge closes the connection within 5 s (bounded wait). */
        const closedByBridge = (connect: () => Socket) =>
          new Promise<boolean>((resolve) => {
            const s = connect();
            const t = setTimeout(() => (s.destroy(), resolve(false)), 5000);
            s.on('error', () => {});
            s.once('close', () => (clearTimeout(t), resolve(true)));
            s.resume();
          });
        const partialUpgrade = 'GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n';
        const cases: [string, () => Socket][] = [
          ['ws, silent', () => tcp({ host: '127.0.0.1', port: b.ports.ws! })],
          ['ws, half an upgrade request', () => { const s: Socket = tcp({ host: '127.0.0.1', port: b.ports.ws! }, () => s.write(partialUpgrade)); return s; }],
          ['wss, silent', () => tcp({ host: '127.0.0.1', port: b.ports.wss! })],
          ['wss, half a ClientHello', () => { const s: Socket = tcp({ host: '127.0.0.1', port: b.ports.wss! }, () => s.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]))); return s; }],
          ['wss, handshaken, half an upgrade request', () => { const s = tlsConnect({ host: '127.0.0.1', port: b.ports.wss!, ca, servername: 'localhost', rejectUnauthorized: false }, () => s.write(partialUpgrade)); return s; }],
        ];
        for (const [name, connect] of cases) assert.equal(await closedByBridge(connect), true, name);
        await sleep(50);
        const c = await open(`ws://127.0.0.1:${b.ports.ws}/mqtt`, { clientId: A1, username: A1, password: 'wrong' }).catch((e: Error & { code?: number }) => e.code);
        assert.equal(c, 4, 'the one place is free: the upgrade is done and CONNECT answered (bad credentials)');
      } finally {
        await b.close();
        rmSync(small, { recursive: true, force: true });
      }
    });
  });

  describe('restart', () => {
    it('keeps the bridge CA, the server certificate and the product CAs across a restart', async () => {
      const cert = await bridge.identity.issueDeviceCert(A1, products.A);
      const serverCert = readFileSync(join(dir, 'tls', 'server.crt'), 'utf8');
      const productCa = (await bridge.identity.productCa(products.A)).fingerprint;
      await bridge.close();
      bridge = await createBridge({ dataDir: dir, mqttPort: 0, mqttsPort: 0, wsPort: null, logLevel: 'silent' });
      assert.equal(readFileSync(join(dir, 'tls', 'bridge-ca.crt'), 'utf8'), bridgeCa);
      assert.equal(readFileSync(join(dir, 'tls', 'server.crt'), 'utf8'), serverCert);
      assert.equal((await bridge.identity.productCa(products.A)).fingerprint, productCa);
      assert.equal(bridge.ports.ws, null, 'ws off');
      const c = await mqtts(A1, cert);
      await c.publishAsync(`dev/${A1}/hello`, hello(), { qos: 1 });
      c.end(true);
    });
  });
});

const pair = (c: IssuedCertificate) => ({ cert: c.certPem, key: c.keyPem });
