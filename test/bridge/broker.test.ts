/**
 * The bridge's broker, attacked through real sockets on loopback: identities,
 * what devices and operator apps may publish and subscribe to, and hostile
 * input. Each refusal must deliver nothing across a device or product
 * boundary and leave the broker serving everyone else.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect as tcp, type Socket } from 'node:net';
import type { MqttClient } from 'mqtt';
import mqttPacket from 'mqtt-packet';
import { decode, encode, LIMITS, topics } from '@flotilla/protocol';
import type { ConnectFailureLimits } from '../../bridge/src/mqtt/authenticate.js';
import { A1, A2, B1, app, closed, connect, device, SECRET, startFixture, type Fixture } from '../helpers/bridge-fixture.js';

const hello = (firmware = 3) =>
  Buffer.from(encode('hello', {
    agent: '0.1.0', firmware, product: 1, variables: [{ name: 'temp', type: 'double' }], functions: ['led'], subscriptions: [],
    bootReason: 'power_down', ota: { slot: 0, trial: false, rolledBackFrom: null },
  }));
const event = (data: string) => Buffer.from(encode('event', { data, ttl: 60 }));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Messages a client receives, decoded. */
function inbox(c: MqttClient): { topic: string; msg: ReturnType<typeof decode> }[] {
  const got: { topic: string; msg: ReturnType<typeof decode> }[] = [];
  c.on('message', (topic, payload) => got.push({ topic, msg: decode(payload) }));
  return got;
}

