/**
 * The agent's MQTT client (firmware/src/mqtt/client.ts) on the real Node HAL
 * over loopback TCP: against a scripted peer (written here with node:net, so
 * the "broker" can split, pack, stall, refuse and lie) and against a real
 * aedes broker for the will. Only public behaviour is tested: the
 * constructor, start/stop/drop/publish/pending/connected/status/stats and
 * the event callbacks.
 *
 * Timing: the client's housekeeping runs once a second, so keepalive,
 * retransmission and CONNACK-timeout tests take a few seconds each. Every
 * timing assertion has a generous tolerance; lower bounds (a delay was at
 * least ...) are the strict ones, because timers never fire early.
 */
import assert from 'node:assert/strict';
import { createServer, Server, Socket } from 'node:net';
import mqtt, { MqttClient as MqttJsClient } from 'mqtt';
import { createNodeHal, emptyFlash, MemoryFlash, NodeHal } from '@flotilla/simulator';
import { Done, MqttClient, MqttOptions, ONCE, type MqttEvents } from '../../firmware/src/mqtt/client.js';
import { startBroker, TestBroker } from '../helpers/broker.js';
import { prng } from '../helpers/bytes.js';
import { closedPort } from '../helpers/ports.js';

// ---- packet types (MQTT 3.1.1) -----------------------------------------------

const CONNECT = 1;
const CONNACK = 2;
const PUBLISH = 3;
const PUBACK = 4;
const SUBSCRIBE = 8;
const SUBACK = 9;
const PINGREQ = 12;
const PINGRESP = 13;
const DISCONNECT = 14;

// ---- small helpers -------------------------------------------------------------

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const utf8 = (s: string) => Buffer.from(s, 'utf8');

/** Polls `fn` every 5 ms until it returns something truthy; fails after `ms`. */
async function until<T>(fn: () => T | undefined | null | false, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error('timed out after ' + ms + ' ms waiting for ' + what);
    await sleep(5);
  }
}

function varint(n: number): number[] {
  const out: number[] = [];
  do {
    let d = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) d |= 128;
    out.push(d);
  } while (n > 0);
  return out;
}

function frame(first: number, body: Buffer | number[]): Buffer {
  const b = Buffer.from(body);
  return Buffer.concat([Buffer.from([first, ...varint(b.length)]), b]);
}

const connack = (rc: number) => frame(CONNACK << 4, [0, rc]);

function publishFrame(topic: string, payload: Buffer | string, qos = 0, id = 0): Buffer {
  const t = utf8(topic);
  const parts: Buffer[] = [Buffer.from([t.length >> 8, t.length & 255]), t];
  if (qos) parts.push(Buffer.from([id >> 8, id & 255]));
  parts.push(typeof payload === 'string' ? utf8(payload) : payload);
  return frame((PUBLISH << 4) | (qos << 1), Buffer.concat(parts));
}

// ---- the scripted peer ---------------------------------------------------------

interface Pkt {
  type: number;
  first: number;
  body: Buffer;
  /** hal-independent receive time (Date.now()). */
  at: number;
  /** PUBLISH / PUBACK / SUBSCRIBE packet id (0 when none). */
  id: number;
  qos: number;
  dup: boolean;
  topic: string;
  payload: Buffer;
  /** SUBSCRIBE: [topic, qos] pairs. */
  subs: [string, number][];
  connect?: { protocol: string; level: number; flags: number; keepalive: number; clientId: string; willTopic: string; willPayload: Buffer; username: string; password: string };
  taken: boolean;
}

function parsePacket(first: number, body: Buffer): Pkt {
  const type = first >> 4;
  const p: Pkt = { type, first, body, at: Date.now(), id: 0, qos: 0, dup: false, topic: '', payload: Buffer.alloc(0), subs: [], taken: false };
  const str = (at: number): [string, number] => {
    const n = body.readUInt16BE(at);
    return [body.toString('utf8', at + 2, at + 2 + n), at + 2 + n];
  };
  if (type === PUBLISH) {
    p.qos = (first >> 1) & 3;
    p.dup = (first & 8) !== 0;
    let at: number;
    [p.topic, at] = str(0);
    if (p.qos) {
      p.id = body.readUInt16BE(at);
      at += 2;
    }
    p.payload = Buffer.from(body.subarray(at));
  } else if (type === PUBACK) {
    p.id = body.readUInt16BE(0);
  } else if (type === SUBSCRIBE) {
    p.id = body.readUInt16BE(0);
    let at = 2;
    while (at < body.length) {
      let t: string;
      [t, at] = str(at);
      p.subs.push([t, body[at++]]);
    }
  } else if (type === CONNECT) {
    let at: number;
    let protocol: string, clientId: string, willTopic: string, username: string, password: string;
    [protocol, at] = str(0);
    const level = body[at];
    const flags = body[at + 1];
    const keepalive = body.readUInt16BE(at + 2);
    at += 4;
    [clientId, at] = str(at);
    [willTopic, at] = str(at);
    const wl = body.readUInt16BE(at);
    const willPayload = Buffer.from(body.subarray(at + 2, at + 2 + wl));
    at += 2 + wl;
    [username, at] = str(at);
    [password, at] = str(at);
    p.connect = { protocol, level, flags, keepalive, clientId, willTopic, willPayload, username, password };
  }
  return p;
}

interface Behaviour {
  /** CONNACK return code sent on CONNECT, or null to send none (the test scripts it). */
  connack: number | null;
  suback: boolean;
  /** The return code of each filter in SUBACK (1 when not set; 128 refuses). */
  subackCode?: number;
  puback: boolean;
  pingresp: boolean;
}

class PeerConn {
  readonly packets: Pkt[] = [];
  readonly openedAt = Date.now();
  closedAt = -1;
  /** True when this side (the peer) cut the link. */
  cutByPeer = false;
  private buf = Buffer.alloc(0);

  constructor(readonly socket: Socket, readonly index: number, private readonly peer: Peer) {
    socket.setNoDelay(true);
    socket.on('data', (d) => this.onData(d));
    socket.on('error', () => {});
    socket.once('close', () => (this.closedAt = Date.now()));
  }

  get closed(): boolean {
    return this.closedAt >= 0;
  }

  write(b: Buffer | number[]): void {
    if (!this.socket.destroyed) this.socket.write(Buffer.from(b));
  }

  /** Writes `b` in pieces of `step` bytes (or random 1..step when `r` is given), `delay` ms apart. */
  async dribble(b: Buffer, step = 1, delay = 3, r?: () => number): Promise<void> {
    for (let at = 0; at < b.length && !this.socket.destroyed; ) {
      const n = r ? 1 + Math.floor(r() * step) : step;
      this.write(b.subarray(at, at + n));
      at += n;
      await sleep(delay);
    }
  }

  cut(): void {
    this.cutByPeer = true;
    this.socket.destroy();
  }

  /** The next packet of `type` not yet taken (already received or future). */
  next(type: number, ms = 5000): Promise<Pkt> {
    return until(
      () => {
        const p = this.packets.find((x) => !x.taken && x.type === type);
        if (p) p.taken = true;
        return p;
      },
      ms,
      'packet type ' + type + ' on connection ' + this.index,
    );
  }

  all(type: number): Pkt[] {
    return this.packets.filter((p) => p.type === type);
  }

  waitClosed(ms = 5000): Promise<number> {
    return until(() => (this.closed ? this.closedAt : 0), ms, 'connection ' + this.index + ' to close');
  }

  private onData(d: Buffer): void {
    this.buf = Buffer.concat([this.buf, d]);
    for (;;) {
      if (this.buf.length < 2) return;
      let len = 0;
      let mul = 1;
      let q = 1;
      let complete = false;
      while (q < this.buf.length && q < 5) {
        const b = this.buf[q++];
        len += (b & 127) * mul;
        mul *= 128;
        if (!(b & 128)) {
          complete = true;
          break;
        }
      }
      if (!complete || q + len > this.buf.length) return;
      const p = parsePacket(this.buf[0], Buffer.from(this.buf.subarray(q, q + len)));
      this.buf = this.buf.subarray(q + len);
      this.packets.push(p);
      this.respond(p);
    }
  }

  private respond(p: Pkt): void {
    const b = this.peer.behaviour;
    if (p.type === CONNECT && b.connack !== null) this.write(connack(b.connack));
    else if (p.type === SUBSCRIBE && b.suback) this.write(frame(SUBACK << 4, [p.id >> 8, p.id & 255, ...p.subs.map(() => b.subackCode ?? 1)]));
    else if (p.type === PUBLISH && p.qos === 1 && b.puback) this.write(frame(PUBACK << 4, [p.id >> 8, p.id & 255]));
    else if (p.type === PINGREQ && b.pingresp) this.write([PINGRESP << 4, 0]);
    this.peer.onPacket?.(this, p);
  }
}

class Peer {
  readonly conns: PeerConn[] = [];
  behaviour: Behaviour = { connack: 0, suback: true, puback: true, pingresp: true };
  onPacket?: (c: PeerConn, p: Pkt) => void;
  port = 0;
  private server: Server = createServer();

  static async start(b: Partial<Behaviour> = {}): Promise<Peer> {
    const peer = new Peer();
    Object.assign(peer.behaviour, b);
    peer.server.on('connection', (s) => peer.conns.push(new PeerConn(s, peer.conns.length, peer)));
    await new Promise<void>((resolve) => peer.server.listen(0, '127.0.0.1', resolve));
    peer.port = (peer.server.address() as { port: number }).port;
    return peer;
  }

  /** Connection number `i` (0-based), once it has sent its CONNECT. */
  async conn(i: number, ms = 5000): Promise<PeerConn> {
    const c = await until(() => this.conns[i], ms, 'connection ' + i);
    await until(() => c.packets.some((p) => p.type === CONNECT), ms, 'CONNECT on connection ' + i);
    return c;
  }