/** Raw bytes to the broker: resolves with what came back once the socket closed (or after `ms`). */
function raw(port: number, bytes: Uint8Array[], ms = 2000): Promise<{ closed: boolean; received: Buffer }> {
  return new Promise((resolve) => {
    const s: Socket = tcp({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    s.on('data', (d) => chunks.push(d));
    s.on('error', () => {});
    const t = setTimeout(() => {
      s.destroy();
      resolve({ closed: false, received: Buffer.concat(chunks) });
    }, ms);
    s.once('close', () => {
      clearTimeout(t);
      resolve({ closed: true, received: Buffer.concat(chunks) });
    });
    s.once('connect', () => {
      for (const b of bytes) s.write(b);
    });
  });
}

/** The QoS the broker granted one filter (128: refused). mqtt.js rejects on 128; the SUBACK is on the error. */
async function grant(c: MqttClient, filter: string): Promise<number> {
  try {
    return (await c.subscribeAsync(filter, { qos: 1 }))[0].qos;
  } catch (e) {
    const granted = (e as { packet?: { granted?: number[] } }).packet?.granted;
    if (granted) return granted[0];
    throw e;
  }
}

/** The CONNACK return code a CONNECT gets over a socket bound to `localAddress` (another loopback address). */
function connackFrom(localAddress: string, port: number, connectPacket: Uint8Array): Promise<number> {
  return new Promise((resolve, reject) => {
    const s: Socket = tcp({ host: '127.0.0.1', port, localAddress });
    const t = setTimeout(() => (s.destroy(), reject(new Error('no CONNACK'))), 5000);
    let got = Buffer.alloc(0);
    s.on('error', reject);
    s.on('data', (d) => {
      got = Buffer.concat([got, d]);
      if (got.length < 4) return;
      clearTimeout(t);
      s.destroy();
      if (got[0] !== 0x20) reject(new Error('not a CONNACK: ' + got.toString('hex')));
      else resolve(got[3]!);
    });
    s.once('connect', () => s.write(connectPacket));
  });
}

/** The fields of an audit entry a test compares. */
const pick = (e: { action: string; allowed: boolean; status: number; resourceKind: string } | undefined) =>
  e && { action: e.action, allowed: e.allowed, status: e.status, resourceKind: e.resourceKind };

const packet = (p: object) => mqttPacket.generate(p as never);
const CONNECT = (clientId: string, username?: string, password?: string) =>
  packet({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 30, clientId, username, password: password ? Buffer.from(password) : undefined });

/** A bridge with these CONNECT lock-out limits, counting the device secrets it hashes (`calls.verify`). */
async function lockoutFixture(connectFailures: ConnectFailureLimits): Promise<{ g: Fixture; calls: { verify: number } }> {
  const g = await startFixture({ mqtt: { ...(await import('@flotilla/bridge')).defaultOptions.mqtt, connectFailures } });
  const calls = { verify: 0 };
  const verify = g.bridge.store.verifyDeviceSecret.bind(g.bridge.store);
  g.bridge.store.verifyDeviceSecret = (id, secret) => (calls.verify++, verify(id, secret));
  return { g, calls };
}

describe('bridge broker', function () {
  this.timeout(20000);
  let f: Fixture;
  const clients: MqttClient[] = [];
  const track = (c: MqttClient) => (clients.push(c), c);
  /** The broker still serves: a device connects, publishes at QoS 1 and gets its PUBACK. */
  async function serving(): Promise<void> {
    const c = track(await device(f.port, A2));
    await c.publishAsync(topics.device.vitals(A2), Buffer.from(encode('vitals', { values: { 'device.system.uptime': 1 } })), { qos: 1 });
    c.end(true);
  }

  before(async () => {
    f = await startFixture();
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.end(true);
  });
  after(async () => {
    await f.close();
  });

  describe('identities', () => {
    it('lets a device in with its secret, and refuses a wrong secret, a foreign username or an unknown device', async () => {
      track(await device(f.port, A1));
      await assert.rejects(device(f.port, A1, { password: 'wrong' }), /Bad username or password/);
      await assert.rejects(device(f.port, A1, { username: A2, password: 'secret-a2' }), /Bad username or password/);
      await assert.rejects(device(f.port, A1, { clientId: 'cccccccccccccccccccccccc', username: 'cccccccccccccccccccccccc' }), /Bad username or password/);
      await serving();
    });

    it('never lets one device take over another\'s client id', async () => {
      const a1 = track(await device(f.port, A1));
      // a2's own credentials, a1's client id: refused, and a1 keeps its session.
      await assert.rejects(device(f.port, A2, { clientId: A1 }), /Bad username or password/);
      await a1.publishAsync(topics.device.hello(A1), hello(), { qos: 1 });
      assert.ok(a1.connected);
    });

    it('locks a device id out at an address after wrong secrets in a row, before hashing; others and other addresses go on; the lock ends', async () => {
      const { g, calls } = await lockoutFixture({ perClient: { limit: 3, lockMs: 1500 }, perAddress: { limit: 50, lockMs: 1500 } });
      try {
        const refusal = (p: Promise<unknown>) => p.then(() => assert.fail('connected'), (e: { code?: number }) => e.code);
        // Two wrong, one right: the right one clears the count.
        for (let i = 0; i < 2; i++) assert.equal(await refusal(device(g.port, A1, { password: 'wrong-' + i })), 4);
        (await device(g.port, A1)).end(true);
        for (let i = 0; i < 2; i++) assert.equal(await refusal(device(g.port, A1, { password: 'wrong-' + i })), 4);
        // The third in a row locks a1 at 127.0.0.1: even its right secret is refused (5), and not hashed.
        assert.equal(await refusal(device(g.port, A1, { password: 'wrong-3' })), 4);
        const hashed = calls.verify;
        assert.equal(await refusal(device(g.port, A1)), 5);
        assert.equal(calls.verify, hashed);
        // Another device from the same address, and a1 from another loopback address, are not locked.
        (await device(g.port, A2)).end(true);
        assert.equal(await connackFrom('127.0.0.2', g.port, CONNECT(A1, A1, 'secret-a1')), 0);
        // The audit log has each refusal and the lock, not the refusals while locked.
        const refused = (await g.bridge.store.auditLog()).filter((e) => e.action === 'mqtt.connect' && e.resourceId === A1).sort((a, b) => a.id - b.id);
        assert.equal(refused.length, 5);
        assert.ok(refused.every((e) => !e.allowed && e.status === 401 && e.actorKind === 'invalid' && e.resourceKind === 'device' && /wrong device secret \(from [0-9a-f:.]+\)/.test(e.reason)));
        assert.match(refused[4]!.reason, new RegExp(A1 + ' locked out at '));
        await sleep(1600);
        (await device(g.port, A1)).end(true);
      } finally {
        await g.close();
      }
    });

    it('refuses connections past its limits before reading a byte: idle sockets from one address, then any once full; and says so in its log', async () => {
      const lines: string[] = [];
      const g = await startFixture({
        logLevel: 'warn', logOutput: { write: (l) => void lines.push(l) },
        mqtt: { ...(await import('@flotilla/bridge')).defaultOptions.mqtt, admission: { maxConnections: 5, maxPendingPerAddress: 2 } },
      });
      const open = (localAddress: string) =>
        new Promise<Socket>((resolve, reject) => {
          const s = tcp({ host: '127.0.0.1', port: g.port, localAddress });
          s.once('error', reject);
          s.once('connect', () => resolve(s));
        });
      /** Whether the bridge closes the socket within a second. */
      const shut = (s: Socket) =>
        new Promise<boolean>((resolve) => {
          const t = setTimeout(() => resolve(false), 1000);
          s.on('error', () => {});
          s.once('close', () => (clearTimeout(t), resolve(true)));
        });
      const held: Socket[] = [];
      try {
        // Two idle sockets (no CONNECT) from one address are held; a third is closed at once, and so is a device's.
        held.push(await open('127.0.0.1'), await open('127.0.0.1'));
        assert.equal(await shut(await open('127.0.0.1')), true);
        await assert.rejects(device(g.port, A1));
        // Another address goes on.
        assert.equal(await connackFrom('127.0.0.2', g.port, CONNECT(A1, A1, 'secret-a1')), 0);
        // One idle socket goes: devices connect from the address, and once accepted they no longer count against it.
        held.shift()!.destroy();
        await sleep(100);
        const a1 = await device(g.port, A1);
        const a2 = await device(g.port, A2);
        held.push(await open('127.0.0.1'));
        // 1 + 2 devices + 1 idle here, 1 idle from elsewhere: 5, the most it takes. A sixth, from anywhere, is closed.
        held.push(await open('127.0.0.3'));
        await sleep(50);
        assert.equal(await shut(await open('127.0.0.4')), true);
        assert.ok(a1.connected && a2.connected && held.every((s) => !s.destroyed));
        const warned = lines.map((l) => JSON.parse(l) as { msg: string; refused: number });
        assert.ok(warned.some((l) => l.msg === 'mqtt: connections refused: too many from one address before CONNECT'), lines.join());
        assert.ok(warned.some((l) => l.msg === 'mqtt: connections refused: the broker holds its maximum'), lines.join());
        a1.end(true);
        a2.end(true);
      } finally {
        for (const s of held) s.destroy();
        await g.close();
      }
    });

    it('logs why connections and sessions end badly, once per kind every 10 s with how many there were', async () => {
      const lines: string[] = [];
      const g = await startFixture({ logLevel: 'info', logOutput: { write: (l) => void lines.push(l) } });
      const logged = (msg: string) => lines.map((l) => JSON.parse(l) as { msg: string; clientId?: string; err: string; count: number }).filter((l) => l.msg === msg);
      // Three sockets each: a CONNECT of another protocol (aedes' parser refuses it), and a packet
      // that is no CONNECT (the frame guard refuses it). One line for each kind.
      const notMqtt = packet({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 30, clientId: 'x' });
      notMqtt.set(Buffer.from('MQTX'), 4);
      try {
        for (let i = 0; i < 3; i++) {
          assert.equal((await raw(g.port, [notMqtt])).closed, true);
          assert.equal((await raw(g.port, [Uint8Array.of(0x00, 0x00)])).closed, true);
        }
        const before = logged('mqtt: connection dropped before its session began');
        assert.deepEqual(before.map((l) => [l.err, l.count]), [['Invalid protocolId', 1]], lines.join('\n'));
        assert.deepEqual(logged('mqtt: connection refused by the frame guard').map((l) => l.count), [1]);
        // A device's session (past its CONNACK), ended by a reserved packet type (0): the device is named.
        await new Promise<void>((resolve) => {
          const sock = tcp({ host: '127.0.0.1', port: g.port }, () => sock.write(CONNECT(A1, A1, 'secret-a1')));
          sock.on('error', () => {});
          sock.once('data', () => sock.write(Uint8Array.of(0x00, 0x00)));
          sock.once('close', () => resolve());
          sock.resume();
        });
        const session = logged('mqtt: session ended by an error');
        assert.deepEqual(session.map((l) => [l.clientId, l.count]), [[A1, 1]], lines.join('\n'));
      } finally {
        await g.close();
      }
    });

    it('logs refused publishes and subscriptions once per reason every 10 s with how many: any token could write hundreds of lines a second', async () => {
      const lines: string[] = [];
      const g = await startFixture({ logLevel: 'info', logOutput: { write: (l) => void lines.push(l) } });
      const logged = (msg: string) => lines.map((l) => JSON.parse(l) as { msg: string; refused?: number }).filter((l) => l.msg === msg);
      try {
        for (let i = 0; i < 5; i++) {
          // An app publishing as a device: refused, its session ended (MQTT 3.1.1 has no negative PUBACK); then it reconnects and does it again.
          const c = await app(g.port, 'flood-' + i, g.tokens.alice);
          assert.equal(await grant(c, topics.cloud.request(B1)), 128);
          c.publish(topics.device.event(A1, 'x'), 'hi', { qos: 1 });
          await closed(c);
        }
        // Before: a line for each, 5 and 5.
        assert.deepEqual(logged('mqtt: publish refused').map((l) => l.refused), [1], lines.join('\n'));
        assert.deepEqual(logged('mqtt: subscription refused').map((l) => l.refused), [1], lines.join('\n'));
      } finally {
        await g.close();
      }
    });

    it('counts CONNECTs still being checked: wrong secrets sent at once get no more hashes than the lock-out allows', async () => {
      const { g, calls } = await lockoutFixture({ perClient: { limit: 3, lockMs: 60000 }, perAddress: { limit: 6, lockMs: 60000 } });
      try {
        // Twenty wrong secrets for one device at once: three are hashed (CONNACK 4), the rest refused unhashed: while
        // those three are being checked, 3 (server unavailable: none has failed yet; it was 5, not authorized, which
        // healthy devices behind one NAT reconnecting at once got), and once they have failed, 5 (locked out).
        const one = await Promise.all(Array.from({ length: 20 }, (_, i) => connackFrom('127.0.0.3', g.port, CONNECT(A1, A1, 'wrong-' + i))));
        assert.equal(calls.verify, 3);
        assert.deepEqual([one.filter((c) => c === 4).length, one.filter((c) => c === 3 || c === 5).length], [3, 17]);
        assert.ok(one.some((c) => c === 3), 'those sent while the first were checked: ' + one.join(','));
        // Once they have failed, the lock-out is one: 5.
        assert.equal(await connackFrom('127.0.0.3', g.port, CONNECT(A1, A1, 'wrong-again')), 5);
        // Twenty device ids at once from another address: six are hashed, then the address waits.
        const ids = Array.from({ length: 20 }, (_, i) => 'eeeeeeeeeeeeeeeeeeeeee' + String(i).padStart(2, '0'));
        const many = await Promise.all(ids.map((id) => connackFrom('127.0.0.4', g.port, CONNECT(id, id, 'guess'))));
        assert.equal(calls.verify, 3 + 6);
        assert.deepEqual([many.filter((c) => c === 4).length, many.filter((c) => c === 3 || c === 5).length], [6, 14]);
      } finally {
        await g.close();
      }
    });

    it('locks an address out after failed connects under any client ids; a success from it does not clear the count', async () => {
      const g = await startFixture({
        mqtt: { ...(await import('@flotilla/bridge')).defaultOptions.mqtt, connectFailures: { perClient: { limit: 100, lockMs: 60000 }, perAddress: { limit: 4, lockMs: 60000 } } },
      });
      try {
        const refusal = (p: Promise<unknown>) => p.then(() => assert.fail('connected'), (e: { code?: number }) => e.code);
        const stranger = (i: number) => connect(g.port, { clientId: 'dddddddddddddddddddddd' + String(i).padStart(2, '0'), username: 'dddddddddddddddddddddd' + String(i).padStart(2, '0'), password: 'guess' });
        for (let i = 0; i < 3; i++) assert.equal(await refusal(stranger(i)), 4);
        // Someone holding one valid token connects between guesses: that speaks for the token, not the address.
        (await app(g.port, 'ok-app', g.tokens.alice)).end(true);
        assert.equal(await refusal(app(g.port, 'guess-app', 'not-a-token')), 4); // the fourth: the address is locked
        assert.equal(await refusal(device(g.port, A2)), 5);
        assert.equal(await refusal(app(g.port, 'ok-app', g.tokens.alice)), 5);
        const last = (await g.bridge.store.auditLog()).filter((e) => e.action === 'mqtt.connect').sort((a, b) => a.id - b.id).pop()!;
        assert.equal(last.resourceKind, 'client');
        assert.match(last.reason, /^unknown token \(from [0-9a-f:.]+\); [0-9a-f:.]+ locked out$/);
      } finally {
        await g.close();
      }
    });

    it('lets an app in with a valid token only', async () => {
      track(await app(f.port, 'alice-app', f.tokens.alice));
      await assert.rejects(app(f.port, 'x1', f.tokens.revoked), /Bad username or password/);
      await sleep(1100); // the expired token had a 1 s lifetime
      await assert.rejects(app(f.port, 'x2', f.tokens.expired), /Bad username or password/);
      await assert.rejects(app(f.port, 'x3', 'not-a-token'), /Bad username or password/);
      await assert.rejects(app(f.port, 'x4', ''), /Bad username or password/);
    });

    it('refuses client ids with +, #, / or NUL, and invalid UTF-8', async () => {
      for (const id of ['a+b', 'a#b', 'a/b', 'a\u0000b']) {
        const r = await raw(f.port, [CONNECT(id, 'token', f.tokens.alice)]);
        assert.ok(r.closed, 'closed for ' + JSON.stringify(id));
        assert.ok(r.received.length === 0 || r.received[3] !== 0, 'not accepted: ' + JSON.stringify(id));
      }
      // Client id bytes 0xc3 0x28 (invalid UTF-8), spliced into a CONNECT.
      const good = Buffer.from(CONNECT('ab', 'token', f.tokens.alice));
      const at = good.indexOf(Buffer.from('ab'));
      good[at] = 0xc3;
      good[at + 1] = 0x28;
      const r = await raw(f.port, [good]);
      assert.ok(r.closed && (r.received.length === 0 || r.received[3] !== 0));
      await serving();
    });

    it('refuses an empty client id with CONNACK 2, valid token or not: the id aedes would make up is no reply address the app can know', async () => {
      // CONNACK is 20 02 00 <code>: 2 is "identifier rejected".
      const r = await raw(f.port, [CONNECT('', 'token', f.tokens.alice)]);
      assert.deepEqual([...r.received.subarray(0, 4)], [0x20, 0x02, 0x00, 0x02]);
      assert.ok(r.closed);
      const refused = (await f.bridge.store.auditLog()).filter((e) => e.action === 'mqtt.connect' && e.resourceId === '').pop();
      assert.match(refused?.reason ?? '', /client id must be 1 to 64/);
      await serving();
    });

    it('refuses a will outside the device\'s own status topic, a retained will, and any app will', async () => {
      const status = Buffer.from(encode('status', { online: false }));
      await assert.rejects(device(f.port, A1, { will: { topic: topics.device.status(B1), payload: status, qos: 1, retain: false } }), /Not authorized/);
      await assert.rejects(device(f.port, A1, { will: { topic: topics.device.status(A1), payload: status, qos: 1, retain: true } }), /Not authorized/);
      await assert.rejects(device(f.port, A1, { will: { topic: topics.device.status(A1), payload: Buffer.from('x'), qos: 1, retain: false } }), /Not authorized/);
      await assert.rejects(app(f.port, 'w', f.tokens.alice, { will: { topic: topics.app.reply('w'), payload: status, qos: 0, retain: false } }), /Not authorized/);
      track(await device(f.port, A1, { will: { topic: topics.device.status(A1), payload: status, qos: 1, retain: false } }));
    });

    it('refuses what MQTT 3.1.1 forbids and the parser lets through: a will of QoS 3, a password without a user name', async () => {
      const status = Buffer.from(encode('status', { online: false }));
      // MQTT-3.1.2-14. Before: CONNACK 0.
      const qos3 = packet({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 30, clientId: A2, username: A2, password: Buffer.from(SECRET[A2]), will: { topic: topics.device.status(A2), payload: status, qos: 3 as 0, retain: false } });
      assert.deepEqual([...(await raw(f.port, [qos3])).received.subarray(0, 4)], [0x20, 2, 0, 5]);
      // MQTT-3.1.2-22: the CONNECT of CONNECT('token-only', 'token', token) with the user name flag and field taken out. Before: CONNACK 0, an app.
      const withName = Buffer.from(CONNECT('token-only', 'token', f.tokens.alice));
      const at = withName.indexOf(Buffer.from('token-only')) + 'token-only'.length;
      const body = Buffer.concat([withName.subarray(2, 9), Buffer.from([withName[9] & ~0x80]), withName.subarray(10, at), withName.subarray(at + 2 + 5)]);
      const passwordOnly = Buffer.concat([Buffer.from([0x10, body.length]), body]);
      assert.deepEqual([...(await raw(f.port, [passwordOnly])).received.subarray(0, 4)], [0x20, 2, 0, 4]);
    });

    it('refuses persistent sessions (clean session unset), for devices and apps alike', async () => {
      await assert.rejects(device(f.port, A2, { clean: false }), /Not authorized/);
      await assert.rejects(app(f.port, 'keep-me', f.tokens.alice, { clean: false }), /Not authorized/);
    });

    it('keeps an app\'s client id to its account: another account cannot take it over (and read its replies); the same account can', async () => {
      const alice = track(await app(f.port, 'shared-app', f.tokens.alice));
      await assert.rejects(app(f.port, 'shared-app', f.tokens.bob), /Identifier rejected/);
      await assert.rejects(app(f.port, 'shared-app', f.tokens.apiUser), /Identifier rejected/);
      assert.ok(alice.connected, 'the first connection stays');
      const again = track(await app(f.port, 'shared-app', f.tokens.alice));
      await closed(alice);
      assert.ok(again.connected);
    });
  });

  describe('devices', () => {
    it('stores hello, vitals and errors before the PUBACK', async () => {
      const a1 = track(await device(f.port, A1));
      await a1.publishAsync(topics.device.hello(A1), hello(7), { qos: 1 });
      const d = await f.bridge.store.getDevice(A1);
      assert.equal(d?.firmwareVersion, 7);
      await a1.publishAsync(topics.device.vitals(A1), Buffer.from(encode('vitals', { values: { 'device.system.uptime': 42 } })), { qos: 1 });
      assert.equal((await f.bridge.store.latestVitals(A1))?.values['device.system.uptime'], 42);
      await a1.publishAsync(topics.device.error(A1), Buffer.from(encode('error', { source: 'function', name: 'led', message: 'boom', stack: '', count: 2, uptime: 5 })), { qos: 1 });
      const errors = await f.bridge.store.errorsByProduct(f.products.A);
      assert.ok(errors.some((e) => e.message === 'boom'));
    });

    it('takes last_handshake_at from the session\'s start: a later hello in the session (a new name) leaves it, a new connection moves it', async () => {
      const before = Date.now();
      const a1 = track(await device(f.port, A1));
      const connected = Date.now();
      await a1.publishAsync(topics.device.hello(A1), hello(7), { qos: 1 });
      const first = (await f.bridge.store.getDevice(A1))!.lastHandshakeAt!.getTime();
      assert.ok(first >= before && first <= connected, 'the CONNECT, not the hello');
      await sleep(30);
      await a1.publishAsync(topics.device.hello(A1), hello(8), { qos: 1 });
      const d = await f.bridge.store.getDevice(A1);
      // Before: every hello moved it, so an app registering a variable looked like a reconnect.
      assert.deepEqual([d?.firmwareVersion, d?.lastHandshakeAt?.getTime()], [8, first]);
      a1.end(true);
      await closed(a1);
      const again = track(await device(f.port, A1));
      await again.publishAsync(topics.device.hello(A1), hello(8), { qos: 1 });
      assert.ok((await f.bridge.store.getDevice(A1))!.lastHandshakeAt!.getTime() > first);
    });

    it('relays a device\'s event to the subscriptions of its product\'s devices, its own too, as Particle\'s devices talk to each other; no other product\'s', async () => {
      const listening = async (id: typeof A1 | typeof A2 | typeof B1) => {
        const c = track(await device(f.port, id));
        const got: { name: string; data: unknown }[] = [];
        c.on('message', (_t, payload) => {
          const m = decode(payload);
          if (m.kind === 'cloudEvent') got.push({ name: m.name, data: m.data });
        });
        await c.subscribeAsync(topics.filter.deviceInbox(id), { qos: 1 });
        await c.publishAsync(topics.device.hello(id), Buffer.from(encode('hello', {
          agent: '0.1.0', firmware: 1, product: 1, variables: [], functions: [], subscriptions: ['ping'], bootReason: 'none', ota: { slot: 0, trial: false, rolledBackFrom: null },
        })), { qos: 1 });
        return { c, got };
      };
      const a1 = await listening(A1);
      const a2 = await listening(A2);
      const b1 = await listening(B1);
      await a1.c.publishAsync(topics.device.event(A1, 'ping/x'), Buffer.from(encode('event', { data: 'hi', ttl: 60 })), { qos: 1 });
      await a1.c.publishAsync(topics.device.event(A1, 'other'), Buffer.from(encode('event', { data: 'no one', ttl: 60 })), { qos: 1 });
      await a1.c.publishAsync(topics.device.event(A1, 'ping/bin'), Buffer.from(encode('event', { data: new Uint8Array([0, 1, 255]), ttl: 60 })), { qos: 1 });
      for (let i = 0; i < 50 && (a2.got.length < 2 || a1.got.length < 2); i++) await sleep(20);
      // Before: only events published through the API reached devices.
      assert.deepEqual(a2.got.map((g) => [g.name, g.data instanceof Uint8Array ? [...g.data] : g.data]), [['ping/x', 'hi'], ['ping/bin', [0, 1, 255]]]);
      assert.deepEqual(a1.got.map((g) => g.name), ['ping/x', 'ping/bin'], 'its own');
      await sleep(100);
      assert.deepEqual(b1.got, [], 'another product\'s device hears nothing');
      // A quarantined device's events are held back from devices too, as from streams and webhooks.
      await f.bridge.store.updateDevice(A1, { quarantined: true });
      await f.bridge.broker.refreshDevice(A1);
      await a1.c.publishAsync(topics.device.event(A1, 'ping/held'), Buffer.from(encode('event', { data: 'x', ttl: 60 })), { qos: 1 });
      await a2.c.publishAsync(topics.device.event(A2, 'ping/a2'), Buffer.from(encode('event', { data: 'y', ttl: 60 })), { qos: 1 });
      for (let i = 0; i < 50 && !a1.got.some((g) => g.name === 'ping/a2'); i++) await sleep(20);
      assert.deepEqual(a2.got.map((g) => g.name), ['ping/x', 'ping/bin', 'ping/a2']);
      await f.bridge.store.updateDevice(A1, { quarantined: false });
      await f.bridge.broker.refreshDevice(A1);
    });

    it('is online while connected, offline after, and a replacing connection keeps it online', async () => {
      const watcher = track(await app(f.port, 'alice-presence', f.tokens.alice));
      const got = inbox(watcher);
      await watcher.subscribeAsync(topics.filter.deviceEventsNamed(A2, 'spark'), { qos: 1 });
      const first = track(await device(f.port, A2));
      assert.equal((await f.bridge.store.getDevice(A2))?.online, true);
      // The same device again (a reboot before the old link timed out): the old session ends, the device stays online.
      const second = track(await device(f.port, A2));
      await closed(first);
      await sleep(100);
      assert.equal((await f.bridge.store.getDevice(A2))?.online, true);
      second.end(true);
      for (let i = 0; i < 50 && (await f.bridge.store.getDevice(A2))?.online; i++) await sleep(20);
      assert.equal((await f.bridge.store.getDevice(A2))?.online, false);
      const statusesNow = () => got.filter((g) => g.topic === topics.device.event(A2, 'spark/status')).map((g) => (g.msg as { data: string }).data);
      for (let i = 0; i < 50 && statusesNow()[statusesNow().length - 1] !== 'offline'; i++) await sleep(20);
      const statuses = statusesNow();
      assert.deepEqual(statuses.slice(0, 2), ['online', 'online']);
      assert.equal(statuses[statuses.length - 1], 'offline');
    });

    it('keeps last heard, written in batches', async () => {
      const before = (await f.bridge.store.getDevice(A2))?.lastHeard?.getTime() ?? 0;
      const a2 = track(await device(f.port, A2));
      await sleep(20);
      await a2.publishAsync(topics.device.vitals(A2), Buffer.from(encode('vitals', { values: { 'device.system.uptime': 9 } })), { qos: 1 });
      await f.bridge.broker.flush();
      assert.ok(((await f.bridge.store.getDevice(A2))?.lastHeard?.getTime() ?? 0) > before);
    });

    it("does not take a device's will for traffic: last heard and the usage counts stay at what it really sent (a half-open link's will came up to 1.5 keepalives later)", async () => {
      const status = Buffer.from(encode('status', { online: false }));
      const day = new Date().toISOString().slice(0, 10);
      const messages = async () => (await f.bridge.store.usage(f.products.A, day, day))[0]?.messages ?? 0;
      const a2 = await device(f.port, A2, { will: { topic: topics.device.status(A2), payload: status, qos: 1, retain: false } });
      await a2.publishAsync(topics.device.vitals(A2), Buffer.from(encode('vitals', { values: { 'device.system.uptime': 9 } })), { qos: 1 });
      await f.bridge.broker.flush();
      const heard = (await f.bridge.store.getDevice(A2))!.lastHeard!.getTime();
      const counted = await messages();
      await sleep(50);
      // Gone without DISCONNECT: the broker publishes its will.
      (a2 as unknown as { stream: Socket }).stream.destroy();
      for (let i = 0; i < 100 && (await f.bridge.store.getDevice(A2))!.online; i++) await sleep(20);
      assert.equal((await f.bridge.store.getDevice(A2))!.online, false, 'offline by its will or the link');
      await f.bridge.broker.flush();
      assert.equal((await f.bridge.store.getDevice(A2))!.lastHeard!.getTime(), heard);
      assert.equal(await messages(), counted);
      a2.end(true);
    });

    it('grants a device its own three inbox topics and nothing else', async () => {
      const a1 = track(await device(f.port, A1));
      const granted = await a1.subscribeAsync(topics.filter.deviceInbox(A1), { qos: 1 });
      assert.deepEqual(granted.map((g) => g.qos), [1, 1, 1]);
      // Asked at QoS 2, granted 1, and the SUBACK says so (it said 2, which the bridge never delivers at).
      assert.deepEqual((await a1.subscribeAsync(topics.filter.deviceInbox(A1), { qos: 2 })).map((g) => g.qos), [1, 1, 1]);
      assert.deepEqual((await a1.subscribeAsync(topics.filter.deviceInbox(A1), { qos: 0 })).map((g) => g.qos), [0, 0, 0]);
      for (const filter of ['#', '+/#', '$SYS/#', 'cloud/+/req', topics.cloud.request(B1), topics.device.hello(A1), 'dev/+/evt/#', 'cloud/' + A1 + '/#']) {
        assert.equal(await grant(a1, filter), 128, filter + ' refused');
      }
      assert.ok(a1.connected, 'a refused subscription does not disconnect');
      const refused = (await f.bridge.store.auditLog()).filter((e) => e.action === 'mqtt.subscribe' && e.actorId === A1);
      assert.ok(refused.some((e) => e.resourceId === topics.cloud.request(B1) && e.status === 403 && e.actorKind === 'device'), 'audited');
    });

    it('cuts a device that publishes as another device, retains, breaks the protocol or uses spark/', async () => {
      const watcher = track(await app(f.port, 'bob-watch', f.tokens.bob));
      const got = inbox(watcher);
      await watcher.subscribeAsync(topics.filter.deviceEvents(B1), { qos: 1 });
      for (const [topic, payload, opts] of [
        [topics.device.event(B1, 'temp'), event('spoofed'), {}],
        [topics.device.hello(B1), hello(), {}],
        [topics.device.event(A1, 'temp'), event('kept'), { retain: true }],
        [topics.device.event(A1, 'temp'), Buffer.from([0xff]), {}],
        [topics.device.hello(A1), event('x'), {}],
        [topics.device.event(A1, 'spark/status'), event('online'), {}],
        ['$SYS/broker/clients', event('x'), {}],
      ] as const) {
        const a1 = track(await device(f.port, A1));
        a1.publish(topic, payload as Buffer, { qos: 1, ...opts });
        await closed(a1);
      }
      await sleep(100);
      assert.deepEqual(got, [], 'nothing reached B1\'s watcher');
      await serving();
    });
  });

  describe('operator apps', () => {
    it('sees the events of its own products only', async () => {
      const alice = track(await app(f.port, 'alice-watch', f.tokens.alice));
      const got = inbox(alice);
      assert.deepEqual((await alice.subscribeAsync(topics.filter.deviceEvents(), { qos: 1 })).map((g) => g.qos), [1]);
      assert.deepEqual((await alice.subscribeAsync(topics.filter.deviceEvents(), { qos: 2 })).map((g) => g.qos), [1], 'QoS 2 is granted as 1');
      const a1 = track(await device(f.port, A1));
      const b1 = track(await device(f.port, B1));
      await a1.publishAsync(topics.device.event(A1, 'temp'), event('21'), { qos: 1 });
      await b1.publishAsync(topics.device.event(B1, 'temp'), event('99'), { qos: 1 });
      await sleep(200);
      const seen = got.filter((g) => g.topic.endsWith('/temp'));
      assert.deepEqual(seen.map((g) => g.topic), [topics.device.event(A1, 'temp')]);
      assert.ok(got.some((g) => g.topic === topics.device.event(A1, 'spark/status')), 'spark/status of a1');
      assert.ok(!got.some((g) => g.topic.startsWith('dev/' + B1)), 'nothing of b1');
    });

    it('is refused another product\'s device events, and other users\' replies', async () => {
      const bob = track(await app(f.port, 'bob-app', f.tokens.bob));
      assert.equal(await grant(bob, topics.filter.deviceEvents(A1)), 128);
      assert.equal(await grant(bob, topics.app.reply('alice-app')), 128);
      assert.equal(await grant(bob, '#'), 128);
      assert.equal(await grant(bob, '$SYS/#'), 128);
      assert.equal(await grant(bob, 'dev/+/hello'), 128);
      assert.equal(await grant(bob, topics.app.reply('bob-app')), 1);
      assert.ok(bob.connected);
      // Each refusal is in the audit log with why; alice's subscription to her own device is too, allowed.
      const alice = track(await app(f.port, 'alice-sub', f.tokens.alice));
      assert.equal(await grant(alice, topics.filter.deviceEvents(A1)), 1);
      const log = (await f.bridge.store.auditLog()).filter((e) => e.action === 'mqtt.subscribe' || e.action === 'device.events');
      const entry = (actorId: string, resourceId: string) => log.find((e) => e.actorId === actorId && e.resourceId === resourceId);
      assert.deepEqual(pick(entry(f.users.bob!, A1)), { action: 'device.events', allowed: false, status: 404, resourceKind: 'device' });
      assert.deepEqual(pick(entry(f.users.bob!, topics.app.reply('alice-app'))), { action: 'mqtt.subscribe', allowed: false, status: 403, resourceKind: 'topic' });
      assert.deepEqual(pick(entry(f.users.bob!, '#')), { action: 'mqtt.subscribe', allowed: false, status: 400, resourceKind: 'topic' });
      assert.deepEqual(pick(entry(f.users.alice!, A1)), { action: 'device.events', allowed: true, status: 200, resourceKind: 'device' });
      assert.equal(entry(f.users.bob!, topics.app.reply('bob-app')), undefined, 'its own replies: nothing to decide');
    });

    it('routes a request to the device and the reply to the requester only, with its own id', async () => {
      const a1 = track(await device(f.port, A1));
      await a1.subscribeAsync(topics.filter.deviceInbox(A1), { qos: 1 });
      a1.on('message', (_t, payload) => {
        const m = decode(payload);
        if (m.kind === 'request') a1.publish(topics.device.reply(A1), Buffer.from(encode('reply', { id: m.id, status: 'ok', value: 21.5 })), { qos: 1 });
      });
      const dave = track(await app(f.port, 'dave-app', f.tokens.dave));
      const erin = track(await app(f.port, 'erin-app', f.tokens.erin));
      const daveGot = inbox(dave);
      const erinGot = inbox(erin);
      await dave.subscribeAsync(topics.app.reply('dave-app'), { qos: 1 });
      await erin.subscribeAsync(topics.app.reply('erin-app'), { qos: 1 });
      await dave.publishAsync(topics.cloud.request(A1), Buffer.from(encode('request', { id: 7, op: 'var', name: 'temp' })), { qos: 1 });
      for (let i = 0; i < 50 && daveGot.length === 0; i++) await sleep(20);
      assert.deepEqual(daveGot.map((g) => g.msg), [{ kind: 'reply', id: 7, status: 'ok', value: 21.5 }]);
      assert.deepEqual(erinGot, []);
    });

    it('drops the reply to a request whose session ended: the next to take its client id, whoever it is, gets nothing', async () => {
      const a1 = track(await device(f.port, A1));
      await a1.subscribeAsync(topics.filter.deviceInbox(A1), { qos: 1 });
      const asked: number[] = [];
      a1.on('message', (_t, payload) => {
        const m = decode(payload);
        if (m.kind === 'request') asked.push(m.id);
      });
      const dave = await app(f.port, 'shared-app', f.tokens.dave);
      await dave.subscribeAsync(topics.app.reply('shared-app'), { qos: 1 });
      await dave.publishAsync(topics.cloud.request(A1), Buffer.from(encode('request', { id: 77, op: 'var', name: 'temp' })), { qos: 1 });
      for (let i = 0; i < 50 && asked.length === 0; i++) await sleep(20);
      dave.end(true);
      await sleep(100);
      // bob has no role on product A; the client id is free, so he takes it and subscribes to its replies.
      const bob = track(await app(f.port, 'shared-app', f.tokens.bob));
      const bobGot = inbox(bob);
      assert.equal(await grant(bob, topics.app.reply('shared-app')), 1);
      await a1.publishAsync(topics.device.reply(A1), Buffer.from(encode('reply', { id: asked[0], status: 'ok', value: 'secret' })), { qos: 1 });
      await sleep(200);
      // Before, bob got dave's answer.
      assert.deepEqual(bobGot, []);
      assert.equal(f.bridge.broker.context.requests.size, 0, 'dave\'s request was dropped with his session');
    });

    it('holds an app to 1000 subscriptions at once (0x80 past them; one dropped frees its place)', async () => {
      const bob = track(await app(f.port, 'bob-many', f.tokens.bob));
      const filters = Array.from({ length: 1000 }, (_, k) => topics.filter.deviceEvents().replace(/#$/, 'n' + k + '/#'));
      for (let k = 0; k < filters.length; k += 100) {
        const granted = (await bob.subscribeAsync(filters.slice(k, k + 100), { qos: 1 })).map((g) => g.qos);
        assert.ok(granted.every((q) => q === 1), 'granted up to the limit');
      }
      // Before, every filter was granted: 30,000 in 30 s took 55 MB of the bridge's memory.
      assert.equal(await grant(bob, filters[0]), 1, 'one it holds, again');
      assert.equal(await grant(bob, topics.filter.deviceEvents().replace(/#$/, 'more/#')), 128);
      await bob.unsubscribeAsync(filters[0]);
      await sleep(50);
      assert.equal(await grant(bob, topics.filter.deviceEvents().replace(/#$/, 'more/#')), 1);
      const refused = (await f.bridge.store.auditLog({ action: 'mqtt.subscribe' })).find((e) => e.actorId === f.users.bob && e.reason.startsWith('more than'));
      assert.equal(refused?.reason, 'more than 1000 subscriptions in one session');
    });

    it('ends an app session past 1000 audited decisions at once (refused subscriptions here): it cannot fill the audit log at packet rate', async () => {
      const bob = track(await app(f.port, 'bob-flood', f.tokens.bob));
      const count = async () => (await f.bridge.store.auditLog({ action: 'device.events', actorId: f.users.bob, limit: 10_000 })).length;
      const before = await count();
      // Devices that do not exist: each filter is decided (404) and recorded.
      const strangers = () => Array.from({ length: 50 }, () => topics.filter.deviceEvents(randomBytes(12).toString('hex')));
      let ended = false;
      bob.on('close', () => (ended = true));
      for (let n = 0; n < 40 && !ended; n++) await bob.subscribeAsync(strangers(), { qos: 1 }).catch(() => undefined);
      await closed(bob);
      const rows = (await count()) - before;
      // The burst and what refilled meanwhile; before, all 2,000 were recorded and the session went on.
      assert.ok(rows >= 1000 && rows < 1200, String(rows));
    });

    it('shares that budget among every session of one account: opening sessions, or minting tokens, does not multiply it', async () => {
      const count = async () => (await f.bridge.store.auditLog({ action: 'device.events', actorId: f.users.erin, limit: 10_000 })).length;
      const before = await count();
      const strangers = () => Array.from({ length: 50 }, () => topics.filter.deviceEvents(randomBytes(12).toString('hex')));
      // Three sessions of erin's, the third with a token minted for it, each refused 600 filters: 1,800 decisions against one budget of 1,000.
      const minted = (await f.bridge.store.issueToken({ subject: { kind: 'user', id: f.users.erin }, clientId: 'test', scopes: [], ttlSeconds: 3600 })).token;
      const sessions = await Promise.all([['erin-1', f.tokens.erin], ['erin-2', f.tokens.erin], ['erin-3', minted]].map(async ([id, token]) => track(await app(f.port, id, token))));
      const ended = new Set<string>();
      for (const s of sessions) s.on('close', () => ended.add(s.options.clientId!));
      for (let n = 0; n < 12; n++) await Promise.all(sessions.map((s) => (ended.has(s.options.clientId!) ? undefined : s.subscribeAsync(strangers(), { qos: 1 }).catch(() => undefined))));
      const rows = (await count()) - before;
      // The burst and what refilled meanwhile; per session, all 1,800 were recorded.
      assert.ok(rows >= 1000 && rows < 1200, String(rows));
      assert.ok(ended.size >= 1, 'the session that went past the shared budget ended');
      // Another token's budget is its own.
      const carol = track(await app(f.port, 'carol-after', f.tokens.carol));
      assert.equal(await grant(carol, topics.filter.deviceEvents(randomBytes(12).toString('hex'))), 128, 'refused (no such device), and recorded');
      await sleep(50);
      assert.ok(carol.connected);
    });

    it('keeps a token\'s audit budget while a session holds it or it has not refilled, and forgets it after', async () => {
      const g = await startFixture({ mqtt: { ...(await import('@flotilla/bridge')).defaultOptions.mqtt, auditRate: { perSecond: 100, burst: 5 }, expirySweepMs: 20 } });
      try {
        const budgets = g.bridge.broker.context.auditBudgets;
        const bob = await app(g.port, 'bob-kept', g.tokens.bob);
        assert.equal(await grant(bob, topics.filter.deviceEvents(randomBytes(12).toString('hex'))), 128);
        await sleep(200);
        assert.equal(budgets.size, 1, 'refilled, but a session holds it');
        bob.end(true);
        for (let i = 0; i < 50 && budgets.size > 0; i++) await sleep(20);
        assert.equal(budgets.size, 0, 'refilled and no session: forgotten');
      } finally {
        await g.close();
      }
    });

    it('cuts a View-only member who calls a function, and a stranger, and audits both', async () => {
      const carol = track(await app(f.port, 'carol-app', f.tokens.carol));
      carol.publish(topics.cloud.request(A1), Buffer.from(encode('request', { id: 1, op: 'call', name: 'led', arg: 'on' })), { qos: 1 });
      await closed(carol);
      const bob = track(await app(f.port, 'bob-app2', f.tokens.bob));
      bob.publish(topics.cloud.request(A1), Buffer.from(encode('request', { id: 1, op: 'var', name: 'temp' })), { qos: 1 });
      await closed(bob);
      const log = await f.bridge.store.auditLog();
      const denied = log.filter((e) => !e.allowed && e.resourceId === A1);
      assert.ok(denied.some((e) => e.action === 'device.function' && e.status === 403), 'viewer: 403');
      assert.ok(denied.some((e) => e.action === 'device.variable' && e.status === 404), 'stranger: 404');
    });

    it('ends a session at once when its token is revoked, and refuses it afterwards', async () => {
      const token = (await f.bridge.store.issueToken({ subject: { kind: 'user', id: (await f.bridge.store.verifyPassword('alice', 'alice-password'))!.id }, clientId: 'test', scopes: [], ttlSeconds: 3600 })).token;
      const alice = track(await app(f.port, 'alice-revoke', token));
      await f.bridge.store.revokeToken(token);
      assert.equal(f.bridge.broker.cutToken(token), 1);
      await closed(alice);
      await assert.rejects(app(f.port, 'alice-revoke', token), /Bad username or password/);
    });
  });

  describe('customers and API users', () => {
    /** a1 and a2 each publish an event; resolves with the topics `c` received. */
    async function eventsSeenBy(c: MqttClient): Promise<string[]> {
      const got = inbox(c);
      const a1 = track(await device(f.port, A1));
      const a2 = track(await device(f.port, A2));
      await a1.publishAsync(topics.device.event(A1, 't'), event('1'), { qos: 1 });
      await a2.publishAsync(topics.device.event(A2, 't'), event('2'), { qos: 1 });
      await sleep(150);
      return got.map((g) => g.topic).filter((t) => t.endsWith('/t'));
    }

    it('lets a customer watch and reach only the device they claimed', async () => {
      const cust = track(await app(f.port, 'cust-app', f.tokens.customer));
      assert.equal(await grant(cust, topics.filter.deviceEvents(A1)), 1);
      assert.equal(await grant(cust, topics.filter.deviceEvents(A2)), 128);
      assert.equal(await grant(cust, topics.filter.deviceEvents()), 1);
      // Overlapping filters, one delivery (aedes dedupes per client); never a2's.
      assert.deepEqual(await eventsSeenBy(cust), [topics.device.event(A1, 't')]);
      // A request to the unclaimed device ends the session.
      cust.publish(topics.cloud.request(A2), Buffer.from(encode('request', { id: 1, op: 'var', name: 'x' })), { qos: 1 });
      await closed(cust);
    });

    it('lets an API user do what its scopes list, on its product only', async () => {
      const api = track(await app(f.port, 'api-app', f.tokens.apiUser));
      assert.equal(await grant(api, topics.filter.deviceEvents()), 1);
      assert.deepEqual((await eventsSeenBy(api)).sort(), [topics.device.event(A1, 't'), topics.device.event(A2, 't')].sort());
      assert.equal(await grant(api, topics.filter.deviceEvents(B1)), 128);
      api.publish(topics.cloud.request(A1), Buffer.from(encode('request', { id: 1, op: 'call', name: 'led', arg: '' })), { qos: 1 });
      await closed(api);
      const log = await f.bridge.store.auditLog();
      assert.ok(log.some((e) => e.actorKind === 'apiUser' && e.action === 'device.function' && !e.allowed && e.status === 403));
    });

    it('applies a membership change to a live session at once', async () => {
      const carol = track(await app(f.port, 'carol-watch', f.tokens.carol));
      await grant(carol, topics.filter.deviceEvents());
      assert.equal((await eventsSeenBy(carol)).length, 2);
      await f.bridge.store.removeProductMember(f.products.A, f.users.carol);
      await f.bridge.broker.refreshUser(f.users.carol);
      assert.deepEqual(await eventsSeenBy(carol), []);
      await f.bridge.store.addProductMember(f.products.A, f.users.carol, 'viewer');
      await f.bridge.broker.refreshUser(f.users.carol);
    });
  });

  describe('hostile connections', () => {
    it('drops a 268 MB claimed length before buffering it', async () => {
      const rss = process.memoryUsage().rss;
      const r = await raw(f.port, [Buffer.from([0x10, 0xff, 0xff, 0xff, 0x7f])]);
      assert.ok(r.closed);
      assert.ok(process.memoryUsage().rss - rss < 50 * 1024 * 1024);
      await serving();
    });

    it('drops a fifth length byte, and a first packet that is not CONNECT', async () => {
      assert.ok((await raw(f.port, [Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x01])])).closed);
      assert.ok((await raw(f.port, [Buffer.from([0xc0, 0x00])])).closed);
      assert.ok((await raw(f.port, [packet({ cmd: 'publish', topic: 'a', payload: Buffer.from('x'), qos: 0 })])).closed);
      await serving();
    });

    it('answers a CONNECT with a protocol level it does not speak with CONNACK 0x01, then closes ([MQTT-3.1.2-2])', async () => {
      for (const level of [2, 6, 0x87]) {
        const bytes = packet({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 30, clientId: A1, username: A1, password: Buffer.from('secret-a1') });
        bytes[8] = level; // 10 len | 00 04 'MQTT' | level
        const r = await raw(f.port, [bytes]);
        assert.ok(r.closed, 'level ' + level);
        assert.deepEqual([...r.received], [0x20, 0x02, 0x00, 0x01], 'level ' + level);
      }
      // MQTT 5, which mqtt-packet reads, is refused by aedes the same way.
      const v5 = await raw(f.port, [packet({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, keepalive: 30, clientId: A1 })]);
      assert.ok(v5.closed);
      assert.deepEqual([...v5.received.subarray(0, 4)], [0x20, 0x02, 0x00, 0x01]);
      await serving();
    });

    it('drops a 65,535-byte topic and 101 topic levels from an authenticated device', async () => {
      const big = packet({ cmd: 'publish', topic: 'd'.repeat(65535), payload: Buffer.alloc(0), qos: 0 });
      assert.ok((await raw(f.port, [CONNECT(A1, A1, 'secret-a1'), big])).closed);
      const deep = packet({ cmd: 'publish', topic: Array(101).fill('x').join('/'), payload: Buffer.from('x'), qos: 0 });
      assert.ok((await raw(f.port, [CONNECT(A1, A1, 'secret-a1'), deep])).closed);
      await serving();
    });

    it('ends the session of a client that floods', async () => {
      const slow = await startFixture({ mqtt: { ...(await import('@flotilla/bridge')).defaultOptions.mqtt, publishRate: { perSecond: 10, burst: 20 } } });
      try {
        const a1 = await device(slow.port, A1);
        // Status messages: nothing is stored for them, so only the flood limit counts them.
        const status = Buffer.from(encode('status', { online: true }));
        for (let i = 0; i < 40 && a1.connected; i++) a1.publish(topics.device.status(A1), status, { qos: 0 });
        await closed(a1);
        a1.end(true);
      } finally {
        await slow.close();
      }
    });

    it('ends the session of a device past its report budget (hello, vitals, errors stored), and keeps that budget across sessions', async () => {
      const slow = await startFixture({ mqtt: { ...(await import('@flotilla/bridge')).defaultOptions.mqtt, reportRate: { perSecond: 0.001, burst: 5 } } });
      try {
        const vitals = Buffer.from(encode('vitals', { values: { 'device.system.uptime': 1 } }));
        const error = Buffer.from(encode('error', { source: 'timer', name: '', message: 'x', stack: '', count: 1, uptime: 1 }));
        const a1 = await device(slow.port, A1);
        // The burst is taken, each one stored (QoS 1: acknowledged once stored).
        for (let i = 0; i < 5; i++) await a1.publishAsync(i % 2 ? topics.device.error(A1) : topics.device.vitals(A1), i % 2 ? error : vitals, { qos: 1 });
        assert.ok(a1.connected);
        a1.publish(topics.device.vitals(A1), vitals, { qos: 1 });
        await closed(a1);
        a1.end(true);
        // A new session has nothing left either; an event still passes (its own budget).
        const again = await device(slow.port, A1);
        await again.publishAsync(topics.device.event(A1, 'still'), Buffer.from(encode('event', { data: 'x', ttl: 60 })), { qos: 1 });
        again.publish(topics.device.error(A1), error, { qos: 1 });
        await closed(again);
        again.end(true);
        assert.equal((await slow.bridge.store.vitalsHistory(A1, new Date(0), new Date(Date.now() + 60_000))).length, 3);
      } finally {
        await slow.close();
      }
    });

    it('counts a device\'s refused subscriptions against what it may make the bridge store, and every filter against its flood limit: past either, the session ends and nothing more is audited', async () => {
      const slow = await startFixture({ mqtt: { ...(await import('@flotilla/bridge')).defaultOptions.mqtt, reportRate: { perSecond: 0.001, burst: 5 }, publishRate: { perSecond: 0.001, burst: 50 } } });
      try {
        const refusals = async () => (await slow.bridge.store.auditLog()).filter((e) => e.action === 'mqtt.subscribe' && e.actorId === A1).length;
        const a1 = await device(slow.port, A1);
        // One SUBSCRIBE of 100 filters it may not have: five refusals are audited (SUBACK 0x80), then the session ends.
        a1.subscribe(Array.from({ length: 100 }, (_, i) => 'dev/' + A2 + '/evt/x' + i), { qos: 0 });
        await closed(a1);
        a1.end(true);
        assert.equal(await refusals(), 5);
        // The budget is the device's, across sessions: a new session's first refused filter ends it, unaudited.
        const again = await device(slow.port, A1);
        again.subscribe('dev/' + A2 + '/evt/y', { qos: 0 });
        await closed(again);
        again.end(true);
        assert.equal(await refusals(), 5);
        // Its own inbox, over and over (granted, nothing stored): the flood limit ends that.
        const inbox = await device(slow.port, A2);
        for (let i = 0; i < 60 && inbox.connected; i++) inbox.subscribe(topics.filter.deviceInbox(A2)[0], { qos: 1 });
        await closed(inbox);
        inbox.end(true);
      } finally {
        await slow.close();
      }
    });

    it('takes the backlog an agent queued offline at once, and ends a session that floods events past it', async () => {
      // 16 events back to back (the agent's offline queue, flushed on reconnect): all delivered, session kept.
      const a1 = await device(f.port, A1);
      const ev = Buffer.from(encode('event', { data: 'x', ttl: 60 }));
      for (let i = 0; i < LIMITS.offlineQueueMax; i++) await a1.publishAsync(topics.device.event(A1, 'queued'), ev, { qos: 1 });
      assert.ok(a1.connected, 'the backlog is not abuse');
      // Past the backlog and twice the burst: abuse.
      for (let i = 0; i < 2 * LIMITS.publishBurst + 2 && a1.connected; i++) a1.publish(topics.device.event(A1, 'flood'), ev, { qos: 0 });
      await closed(a1);
      a1.end(true);
    });

    it('keeps a device\'s event budget across its sessions: reconnecting does not refill it', async () => {
      const ev = Buffer.from(encode('event', { data: 'x', ttl: 60 }));
      // Spend the burst and the backlog credit (QoS 1: each one taken before the next).
      const first = await device(f.port, B1);
      for (let i = 0; i < LIMITS.publishBurst + LIMITS.offlineQueueMax; i++) await first.publishAsync(topics.device.event(B1, 'spent'), ev, { qos: 1 });
      assert.ok(first.connected);
      await first.endAsync();
      // A new session at once: a fresh budget would take another backlog of events; this one ends past the burst.
      const again = await device(f.port, B1);
      let sent = 0;
      for (; sent < LIMITS.offlineQueueMax && again.connected; sent++) again.publish(topics.device.event(B1, 'again'), ev, { qos: 0 });
      await closed(again);
      again.end(true);
    });

    it('gives a CONNECT asking for no keepalive, or more than the limit, the limit (MQTT 3.1.1 has no refusal code for it), and cuts it when idle past 1.5 x that', async () => {
      const short = await startFixture({ mqtt: { ...(await import('@flotilla/bridge')).defaultOptions.mqtt, keepaliveLimit: 1 } });
      try {
        for (const keepalive of [0, 5000]) {
          const connect = packet({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive, clientId: A1, username: A1, password: Buffer.from('secret-a1') });
          const t0 = Date.now();
          const r = await raw(short.port, [connect], 10_000);
          // CONNACK, accepted (20 02 00 00), then silence: cut after 1.5 s, well before the 10 s wait.
          assert.deepEqual([...r.received.subarray(0, 4)], [0x20, 0x02, 0x00, 0x00], 'keepalive ' + keepalive);
          assert.ok(r.closed, 'keepalive ' + keepalive + ': closed when idle');
          assert.ok(Date.now() - t0 >= 1500, 'not before 1.5 x the limit');
        }
      } finally {
        await short.close();
      }
    });

    it('drops a connection that never sends CONNECT (connect timeout)', async function () {
      this.timeout(20000);
      const r = await raw(f.port, [], 15000);
      assert.ok(r.closed, 'closed by the broker within its connect timeout');
    });

    it('audits refused CONNECTs up to a budget per address: ones no lock-out counts (a bad client id, a persistent session, a bad will) cannot fill the audit log', async function () {
      const g = await startFixture({ mqtt: { refusalAudits: { limit: 5, windowMs: 60_000 } } });
      try {
        const before = (await g.bridge.store.auditLog({ action: 'mqtt.connect' })).length;
        const kinds = [
          (i: number) => CONNECT('bad id ' + i, 'token', 'x'),
          () => packet({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: false, keepalive: 30, clientId: A1, username: A1, password: Buffer.from(SECRET[A1]) }),
          () => packet({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 30, clientId: A1, username: A1, password: Buffer.from(SECRET[A1]), will: { topic: topics.device.status(A2), payload: Buffer.from('x'), qos: 0, retain: false } }),
        ];
        for (let i = 0; i < 30; i++) {
          const r = await raw(g.port, [kinds[i % 3](i)]);
          // Each refused all the same: CONNACK 2 or 5, then closed.
          assert.ok(r.closed && r.received[0] === 0x20 && [2, 5].includes(r.received[3]), 'refused: ' + r.received.toString('hex'));
        }
        const audited = (await g.bridge.store.auditLog({ action: 'mqtt.connect' })).length - before;
        assert.equal(audited, 5, 'the first 5 from this address are audited, the rest only counted in the log');
        // The devices themselves are not locked out by it.
        track(await device(g.port, A1));
      } finally {
        for (const c of clients.splice(0)) c.end(true);
        await g.close();
      }
    });

    it("holds one account's app sessions to appSessionsMax, whichever of its tokens they use: one token took every connection and devices were refused", async function () {
      const g = await startFixture({ mqtt: { appSessionsMax: 3 } });
      try {
        const second = (await g.bridge.store.issueToken({ subject: { kind: 'user', id: g.users.alice }, clientId: 'test', scopes: [], ttlSeconds: 3600 })).token;
        const a = track(await app(g.port, 'app-1', g.tokens.alice));
        track(await app(g.port, 'app-2', second));
        track(await app(g.port, 'app-3', g.tokens.alice));
        await assert.rejects(app(g.port, 'app-4', second, { reconnectPeriod: 0 }), /Not authorized/);
        // Another account, and the devices, are not held back by it.
        track(await app(g.port, 'bob-1', g.tokens.bob));
        track(await device(g.port, A1));
        // A reconnect under a client id the account holds replaces that session: not a fourth.
        const again = track(await app(g.port, 'app-3', g.tokens.alice));
        assert.ok(again.connected);
        // A session that ends frees its place.
        a.end(true);
        await closed(a);
        for (let i = 0; i < 50; i++) {
          const c = await app(g.port, 'app-4', second, { reconnectPeriod: 0 }).catch(() => null);
          if (c) {
            track(c);
            break;
          }
          assert.ok(i < 49, 'a place freed');
          await sleep(20);
        }
        const refused = (await g.bridge.store.auditLog({ action: 'mqtt.connect' })).filter((e) => !e.allowed).map((e) => e.reason);
        assert.ok(refused.some((r) => r.startsWith('the account holds its maximum of 3 MQTT sessions')), JSON.stringify(refused));
      } finally {
        for (const c of clients.splice(0)) c.end(true);
        await g.close();
      }
    });

    it('a second CONNECT of a device that closes while it is checked leaves nothing behind: the device goes offline when its session ends, and its subscriptions go', async function () {
      const g = await startFixture();
      try {
        const a1 = await device(g.port, A1);
        await a1.publishAsync(topics.device.hello(A1), hello(), { qos: 1 });
        for (let i = 0; i < 100 && !g.bridge.broker.context.subscriptions.has(A1); i++) await sleep(20);
        assert.ok(g.bridge.broker.context.subscriptions.has(A1));
        // A's credentials on a second link that ends at once: checked (a scrypt) after the link has gone.
        const second = tcp(g.port, '127.0.0.1');
        second.on('error', () => {});
        second.end(CONNECT(A1, A1, SECRET[A1]));
        await new Promise((r) => second.once('close', r));
        await sleep(200);
        a1.end(true);
        // Offline, and what it subscribed to forgotten (product events then went to it and were billed as sent), at once:
        // not after the 2 s a takeover under way is given (the second link's takeover was left behind).
        for (let i = 0; i < 50 && (g.bridge.broker.context.subscriptions.has(A1) || (await g.bridge.store.getDevice(A1))?.online); i++) await sleep(20);
        assert.equal(g.bridge.broker.context.subscriptions.has(A1), false);
        assert.equal((await g.bridge.store.getDevice(A1))?.online, false);
      } finally {
        await g.close();
      }
    });

    it('says nothing of a device removed while connected: its session ends after its row is gone (setOnline logged an error each time)', async function () {
      const lines: string[] = [];
      const g = await startFixture({ logLevel: 'warn', logOutput: { write: (l: string) => void lines.push(l) } });
      try {
        const a1 = await device(g.port, A1);
        // What removing it from its product does: the row, then the session.
        await g.bridge.store.deleteDevice(A1);
        g.bridge.broker.dropDevice(A1);
        await closed(a1);
        await sleep(300);
        assert.deepEqual(lines.filter((l) => l.includes('setOnline')), []);
      } finally {
        await g.close();
      }
    });

    it('cuts an app that stops reading, and delivery to everyone else goes on (aedes waited up to 60 s for its socket to drain, stalling every delivery and request)', async function () {
      this.timeout(60000);
      const g = await startFixture({ mqtt: { maxBuffered: 64 * 1024 } });
      // a1 connected: delivery decides from the devices the broker knows.
      track(await device(g.port, A1));
      const watcher = track(await app(g.port, 'watcher', g.tokens.alice));
      const stuck = tcp(g.port, '127.0.0.1');
      try {
        // An app of alice's subscribes to a1's events, then stops reading (a dashboard on a frozen host).
        let acked = Buffer.alloc(0);
        stuck.on('data', (b: Buffer) => (acked = Buffer.concat([acked, b])));
        stuck.write(CONNECT('stuck', 'token', g.tokens.alice));
        stuck.write(packet({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: topics.device.event(A1, 'load'), qos: 0 }] }));
        for (let i = 0; i < 100 && !acked.includes(Buffer.of(0x90)); i++) await sleep(20);
        assert.ok(acked.includes(Buffer.of(0x90)), 'SUBACK');
        stuck.pause();
        // (A paused socket hears no close: the broker's own list says whether the session is gone.)
        const cut = () => !(g.bridge.broker.aedes as unknown as { clients: Record<string, unknown> }).clients['stuck'];
        assert.ok(!cut());
        assert.notEqual(await grant(watcher, topics.filter.deviceEvents(A1)), 128);
        let seen = 0;
        watcher.on('message', () => seen++);
        // 40 MB of events from the bridge to both (far past what the kernel's buffers hold), in bursts.
        const payload = event('x'.repeat(1000));
        const total = 40_000;
        for (let i = 0; i < total; i += 1000) {
          for (let k = 0; k < 1000; k++) g.bridge.broker.context.publish(topics.device.event(A1, 'load'), payload, 0);
          await sleep(5);
        }
        // The healthy app gets every one, and the one that stopped reading was cut; the broker serves devices.
        for (let i = 0; i < 500 && (seen < total || !cut()); i++) await sleep(20);
        assert.equal(seen, total, 'the healthy app got every event');
        assert.ok(cut(), 'the app that stopped reading was cut');
        const c = track(await device(g.port, A2));
        await c.publishAsync(topics.device.vitals(A2), Buffer.from(encode('vitals', { values: { 'device.system.uptime': 1 } })), { qos: 1 });
      } finally {
        stuck.destroy();
        for (const c of clients.splice(0)) c.end(true);
        await g.close();
      }
    });
  });
});