  async close(): Promise<void> {
    for (const c of this.conns) c.socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

// ---- the client under test -------------------------------------------------------

interface Harness {
  client: MqttClient;
  hal: NodeHal;
  opts: MqttOptions;
  messages: { topic: string; payload: Buffer }[];
  /** 'connected' / 'disconnected' in order. */
  events: string[];
}

let seq = 0;

describe('firmware MQTT client on the Node HAL', function () {
  this.timeout(20000);
  const cleanups: (() => void | Promise<void>)[] = [];
  const uncaught: unknown[] = [];

  afterEach(async () => {
    while (cleanups.length) {
      const fn = cleanups.pop() as () => void | Promise<void>;
      try {
        await fn();
      } catch {
        // best effort: keep closing the rest
      }
    }
    const crashes = uncaught.splice(0);
    assert.deepEqual(crashes, [], 'no exception escaped into the HAL');
  });

  function harness(port: number, over: Partial<MqttOptions> = {}, events: Partial<MqttEvents> = {}): Harness {
    const id = 'dev-' + ++seq + '-' + process.pid;
    const opts: MqttOptions = {
      clientId: id,
      username: 'user-' + id,
      password: 'secret',
      willTopic: 'will/' + id,
      willPayload: utf8('offline'),
      subscriptions: ['cmd/' + id, 'all/#'],
      keepalive: 60,
      backoffMin: 20,
      backoffMax: 200,
      queueMax: 16,
      inflightMax: 4,
      ackTimeout: 5000,
      retries: 3,
      maxPacket: 4096,
      ...over,
    };
    const hal = createNodeHal({ host: '127.0.0.1', port, flash: new MemoryFlash(emptyFlash(1024)), onUncaught: (e) => uncaught.push(e) });
    const h: Harness = { client: undefined as unknown as MqttClient, hal, opts, messages: [], events: [] };
    h.client = new MqttClient(hal, opts, {
      connected: () => h.events.push('connected'),
      message: (topic, payload) => h.messages.push({ topic, payload: Buffer.from(payload) }),
      disconnected: () => h.events.push('disconnected'),
      ...events,
    });
    cleanups.push(() => {
      h.client.stop();
      hal.dispose();
    });
    return h;
  }

  /** A peer, a client on it, and the client connected: how most tests here begin. */
  async function connectedHarness(opts?: Parameters<typeof harness>[1], peerOpts?: Parameters<typeof peer>[0]) {
    const p = await peer(peerOpts);
    const h = harness(p.port, opts);
    h.client.start();
    const c = await p.conn(0);
    await until(() => h.client.connected, 2000, 'connected');
    return { p, h, c };
  }

  async function peer(b: Partial<Behaviour> = {}): Promise<Peer> {
    const p = await Peer.start(b);
    cleanups.push(() => p.close());
    return p;
  }

  const connectedCount = (h: Harness) => h.events.filter((e) => e === 'connected').length;

  /** A done callback that records its outcome. */
  function recorder(): { done: Done; results: (Error | null)[] } {
    const results: (Error | null)[] = [];
    return { done: (err) => results.push(err), results };
  }

  // ---- connecting ---------------------------------------------------------------------

  describe('connecting', () => {
    it('sends CONNECT (3.1.1, clean session, QoS 1 will, credentials, keepalive) and then SUBSCRIBE at QoS 1', async () => {
      const p = await peer();
      const h = harness(p.port, { keepalive: 17 });
      assert.equal(h.client.status, 0);
      assert.equal(h.client.connected, false);
      h.client.start();
      assert.equal(h.client.status, 1, 'connecting');
      const c = await p.conn(0);
      const connect = (await c.next(CONNECT)).connect!;
      assert.deepEqual(connect, {
        protocol: 'MQTT', level: 4, flags: 0xce, keepalive: 17, clientId: h.opts.clientId, willTopic: h.opts.willTopic,
        willPayload: utf8('offline'), username: h.opts.username, password: 'secret',
      });
      const sub = await c.next(SUBSCRIBE);
      assert.equal(sub.first, 0x82);
      assert.deepEqual(sub.subs, [['cmd/' + h.opts.clientId, 1], ['all/#', 1]]);
      assert.ok(sub.id > 0);
      await until(() => h.client.connected, 2000, 'connected');
      assert.equal(h.client.status, 2);
      assert.deepEqual(h.events, ['connected']);
      assert.equal(h.client.stats.attempts, 1);
    });
  });

  // ---- framing ----------------------------------------------------------------------

  describe('framing', () => {
    it('reassembles CONNACK and PUBLISH frames written one byte at a time', async () => {
      const p = await peer({ connack: null });
      const h = harness(p.port);
      h.client.start();
      const c = await p.conn(0);
      const ack = connack(0);
      await c.dribble(ack.subarray(0, 3), 1, 5);
      await sleep(30);
      assert.equal(h.client.connected, false, 'not connected on 3 of 4 CONNACK bytes');
      c.write(ack.subarray(3));
      await until(() => h.client.connected, 2000, 'connected');
      await c.next(SUBSCRIBE); // SUBACK went out already; nothing else will interleave below
      const r = prng(7);
      const big = Buffer.from(Array.from({ length: 3000 }, () => Math.floor(r() * 256)));
      await c.dribble(publishFrame('split/one', 'hello'), 1, 3);
      await c.dribble(publishFrame('split/two', 'wörld ✓', 1, 0x0102), 1, 3);
      await c.dribble(publishFrame('split/big', big), 200, 1, r); // 3 kB in random pieces: the receive buffer grows
      await c.dribble(publishFrame('split/after', 'x'), 1, 3);
      await until(() => h.messages.length === 4, 3000, '4 messages');
      assert.deepEqual(h.messages.map((m) => m.topic), ['split/one', 'split/two', 'split/big', 'split/after']);
      assert.equal(h.messages[0].payload.toString(), 'hello');
      assert.equal(h.messages[1].payload.toString(), 'wörld ✓');
      assert.ok(h.messages[2].payload.equals(big));
      assert.equal(h.messages[3].payload.toString(), 'x');
      const ack2 = await c.next(PUBACK);
      assert.equal(ack2.id, 0x0102);
      assert.equal(h.client.stats.protocolErrors, 0);
      assert.equal(c.closed, false);
    });

    it('delivers several packets packed into one chunk, in order, and a packet split across the next chunks', async () => {
      const p = await peer({ connack: null });
      const h = harness(p.port);
      p.onPacket = (conn, pkt) => {
        if (pkt.type === CONNECT)
          conn.write(Buffer.concat([connack(0), publishFrame('pack/1', 'one'), publishFrame('pack/2', 'two', 1, 0x1234), publishFrame('pack/3', '')]));
      };
      h.client.start();
      const c = await p.conn(0);
      await until(() => h.messages.length === 3, 3000, '3 messages');
      assert.deepEqual(h.events, ['connected']);
      assert.deepEqual(
        h.messages.map((m) => [m.topic, m.payload.toString()]),
        [['pack/1', 'one'], ['pack/2', 'two'], ['pack/3', '']],
      );
      assert.equal((await c.next(PUBACK)).id, 0x1234);
      // Next: [P4 whole + 3 bytes of P5], then [rest of P5 + P6].
      await c.next(SUBSCRIBE);
      const p4 = publishFrame('pack/4', 'four');
      const p5 = publishFrame('pack/5', 'five', 1, 0xfffe);
      const p6 = publishFrame('pack/6', 'six');
      c.write(Buffer.concat([p4, p5.subarray(0, 3)]));
      await sleep(30);
      c.write(Buffer.concat([p5.subarray(3), p6]));
      await until(() => h.messages.length === 6, 3000, '6 messages');
      assert.deepEqual(h.messages.slice(3).map((m) => [m.topic, m.payload.toString()]), [['pack/4', 'four'], ['pack/5', 'five'], ['pack/6', 'six']]);
      assert.equal(h.client.stats.protocolErrors, 0);
    });

    it('acknowledges a QoS 1 PUBLISH from the peer with a PUBACK carrying its packet id', async () => {
      const { p, h, c } = await connectedHarness();
      for (const id of [1, 0x1234, 0xabcd, 0xffff]) {
        c.write(publishFrame('q1/' + id, 'p' + id, 1, id));
        const ack = await c.next(PUBACK);
        assert.deepEqual([...ack.body], [id >> 8, id & 255]);
        assert.equal(ack.first, 0x40);
      }
      // QoS 0 gets no PUBACK.
      c.write(publishFrame('q0', 'zero'));
      await until(() => h.messages.length === 5, 2000, '5 messages');
      await sleep(50);
      assert.equal(c.all(PUBACK).length, 4);
      assert.deepEqual(h.messages.map((m) => m.topic), ['q1/1', 'q1/4660', 'q1/43981', 'q1/65535', 'q0']);
    });

    it('a packet before CONNACK, or a QoS 2 PUBLISH, is a protocol error that closes the link', async () => {
      const p = await peer({ connack: null });
      const h = harness(p.port);
      p.onPacket = (conn, pkt) => {
        if (pkt.type !== CONNECT) return;
        if (conn.index === 0) conn.write(publishFrame('too/early', 'x'));
        else conn.write(Buffer.concat([connack(0), frame((PUBLISH << 4) | 4, [0, 1, 0x61, 0, 1, 0x78])]));
      };
      h.client.start();
      const c0 = await p.conn(0);
      await c0.waitClosed();
      const c1 = await p.conn(1);
      await c1.waitClosed();
      assert.equal(c0.cutByPeer || c1.cutByPeer, false, 'the client closed both');
      assert.equal(h.client.stats.protocolErrors, 2);
      assert.equal(h.messages.length, 0);
      await p.conn(2); // and it keeps trying
    });
  });

  // ---- limits -------------------------------------------------------------------------

  describe('limits', () => {
    it('accepts a packet of exactly maxPacket; a remaining length over maxPacket closes the link, and the client reconnects', async () => {
      const { p, h, c: c0 } = await connectedHarness({ maxPacket: 1024 });
      await c0.next(SUBSCRIBE);
      // Remaining length 1024: 2 + 6 ('lim/ok') + 1016 payload bytes.
      const fits = publishFrame('lim/ok', Buffer.alloc(1016, 0x61));
      assert.deepEqual([...fits.subarray(1, 3)], varint(1024));
      c0.write(fits);
      await until(() => h.messages.length === 1, 2000, 'the 1024-byte packet');
      assert.equal(h.messages[0].payload.length, 1016);
      // Claims 1025: only the header is sent, the client must not wait for the body.
      c0.write([PUBLISH << 4, ...varint(1025)]);
      await c0.waitClosed(2000);
      assert.equal(c0.cutByPeer, false);
      assert.equal(h.client.stats.protocolErrors, 1);
      const c1 = await p.conn(1, 3000);
      await c1.next(CONNECT);
      await until(() => connectedCount(h) === 2, 3000, 'connected again');
      assert.deepEqual(h.events, ['connected', 'disconnected', 'connected']);
      assert.equal(h.client.stats.disconnects, 1);
      assert.equal(h.messages.length, 1);
    });

    it('a 5-byte remaining length closes the link (protocol error) and the client reconnects', async () => {
      const p = await peer();
      const h = harness(p.port, { maxPacket: 1 << 30 }); // so only the length's own encoding can be at fault
      h.client.start();
      const c0 = await p.conn(0);
      await until(() => h.client.connected, 2000, 'connected');
      await c0.next(SUBSCRIBE);
      c0.write([PUBLISH << 4, 0xff, 0xff, 0xff, 0xff, 0x01]);
      await c0.waitClosed(2000);
      assert.equal(c0.cutByPeer, false);
      assert.equal(h.client.stats.protocolErrors, 1);
      await p.conn(1, 3000);
      await until(() => connectedCount(h) === 2, 3000, 'connected again');
      assert.equal(h.client.stats.attempts, 2);
    });
  });

  // ---- QoS 1 --------------------------------------------------------------------------

  describe('QoS 1 publishing', () => {
    it('retransmits an unacknowledged publish with DUP and the same id, then gives up after `retries`', async function () {
      const { p, h, c } = await connectedHarness({ ackTimeout: 200, retries: 2 }, { puback: false });
      const rec = recorder();
      assert.equal(h.client.publish('up/1', utf8('payload'), 1, rec.done), true);
      const first = await c.next(PUBLISH);
      assert.equal(first.first, 0x32, 'QoS 1, no DUP');
      assert.ok(first.id > 0);
      assert.equal(h.client.pending(), 1);
      const again1 = await c.next(PUBLISH, 4000);
      const again2 = await c.next(PUBLISH, 4000);
      for (const again of [again1, again2]) {
        assert.equal(again.first, 0x3a, 'QoS 1 with DUP');
        assert.equal(again.id, first.id);
        assert.equal(again.topic, 'up/1');
        assert.equal(again.payload.toString(), 'payload');
      }
      assert.ok(again1.at - first.at >= 150, 'not before ackTimeout');
      await until(() => rec.results.length === 1, 4000, 'done');
      assert.ok(rec.results[0] instanceof Error);
      assert.equal(h.client.stats.retransmit, 2);
      assert.equal(h.client.stats.unack, 1);
      assert.equal(h.client.stats.transmit, 3);
      assert.equal(h.client.pending(), 0);
      await sleep(1300); // no further resend once given up
      assert.equal(c.all(PUBLISH).length, 3);
      assert.equal(rec.results.length, 1, 'done runs once');
      assert.equal(c.closed, false, 'giving up does not cost the link');
    });

    it('an acknowledged publish calls done(null) once, with no retransmission', async () => {
      const { p, h, c } = await connectedHarness({ ackTimeout: 200, retries: 2 });
      const rec = recorder();
      h.client.publish('up/ok', utf8('x'), 1, rec.done);
      await until(() => rec.results.length === 1, 2000, 'done');
      assert.equal(rec.results[0], null);
      assert.equal(h.client.pending(), 0);
      await sleep(1300); // past a housekeeping tick
      assert.equal(c.all(PUBLISH).length, 1);
      assert.deepEqual(rec.results, [null]);
      assert.equal(h.client.stats.retransmit, 0);
      assert.equal(h.client.stats.unack, 0);
    });

    it('keeps at most inflightMax QoS 1 publishes unacknowledged, sent in order', async () => {
      const { p, h, c } = await connectedHarness({ inflightMax: 2 }, { puback: false });
      const rec = recorder();
      for (let i = 0; i < 5; i++) h.client.publish('seq', utf8(String(i)), 1, rec.done);
      await c.next(PUBLISH);
      await c.next(PUBLISH);
      await sleep(100);
      assert.equal(c.all(PUBLISH).length, 2, 'two in flight');
      assert.equal(h.client.pending(), 5);
      // Ack them one by one; each ack lets one more out.
      for (let i = 0; i < 5; i++) {
        const pub = c.all(PUBLISH)[i];
        c.write(frame(PUBACK << 4, [pub.id >> 8, pub.id & 255]));
        await until(() => rec.results.length === i + 1, 2000, 'done ' + i);
        if (i + 2 < 5) await c.next(PUBLISH);
        assert.ok(c.all(PUBLISH).length <= i + 3, 'never more than 2 unacknowledged');
      }
      assert.deepEqual(c.all(PUBLISH).map((x) => x.payload.toString()), ['0', '1', '2', '3', '4']);
      assert.equal(new Set(c.all(PUBLISH).map((x) => x.id)).size, 5, 'distinct packet ids');
      assert.deepEqual(rec.results, [null, null, null, null, null]);
    });

    it('resends unacknowledged QoS 1 publishes with DUP, in order, after a reconnect', async () => {
      const { p, h, c: c0 } = await connectedHarness(undefined, { puback: false });
      const rec = recorder();
      for (const s of ['a', 'b', 'c']) h.client.publish('re/' + s, utf8(s), 1, rec.done);
      const sent = [await c0.next(PUBLISH), await c0.next(PUBLISH), await c0.next(PUBLISH)];
      assert.ok(sent.every((x) => x.first === 0x32));
      // The link dies (the broker side cuts it) before any PUBACK.
      p.behaviour.puback = true;
      c0.cut();
      await until(() => h.events.includes('disconnected'), 2000, 'disconnected');
      assert.equal(h.client.pending(), 3);
      assert.deepEqual(rec.results, []);
      // A QoS 0 message queued while down goes after them, without DUP.
      const rec0 = recorder();
      h.client.publish('re/zero', utf8('z'), 0, rec0.done);
      const c1 = await p.conn(1, 3000);
      const again = [await c1.next(PUBLISH), await c1.next(PUBLISH), await c1.next(PUBLISH), await c1.next(PUBLISH)];
      assert.deepEqual(again.slice(0, 3).map((x) => [x.first, x.id, x.topic, x.payload.toString()]), sent.map((x) => [0x3a, x.id, x.topic, x.payload.toString()]));
      assert.deepEqual([again[3].first, again[3].topic], [0x30, 're/zero']);
      await until(() => rec.results.length === 3, 2000, 'three acknowledged');
      assert.deepEqual(rec.results, [null, null, null]);
      assert.deepEqual(rec0.results, [null]);
      assert.equal(h.client.stats.retransmit, 3);
      assert.equal(h.client.stats.disconnects, 1);
      assert.equal(h.client.pending(), 0);
    });

    it('gives up a message after its retries even when each try ends the link (a message the broker ends the session for)', async () => {
      const p = await peer({ puback: false });
      // The broker cuts the link whenever the poison message arrives; everything else is acknowledged.
      p.onPacket = (conn, pkt) => {
        if (pkt.type === PUBLISH && pkt.topic === 'poison') conn.cut();
      };
      const h = harness(p.port, { retries: 3, backoffMin: 10, backoffMax: 20 });
      h.client.start();
      const rec = recorder();
      h.client.publish('poison', utf8('NaN'), 1, rec.done);
      // Before, it went back to the head of the queue on every link, for ever.
      await until(() => rec.results.length === 1, 5000, 'given up');
      assert.equal(rec.results[0]?.message, 'not acknowledged');
      assert.equal(p.conns.flatMap((c) => c.all(PUBLISH)).filter((x) => x.topic === 'poison').length, 4, 'sent once and retried 3 times');
      p.behaviour.puback = true;
      const after = recorder();
      h.client.publish('fine', utf8('ok'), 1, after.done);
      await until(() => after.results.length === 1, 5000, 'the next message');
      assert.deepEqual(after.results, [null]);
      assert.equal(h.client.stats.unack, 1);
    });

    it('sends what is for the new link (ONCE: the hello, then the status) ahead of what waits from the last one', async () => {
      const p = await peer({ puback: false });
      let links = 0;
      // As the agent does: the hello and the status are queued when the link is up (before, behind the resent events).
      const h = harness(p.port, {}, {
        connected: () => {
          h.events.push('connected');
          h.client.publish('hello', utf8('link ' + ++links), ONCE | 1, null);
          h.client.publish('status', utf8('up'), ONCE | 1, null);
        },
      });
      h.client.start();
      const c0 = await p.conn(0);
      for (const s of ['a', 'b', 'c']) h.client.publish('evt/' + s, utf8(s), 1, null);
      for (let i = 0; i < 4; i++) await c0.next(PUBLISH); // hello, status, evt/a, evt/b: inflightMax
      p.behaviour.puback = true;
      c0.cut();
      const c1 = await p.conn(1, 3000);
      const order = [];
      for (let i = 0; i < 5; i++) order.push((await c1.next(PUBLISH)).topic);
      assert.deepEqual(order, ['hello', 'status', 'evt/a', 'evt/b', 'evt/c']);
    });

    it('sends what the connected handler queued at once, even when the handler then throws (it waited for the next housekeeping, a second)', async () => {
      const p = await peer();
      const h = harness(p.port, {}, {
        connected: () => {
          h.client.publish('hello', utf8('first'), ONCE | 1, null);
          throw new Error('the app broke after queueing');
        },
      });
      h.client.start();
      const c0 = await p.conn(0);
      const t0 = Date.now();
      assert.equal((await c0.next(PUBLISH)).topic, 'hello');
      assert.ok(Date.now() - t0 < 500, 'sent at once, not at the next housekeeping');
      await until(() => uncaught.length > 0, 2000, 'the handler\'s exception reported');
      assert.match(String((uncaught.splice(0)[0] as Error).message), /the app broke/);
    });

    it('gives up, not resends, a message of one link only (ONCE) when that link drops', async () => {
      const { p, h, c: c0 } = await connectedHarness(undefined, { puback: false });
      const once = recorder();
      const kept = recorder();
      h.client.publish('hello', utf8('link 1'), ONCE | 1, once.done);
      h.client.publish('event', utf8('e'), 1, kept.done);
      await c0.next(PUBLISH);
      await c0.next(PUBLISH);
      p.behaviour.puback = true;
      c0.cut();
      const c1 = await p.conn(1, 3000);
      const again = await c1.next(PUBLISH);
      assert.equal(again.topic, 'event');
      await until(() => kept.results.length === 1, 2000, 'acknowledged');
      assert.equal(once.results[0]?.message, 'not acknowledged');
      assert.equal(c1.all(PUBLISH).filter((x) => x.topic === 'hello').length, 0);
    });

    it('drop() cuts the link like a dead one: in-flight messages are resent with DUP on the next link', async () => {
      const { p, h, c: c0 } = await connectedHarness(undefined, { puback: false });
      const rec = recorder();
      h.client.publish('drop/1', utf8('1'), 1, rec.done);
      const first = await c0.next(PUBLISH);
      p.behaviour.puback = true;
      h.client.drop();
      await c0.waitClosed();
      const c1 = await p.conn(1, 3000);
      const again = await c1.next(PUBLISH);
      assert.deepEqual([again.first, again.id], [0x3a, first.id]);
      await until(() => rec.results.length === 1, 2000, 'done');
      assert.deepEqual(rec.results, [null]);
    });
  });

  // ---- keepalive ------------------------------------------------------------------------

  describe('keepalive', () => {
    it('sends PINGREQ when idle, and measures the round trip on PINGRESP', async () => {
      const { p, h, c } = await connectedHarness({ keepalive: 1 });
      const sub = await c.next(SUBSCRIBE);
      const ping = await c.next(PINGREQ, 3000);
      assert.deepEqual([ping.first, ping.body.length], [0xc0, 0]);
      assert.ok(ping.at - sub.at >= 400, 'idle for about half the keepalive first (' + (ping.at - sub.at) + ' ms)');
      await until(() => h.client.stats.roundTrip > 0, 2000, 'roundTrip');
      assert.ok(h.client.stats.roundTrip < 1000, 'roundTrip ' + h.client.stats.roundTrip);
      await c.next(PINGREQ, 3000); // and again
      assert.equal(c.closed, false);
      assert.equal(h.client.stats.protocolErrors, 0);
      assert.deepEqual(h.events, ['connected']);
    });

    it('sends no PINGREQ while packets both ways keep the link busy', async () => {
      const { p, h, c } = await connectedHarness({ keepalive: 1 });
      const until2500 = Date.now() + 2500;
      while (Date.now() < until2500) {
        h.client.publish('busy', utf8('.'), 1, null);
        await sleep(100);
      }
      assert.equal(c.all(PINGREQ).length, 0);
      assert.ok(c.all(PUBLISH).length >= 10);
    });

    it('finds a half-open link while it keeps sending: PINGREQ once the broker has said nothing for half the keepalive', async () => {
      // Before, only a link idle on the sending side was pinged: one sending every 100 ms into a dead peer stayed "connected".
      const { p, h, c } = await connectedHarness({ keepalive: 1 }, { puback: false, pingresp: false });
      let sending = true;
      void (async () => {
        for (let i = 0; sending && i < 100; i++) {
          h.client.publish('busy', utf8('.'), 0, null);
          await sleep(100);
        }
      })();
      try {
        await c.next(PINGREQ, 3000);
        await c.waitClosed(4000);
        assert.equal(c.cutByPeer, false, 'the client closed it');
        await until(() => h.events.includes('disconnected'), 2000, 'disconnected');
      } finally {
        sending = false;
      }
    });

    it('goes on with its housekeeping after a write that throws: the link is closed, and the next one pinged and served', async () => {
      const { p, h, c: c0 } = await connectedHarness({ keepalive: 1, ackTimeout: 300 });
      const send = h.hal.net.send.bind(h.hal.net);
      let failed = 0;
      h.hal.net.send = (bytes) => {
        if (bytes[0] === 0xc0 && failed === 0) {
          failed++;
          throw new Error('the radio is off');
        }
        send(bytes);
      };
      // Before, the failing PINGREQ ended the housekeeping timer: no ping, no retransmission, no dead-link check ever again.
      await c0.waitClosed(4000);
      assert.equal(failed, 1);
      const c1 = await p.conn(1, 3000);
      await until(() => connectedCount(h) === 2, 3000, 'connected again');
      await c1.next(PINGREQ, 3000);
      const rec = recorder();
      h.client.publish('after', utf8('x'), 1, rec.done);
      await until(() => rec.results.length === 1, 3000, 'acknowledged');
      assert.deepEqual(rec.results, [null]);
    });

    it('closes a link whose peer stops answering PINGREQ within ~1.5 × keepalive, and reconnects', async () => {
      const { p, h, c: c0 } = await connectedHarness({ keepalive: 1 }, { pingresp: false });
      const ping = await c0.next(PINGREQ, 3000);
      const closedAt = await c0.waitClosed(4000);
      assert.equal(c0.cutByPeer, false, 'the client closed it');
      const waited = closedAt - ping.at;
      assert.ok(waited >= 400, 'not before half the keepalive (' + waited + ' ms)');
      assert.ok(waited <= 1500 + 750, 'within ~1.5 × keepalive of the unanswered PINGREQ (' + waited + ' ms)');
      assert.equal(h.client.stats.protocolErrors, 1);
      assert.equal(h.client.stats.roundTrip, 0, 'no PINGRESP, no round trip');
      p.behaviour.pingresp = true;
      await p.conn(1, 3000);
      await until(() => connectedCount(h) === 2, 3000, 'connected again');
      assert.deepEqual(h.events, ['connected', 'disconnected', 'connected']);
    });
  });

  // ---- SUBACK and handlers ----------------------------------------------------------------

  describe('SUBACK and handlers', () => {
    it('drops a link whose SUBACK refuses a filter (128), says so in refusedCode, and tries again after the backoff', async () => {
      // Before, the refusal was not read: "connected", and no request could ever reach the device.
      const p = await peer({ subackCode: 128 });
      const h = harness(p.port, { backoffMin: 100, backoffMax: 400 });
      h.client.start();
      const c0 = await p.conn(0);
      await c0.next(SUBSCRIBE);
      await c0.waitClosed(2000);
      assert.equal(c0.cutByPeer, false, 'the client closed it');
      assert.equal(h.client.stats.refusedCode, 128);
      assert.equal(h.client.connected, false);
      p.behaviour.subackCode = 1;
      await p.conn(1, 3000);
      await until(() => h.client.connected && connectedCount(h) >= 2, 3000, 'connected once granted');
    });

    it('does not handle a packet twice when its handler throws: the next packets are handled once each', async () => {
      const p = await peer();
      const seen: string[] = [];
      const h = harness(p.port, {}, {
        message: (topic) => {
          seen.push(topic);
          if (topic === 'boom') throw new Error('handler broke');
        },
      });
      h.client.start();
      const c = await p.conn(0);
      await until(() => h.client.connected, 2000, 'connected');
      // Three packets in one chunk: the first one's handler throws (into the host, as the HAL's callback would).
      const pub = (topic: string) => publishFrame(topic, 'x');
      c.write(Buffer.concat([pub('boom'), pub('two'), pub('three')]));
      await until(() => seen.length >= 1, 2000, 'the first');
      c.write(pub('four'));
      await until(() => seen.includes('four'), 2000, 'the next chunk');
      await sleep(50);
      // Before, the packets after the one that threw stayed in the buffer, and each chunk handled "boom" again.
      assert.deepEqual(seen, ['boom', 'two', 'three', 'four']);
      assert.equal(h.client.connected, true);
      // The handler's exception reached the host, once; the agent's own handler reports it instead (cloud.ts).
      assert.equal(uncaught.splice(0).length, 1);
    });
  });

  // ---- CONNACK --------------------------------------------------------------------------

  describe('CONNACK', () => {
    it('a refused CONNACK (return code 5) closes the link, records the code and retries with growing backoff', async () => {
      const p = await peer({ connack: 5 });
      const h = harness(p.port, { backoffMin: 100, backoffMax: 1000 });
      p.onPacket = (conn, pkt) => {
        if (pkt.type === CONNECT && conn.index === 1) p.behaviour.connack = 0; // the third attempt is accepted
      };
      h.client.start();
      const c0 = await p.conn(0);
      await c0.waitClosed();
      assert.equal(c0.cutByPeer, false, 'the client closed it');
      assert.equal(h.client.stats.refusedCode, 5);
      assert.equal(h.client.connected, false);
      const c1 = await p.conn(1, 3000);
      await c1.waitClosed();
      const c2 = await p.conn(2, 3000);
      await until(() => h.client.connected, 2000, 'connected on the third attempt');
      assert.deepEqual(h.events, ['connected'], 'no connected/disconnected for refused attempts');
      assert.equal(h.client.stats.attempts, 3);
      assert.equal(h.client.stats.disconnects, 0);
      // After failure k the delay is in [bound/2, bound], bound = backoffMin × 2^k.
      const d1 = c1.openedAt - c0.closedAt;
      const d2 = c2.openedAt - c1.closedAt;
      assert.ok(d1 >= 100 - 15 && d1 <= 200 + 300, 'first delay ' + d1 + ' ms in [100, 200]');
      assert.ok(d2 >= 200 - 15 && d2 <= 400 + 300, 'second delay ' + d2 + ' ms in [200, 400]');
      assert.equal(c0.all(SUBSCRIBE).length + c1.all(SUBSCRIBE).length, 0, 'no SUBSCRIBE on a refused link');
    });

    it('closes a link that gets no CONNACK (10 s), sends nothing else meanwhile, and tries again', async function () {
      this.timeout(25000);
      const p = await peer({ connack: null });
      const h = harness(p.port, { keepalive: 1, backoffMin: 20, backoffMax: 200 });
      h.client.start();
      const c0 = await p.conn(0);
      const connectAt = c0.packets[0].at;
      const publishRec = recorder();
      h.client.publish('early', utf8('e'), 1, publishRec.done);
      const closedAt = await c0.waitClosed(15000);
      const waited = closedAt - connectAt;
      assert.equal(c0.cutByPeer, false, 'the client closed it');
      assert.ok(waited >= 9900 && waited <= 13000, 'closed after the CONNACK timeout (' + waited + ' ms)');
      assert.deepEqual(c0.packets.map((x) => x.type), [CONNECT], 'no PINGREQ, PUBLISH or SUBSCRIBE before CONNACK');
      assert.equal(h.client.status === 2, false);
      p.behaviour.connack = 0;
      const c1 = await p.conn(1, 3000);
      const pub = await c1.next(PUBLISH);
      assert.equal(pub.topic, 'early');
      await until(() => publishRec.results.length === 1, 2000, 'done');
      assert.deepEqual(publishRec.results, [null]);
      assert.equal(h.client.stats.attempts, 2);
    });
    it('gives up a connect the host never ends (no onOpen, no onClose) after 10 s: aborts it and tries again', async function () {
      this.timeout(25000);
      const p = await peer();
      const h = harness(p.port, { backoffMin: 20, backoffMax: 200 });
      // The host's first connect hangs (a SYN into a black hole) until the client closes it; the next ones are real.
      const net = h.hal.net;
      let hung: { onClose: () => void; openedAt: number; closedAt: number } | null = null;
      h.hal.net = {
        ...net,
        open(onOpen, onData, onClose) {
          if (hung) return net.open(onOpen, onData, onClose);
          hung = { onClose, openedAt: Date.now(), closedAt: 0 };
        },
        close() {
          if (hung && !hung.closedAt) {
            hung.closedAt = Date.now();
            return void setImmediate(hung.onClose);
          }
          net.close();
        },
      };
      h.client.start();
      await until(() => hung?.closedAt, 15000, 'the hung connect aborted');
      const waited = hung!.closedAt - hung!.openedAt;
      assert.ok(waited >= 9900 && waited <= 12000, 'aborted after the connect timeout (' + waited + ' ms)');
      await p.conn(0, 3000);
      await until(() => h.client.connected, 3000, 'connected on the next attempt');
      assert.equal(h.client.stats.attempts, 2);
    });

    it('stop() and start() while a connect is under way: one link, connected, its timeout not left behind', async () => {
      const p = await peer();
      const h = harness(p.port);
      h.client.start();
      h.client.stop();
      h.client.start();
      await until(() => h.client.connected, 3000, 'connected');
      await sleep(200);
      assert.equal(h.client.stats.attempts, 1);
      assert.equal(p.conns.length, 1);
    });
  });

  // ---- backoff ---------------------------------------------------------------------------

  describe('backoff', () => {
    it('against a refused port, delays grow exponentially from backoffMin to backoffMax, each in [bound/2, bound]', async () => {
      const port = await closedPort();
      const min = 25;
      const max = 400;
      const h = harness(port, { backoffMin: min, backoffMax: max });
      const opens: number[] = [];
      const closes: number[] = [];
      const net = h.hal.net;
      const open = net.open.bind(net);
      net.open = (onOpen, onData, onClose) => {
        opens.push(h.hal.clock.now());
        open(onOpen, onData, () => {
          closes.push(h.hal.clock.now());
          onClose();
        });
      };
      const started = Date.now();
      h.client.start();
      // Bounds 50, 100, 200, 400, 400, 400: at most 1.55 s of waiting.
      await until(() => opens.length >= 7, 4500, '7 attempts');
      h.client.stop();
      assert.ok(Date.now() - started < 5000);
      const seen: string[] = [];
      for (let k = 1; k < 7; k++) {
        const bound = Math.min(max, min * 2 ** k);
        const delay = opens[k] - closes[k - 1];
        seen.push(delay.toFixed(1) + '/' + bound);
        assert.ok(delay >= bound / 2 - 2, 'delay ' + k + ' = ' + delay + ' ms, at least ' + bound / 2 + ' (' + seen.join(' ') + ')');
        assert.ok(delay <= bound + 250, 'delay ' + k + ' = ' + delay + ' ms, about at most ' + bound + ' (' + seen.join(' ') + ')');
      }
      // Capped: the last three all waited at least backoffMax / 2.
      assert.ok(opens[6] - closes[5] >= max / 2 - 2 && opens[5] - closes[4] >= max / 2 - 2);
      assert.equal(h.client.stats.attempts, opens.length);
      assert.equal(h.client.stats.disconnects, 0);
      assert.deepEqual(h.events, [], 'never connected');
      // stop() ends the retrying.
      const after = opens.length;
      await sleep(max + 200);
      assert.equal(opens.length, after, 'no attempt after stop()');
    });

    it('after a link that was up drops, the first retry waits within [backoffMin/2, backoffMin]', async () => {
      const { p, h, c: c0 } = await connectedHarness({ backoffMin: 300, backoffMax: 5000 });
      c0.cut();
      const c1 = await p.conn(1, 3000);
      const d = c1.openedAt - c0.closedAt;
      assert.ok(d >= 150 - 15 && d <= 300 + 300, 'retry after ' + d + ' ms');
    });
  });

  // ---- the outbound queue ------------------------------------------------------------------

  describe('bounded outbound queue', () => {
    it('while down, drops the oldest QoS 0 first, refuses when only QoS 1 is left, and sends the rest in order once up', async () => {
      const p = await peer();
      const h = harness(p.port, { queueMax: 4, inflightMax: 2 });
      const recs: Record<string, ReturnType<typeof recorder>> = {};
      const pub = (name: string, qos: number): boolean => {
        recs[name] = recorder();
        return h.client.publish('q/' + name, utf8(name), qos, recs[name].done);
      };
      // Not started: everything queues.
      assert.equal(pub('A', 0), true);
      assert.equal(pub('B', 1), true);
      assert.equal(pub('C', 0), true);
      assert.equal(pub('D', 1), true);
      assert.equal(h.client.pending(), 4);
      assert.equal(h.client.stats.dropped, 0);
      assert.equal(pub('E', 1), true, 'makes room by dropping A');
      assert.equal(recs.A.results.length, 1);
      assert.ok(recs.A.results[0] instanceof Error);
      assert.equal(h.client.stats.dropped, 1);
      assert.equal(pub('F', 0), true, 'makes room by dropping C');
      assert.ok(recs.C.results[0] instanceof Error);
      assert.equal(pub('G', 1), true, 'makes room by dropping F');
      assert.ok(recs.F.results[0] instanceof Error);
      assert.equal(h.client.stats.dropped, 3);
      assert.equal(h.client.pending(), 4);
      // Only QoS 1 left: refused, whatever the new message's QoS.
      assert.equal(pub('H', 0), false);
      assert.equal(pub('I', 1), false);
      for (const n of ['H', 'I']) {
        assert.equal(recs[n].results.length, 1);
        assert.ok(recs[n].results[0] instanceof Error, n + ' refused with an error');
      }
      assert.equal(h.client.stats.dropped, 3, 'a refusal is not a drop');
      assert.equal(h.client.pending(), 4);
      for (const n of ['B', 'D', 'E', 'G']) assert.deepEqual(recs[n].results, [], n + ' still waiting');
      // A refusal with no callback is just false.
      assert.equal(h.client.publish('q/J', utf8('J'), 1, null), false);

      h.client.start();
      const c = await p.conn(0);
      await until(() => ['B', 'D', 'E', 'G'].every((n) => recs[n].results.length === 1), 3000, 'all acknowledged');
      assert.deepEqual(c.all(PUBLISH).map((x) => [x.topic, x.qos, x.dup]), [['q/B', 1, false], ['q/D', 1, false], ['q/E', 1, false], ['q/G', 1, false]]);
      for (const n of ['B', 'D', 'E', 'G']) assert.deepEqual(recs[n].results, [null]);
      assert.equal(h.client.pending(), 0);
      // Room again.
      assert.equal(pub('K', 0), true);
      await until(() => recs.K.results.length === 1, 2000, 'K written');
      assert.deepEqual(recs.K.results, [null]);
    });

    it('counts unacknowledged in-flight messages against queueMax', async () => {
      const { p, h, c } = await connectedHarness({ queueMax: 3, inflightMax: 4 }, { puback: false });
      const rec = recorder();
      for (let i = 0; i < 3; i++) assert.equal(h.client.publish('f/' + i, utf8('x'), 1, rec.done), true);
      await until(() => c.all(PUBLISH).length === 3, 2000, '3 sent');
      assert.equal(h.client.pending(), 3);
      assert.equal(h.client.publish('f/3', utf8('x'), 0, rec.done), false);
      assert.equal(rec.results.length, 1);
      assert.ok(rec.results[0] instanceof Error);
    });
  });

  // ---- stop ------------------------------------------------------------------------------

  describe('stop', () => {
    it('stop() sends DISCONNECT, closes the link and stops reconnecting; start() again reconnects', async () => {
      const { p, h, c: c0 } = await connectedHarness();
      h.client.stop();
      await c0.next(DISCONNECT, 2000);
      await c0.waitClosed();
      await until(() => h.client.status === 0, 2000, 'status 0');
      assert.equal(h.client.connected, false);
      assert.deepEqual(h.events, ['connected', 'disconnected']);
      await sleep(400); // > backoffMax
      assert.equal(p.conns.length, 1, 'no reconnect after stop()');
      h.client.start();
      await p.conn(1, 3000);
      await until(() => connectedCount(h) === 2, 2000, 'connected again');
    });

    // Regression: stop() between start() and the TCP connect completing used to leave the
    // connect running, and the "stopped" client connected. onOpen now closes a link nobody wants.
    it('stop() while the TCP connect is still in progress leaves the client disconnected', async () => {
      const p = await peer();
      const h = harness(p.port);
      h.client.start();
      h.client.stop(); // the socket cannot have connected yet
      await sleep(500);
      assert.equal(h.client.connected, false, 'not connected after stop()');
      assert.deepEqual(h.events, []);
      assert.equal(p.conns.filter((c) => !c.closed && c.packets.some((x) => x.type === CONNECT && !c.packets.some((y) => y.type === DISCONNECT))).length, 0, 'no live MQTT session at the peer');
    });

    // Regression: stop() wrote DISCONNECT and the Node HAL's close() destroyed the socket with it
    // still buffered, so the broker published the will after a clean stop. HalNet.close() now
    // flushes what was sent before closing (hal.ts).
    it('stop() right after a large publish still gets DISCONNECT to the peer', async () => {
      const { p, h, c: c0 } = await connectedHarness();
      c0.socket.pause(); // a slow reader: the client's socket buffers what it writes
      const rec = recorder();
      h.client.publish('big', Buffer.alloc(8 << 20, 0x55), 0, rec.done);
      h.client.stop();
      await sleep(100);
      c0.socket.resume();
      await c0.waitClosed(5000);
      assert.deepEqual(rec.results, [null], 'QoS 0 counts as sent once written');
      const types = c0.packets.map((x) => x.type);
      assert.ok(types.includes(DISCONNECT), 'the peer got DISCONNECT (got ' + types.join(',') + ')');
    });
  });

  // ---- against aedes: the will --------------------------------------------------------------

  describe('the will, against aedes', () => {
    let broker: TestBroker;
    let watcher: MqttJsClient;
    let wills: { topic: string; payload: string }[];

    beforeEach(async () => {
      broker = await startBroker();
      watcher = mqtt.connect({ host: '127.0.0.1', port: broker.port, clientId: 'watcher-' + ++seq, reconnectPeriod: 0 });
      await new Promise<void>((resolve, reject) => {
        watcher.once('connect', () => resolve());
        watcher.once('error', reject);
      });
      wills = [];
      watcher.on('message', (topic, payload) => wills.push({ topic, payload: payload.toString() }));
      await watcher.subscribeAsync('will/#', { qos: 1 });
      cleanups.push(async () => {
        await watcher.endAsync(true);
        await broker.close();
      });
    });

    /** Resolves when aedes has seen `id` go (after any will it publishes for it is on its way). */
    const gone = (id: string) =>
      new Promise<void>((resolve) => {
        const f = (c: { id: string }) => {
          if (c.id !== id) return;
          broker.aedes.removeListener('clientDisconnect', f);
          resolve();
        };
        broker.aedes.on('clientDisconnect', f);
      });

    async function connected(h: Harness): Promise<void> {
      h.client.start();
      await until(() => h.client.connected, 3000, 'connected to aedes');
    }

    it('stop() sends DISCONNECT, so aedes does not publish the will', async () => {
      const h = harness(broker.port, { backoffMin: 50, backoffMax: 200 });
      await connected(h);
      const left = gone(h.opts.clientId);
      h.client.stop();
      await left;
      await sleep(400);
      assert.equal(wills.length, 0, 'no will: ' + JSON.stringify(wills));
      // Positive control on the same watcher: a dropped client's will does arrive.
      const other = harness(broker.port, { backoffMin: 50, backoffMax: 200 });
      await connected(other);
      other.client.drop();
      await until(() => wills.length === 1, 3000, 'the other client\'s will');
      assert.equal(wills[0].topic, other.opts.willTopic);
    });

    it('drop() leaves without DISCONNECT: aedes publishes the will, and the client reconnects', async () => {
      const h = harness(broker.port, { backoffMin: 50, backoffMax: 200 });
      await connected(h);
      h.client.drop();
      await until(() => wills.length === 1, 3000, 'the will');
      assert.deepEqual(wills[0], { topic: h.opts.willTopic, payload: 'offline' });
      await until(() => connectedCount(h) === 2, 3000, 'connected again');
      assert.deepEqual(h.events, ['connected', 'disconnected', 'connected']);
    });

    it('a destroyed socket makes aedes publish the will', async () => {
      const h = harness(broker.port, { backoffMin: 50, backoffMax: 200 });
      await connected(h);
      const s = h.hal.socket();
      assert.ok(s, 'an open socket');
      s.destroy();
      await until(() => wills.length === 1, 3000, 'the will');
      assert.deepEqual(wills[0], { topic: h.opts.willTopic, payload: 'offline' });
      await until(() => connectedCount(h) === 2, 3000, 'connected again');
    });

    it('subscribes again on every connection: commands reach it after a reconnect', async () => {
      const h = harness(broker.port, { backoffMin: 50, backoffMax: 200 });
      const subscribed = () =>
        new Promise<void>((resolve) => {
          const f = (_subs: unknown, c: { id: string } | null) => {
            if (!c || c.id !== h.opts.clientId) return;
            broker.aedes.removeListener('subscribe', f);
            resolve();
          };
          broker.aedes.on('subscribe', f);
        });
      let sub = subscribed();
      await connected(h);
      await sub;
      await watcher.publishAsync('cmd/' + h.opts.clientId, 'one', { qos: 1 });
      await until(() => h.messages.length === 1, 3000, 'first command');
      sub = subscribed();
      h.client.drop();
      await sub;
      await watcher.publishAsync('all/x', 'two', { qos: 0 });
      await until(() => h.messages.length === 2, 3000, 'second command');
      assert.deepEqual(h.messages.map((m) => [m.topic, m.payload.toString()]), [['cmd/' + h.opts.clientId, 'one'], ['all/x', 'two']]);
    });
  });
});
