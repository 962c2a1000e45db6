/**
 * Broker benchmark (issue 4): the Flotilla bridge against bare aedes on the
 * same machine, with the same load. Prints one markdown table:
 *
 *   - connection ramp: 10,000 authenticated devices, at most 200 CONNECTs in
 *     flight (connections/s; broker RSS growth per connection after a forced GC);
 *   - telemetry throughput: 1,000 connected devices publishing events on
 *     dev/<id>/evt/t to one subscriber, QoS 0 then QoS 1 (delivered msg/s),
 *     and QoS 1 vitals, which the bridge stores before the PUBACK (acknowledged msg/s);
 *   - the bridge/bare ratio beside the budget of issue 4 (≥ 80 % of bare
 *     aedes' throughput, ≤ 1.5× its memory per connection, no database on the
 *     publish path: counted on the store the broker holds).
 *
 * Method (shared/research/mqtt-anchors.md): each broker runs in a child
 * process (bench/broker-server.ts) pinned to CPU0, this load generator is
 * pinned to CPU1 (taskset, when present); loopback only; the load is raw
 * pre-encoded MQTT packets on plain NODELAY sockets, so the broker is the
 * bottleneck; every loop is bounded by a count, a deadline and a stall
 * detector; each cell is the median (min–max) of the runs. The bridge runs on
 * a temp data dir provisioned once (user, product, devices with scrypt
 * secrets, a token) and copied for each broker start.
 *
 *   cd /work/main && npx tsx bench/broker.ts [--runs 3] [--ramp-runs 1] [--quick]
 *
 * Options (all optional, defaults shown): --devices 10000 --in-flight 200
 * --publishers 1000 --window 500 --warmup 5000 --measured 50000
 * --vitals-warmup 500 --vitals-measured 3000 --runs 3 (throughput runs)
 * --ramp-runs 1 (each adds ~50 s) --stall-ms 5000 --ramp-deadline-ms 120000
 * --phase-deadline-ms 30000; --cpu-prof DIR (a V8 CPU profile of the broker
 * for each ramp and phase, written to DIR); --keep-event-rate-limit (keep the
 * bridge's 1 event/s per device: the publishers are then cut after a few
 * events and the throughput phases fail); --quick (a small smoke run).
 */
import { cpSync, mkdirSync } from 'node:fs';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import mqttPacket from 'mqtt-packet';
import { encode, topics } from '@flotilla/protocol';
import { benchDeviceId, benchSecret, SUBSCRIBER_CLIENT_ID, type Reply, type Request } from './broker-common.js';
import {
  awaitReply, cell, closing, collectLog, commandLine, cpuMeter, fmt, installCleanup, log, startRun, machineLine, makeTempDir, median, pinLoadGenerator, pinned, removeTempDir, runMain,
  spawnChild, startChildServer, table, trackConnections, wholeRunLine, type ChildServer,
} from './harness.js';
import { CONNACK, connectLoopback, connectPacket, Frames, PUBACK, pubackFor, PUBLISH, SUBACK, subscribePacket, topicEnd } from './mqtt-wire.js';

// ------------------------------------------------------------------ parameters

const { flag, numbers, str } = commandLine();
const P = {
  ...numbers(
    {
      devices: 10_000,
      inFlight: 200,
      publishers: 1000,
      window: 500,
      warmup: 5000,
      measured: 50_000,
      vitalsWarmup: 500,
      vitalsMeasured: 3000,
      runs: 3,
      // The bridge's 10,000-device ramp alone takes ~40 s here (scrypt per CONNECT): one run by default keeps the whole run near 3 minutes.
      rampRuns: 1,
      stallMs: 5000,
      rampDeadlineMs: 120_000,
      phaseDeadlineMs: 30_000,
    },
    // --quick
    { devices: 2000, publishers: 200, warmup: 2000, measured: 20_000, vitalsWarmup: 200, vitalsMeasured: 1000, runs: 1 },
  ),
  keepRateLimit: flag('keep-event-rate-limit'),
  keepalive: 600,
};
if (P.publishers > P.devices) throw new Error('--publishers must not exceed --devices');

const SERVER = fileURLToPath(new URL('./broker-server.ts', import.meta.url));

installCleanup();
// This process is the load generator: CPU1. The broker goes to CPU0.
pinLoadGenerator();

/** --cpu-prof DIR: a V8 CPU profile of the broker for every ramp and phase, written there (to see what dominates). */
const cpuProfDir = str('cpu-prof');
if (cpuProfDir !== null) mkdirSync(cpuProfDir, { recursive: true });
let currentRun = 0;

async function profiled<T>(b: BrokerProc, label: string, f: () => Promise<T>): Promise<T> {
  if (!cpuProfDir) return f();
  await b.request('profileStart');
  try {
    return await f();
  } finally {
    await b.request('profileStop', { dir: cpuProfDir, label: `${b.kind}-run${currentRun + 1}-${label}` });
  }
}

// ------------------------------------------------------------------ the broker process

type Kind = 'bare' | 'bridge';

type Ready = Extract<Reply, { op: 'ready' }>;

interface BrokerProc extends ChildServer<Request, Reply, Ready> {
  kind: Kind;
}

/** The broker's log lines (pino, at info: the bridge logs refusals) are counted, the bridge's start and stop aside. */
const QUIET = /"msg":"(bridge listening|bridge closed)"/;

async function startBroker(kind: Kind, template: string | null): Promise<BrokerProc> {
  let dir: string | null = null;
  const args: string[] = [kind];
  if (kind === 'bridge') {
    dir = makeTempDir('flotilla-bench-');
    cpSync(template as string, dir, { recursive: true });
    args.push(dir);
    if (P.keepRateLimit) args.push('--keep-event-rate-limit');
  }
  const b = await startChildServer<Request, Reply, Ready>({ script: SERVER, args, cpuList: '0', nodeFlags: ['--expose-gc'], ignoreLog: QUIET, name: kind, who: 'broker', readyMs: 60_000, dir });
  return { ...b, kind };
}

async function provision(n: number): Promise<{ dir: string; ms: number; token: string }> {
  const dir = makeTempDir('flotilla-bench-template-');
  // Both CPUs: scrypt runs on libuv's pool while the inserts run on the main thread.
  const c = spawnChild(SERVER, ['provision', dir, String(n)], pinned ? '0,1' : '0', ['--expose-gc']);
  collectLog(c, QUIET);
  const r = await awaitReply<Extract<Reply, { op: 'provisioned' }>, Reply>(c, (m) => m.op === 'provisioned', 600_000, 'provisioning', 'broker');
  await new Promise<void>((resolve) => (c.exitCode !== null ? resolve() : c.once('exit', () => resolve())));
  return { dir, ms: r.ms, token: r.token };
}

// ------------------------------------------------------------------ MQTT on raw sockets

/** Counters the socket handlers update; `kick` is the running phase's pump. */
const counters = { delivered: 0, pubacks: 0, droppedAfterConnect: 0, otherDeliveries: 0 };
let kick: () => void = () => {};

interface Ramp {
  sockets: Socket[];
  ok: number;
  failed: number;
  ms: number;
  firstError: string | null;
  stalled: string | null;
}

/** Opens `connects.length` connections, at most `inFlight` awaiting their CONNACK; bounded by a deadline and a stall detector. */
function openDevices(port: number, connects: Buffer[], inFlight: number, deadlineMs: number): Promise<Ramp> {
  const n = connects.length;
  const sockets: Socket[] = [];
  let launched = 0;
  let settled = 0;
  let ok = 0;
  let failed = 0;
  let firstError: string | null = null;
  const t0 = performance.now();
  let lastProgress = t0;
  return new Promise<Ramp>((resolve) => {
    let finished = false;
    const finish = (stalled: string | null): void => {
      if (finished) return;
      finished = true;
      clearInterval(watchdog);
      resolve({ sockets, ok, failed, ms: performance.now() - t0, firstError, stalled });
    };
    const watchdog = setInterval(() => {
      const now = performance.now();
      if (now - t0 > deadlineMs) finish(`deadline of ${deadlineMs} ms reached at ${settled}/${n}`);
      else if (now - lastProgress > P.stallMs) finish(`no CONNACK for ${P.stallMs} ms at ${settled}/${n}`);
    }, 100);
    const settle = (success: boolean, why: string): void => {
      settled++;
      lastProgress = performance.now();
      if (success) ok++;
      else {
        failed++;
        firstError ??= why;
      }
      if (settled === n) finish(null);
      else launch();
    };
    const open = (i: number): void => {
      const s = connectLoopback(port);
      sockets[i] = s;
      trackConnections(s);
      let answered = false;
      const frames = new Frames((type, _flags, buf, start) => {
        if (type === PUBACK) {
          counters.pubacks++;
          kick();
        } else if (type === CONNACK && !answered) {
          answered = true;
          const rc = buf[start + 1];
          settle(rc === 0, 'CONNACK return code ' + rc);
        }
      });
      s.on('connect', () => s.write(connects[i]));
      s.on('data', (c: Buffer) => frames.push(c));
      s.on('error', (e) => {
        if (!answered) {
          answered = true;
          settle(false, e.message);
        }
      });
      s.on('close', () => {
        if (!answered) {
          answered = true;
          settle(false, 'closed before CONNACK');
        } else if (!closing.now) counters.droppedAfterConnect++;
      });
    };
    const launch = (): void => {
      while (!finished && launched < n && launched - settled < inFlight) open(launched++);
    };
    launch();
  });
}

/** One operator-app (bridge) or plain (bare) subscriber on every device's events, QoS 1. */
function openSubscriber(port: number, kind: Kind, token: string): Promise<Socket> {
  const connect = connectPacket({ clientId: SUBSCRIBER_CLIENT_ID, keepalive: P.keepalive, ...(kind === 'bridge' ? { username: 'token', password: token } : {}) });
  const subscribe = subscribePacket(topics.filter.deviceEvents(), 1, 1);
  return new Promise<Socket>((resolve, reject) => {
    const s = connectLoopback(port);
    trackConnections(s);
    const timer = setTimeout(() => reject(new Error('subscriber: no SUBACK within 10 s')), 10_000);
    let acks: Buffer[] = [];
    const frames = new Frames((type, flags, buf, start) => {
      if (type === PUBLISH) {
        const tEnd = topicEnd(buf, start);
        // Only the benchmark's events (…/evt/t) count; presence (spark/status) would not.
        if (buf[tEnd - 1] === 0x74 && buf[tEnd - 2] === 0x2f) counters.delivered++;
        else counters.otherDeliveries++;
        if ((flags >> 1) & 3) acks.push(pubackFor(buf, tEnd));
      } else if (type === CONNACK) {
        if (buf[start + 1] !== 0) reject(new Error('subscriber: CONNACK return code ' + buf[start + 1]));
        else s.write(subscribe);
      } else if (type === SUBACK) {
        clearTimeout(timer);
        const granted = buf[start + 2];
        if (granted !== 1) reject(new Error('subscriber: SUBACK granted ' + granted));
        else resolve(s);
      }
    });
    s.on('connect', () => s.write(connect));
    s.on('data', (c: Buffer) => {
      frames.push(c);
      if (acks.length) {
        s.write(acks.length === 1 ? acks[0] : Buffer.concat(acks));
        acks = [];
      }
      kick();
    });
    s.on('error', (e) => reject(e));
  });
}

// ------------------------------------------------------------------ packets

const deviceIds = Array.from({ length: P.devices }, (_, i) => benchDeviceId(i));
const connects = deviceIds.map((id, i) =>
  connectPacket({ clientId: id, keepalive: P.keepalive, username: id, password: benchSecret(i) }),
);
/** A valid `event` message, 64 bytes like the anchors' payloads. */
const EVENT = (() => {
  let data = 'x';
  while (encode('event', { data, ttl: 60 }).length < 64) data += 'x';
  return Buffer.from(encode('event', { data, ttl: 60 }));
})();
const VITALS = Buffer.from(
  encode('vitals', {
    values: {
      'device.system.uptime': 86_400,
      'device.system.memory.used': 31_000,
      'device.system.memory.total': 81_920,
      'device.network.signal.strength': 80,
      'device.cloud.publish.sent': 1234,
    },
  }),
);

interface Template {
  buf: Buffer;
  /** Offset of the packet id (QoS 1), or -1. */
  idAt: number;
}

function publishTemplate(topic: string, payload: Buffer, qos: 0 | 1): Template {
  const buf = mqttPacket.generate({ cmd: 'publish', topic, payload, qos, retain: false, dup: false, messageId: qos ? 1 : undefined });
  return { buf, idAt: qos ? buf.length - payload.length - 2 : -1 };
}

// ------------------------------------------------------------------ throughput phase

interface PhaseResult {
  rate: number;
  measured: number;
  ms: number;
  sent: number;
  stalled: string | null;
  /** Broker CPU over the whole phase (warm-up included), % of one core. */
  brokerCpu: number;
  loadCpu: number;
  pubackMismatch: number;
}

/**
 * Publishes round-robin from `pubs`, keeping at most P.window messages in
 * flight end to end (sent minus progress), until `warmup + measured` made
 * progress; progress is delivered events at the subscriber or PUBACKs at the devices.
 */
async function runPhase(b: BrokerProc, pubs: Socket[], templates: Template[], progressOf: 'delivered' | 'pubacks', warmup: number, measured: number): Promise<PhaseResult> {
  const total = warmup + measured;
  const base = counters[progressOf];
  const ackBase = counters.pubacks;
  const ids = new Uint16Array(pubs.length);
  let sent = 0;
  let rr = 0;
  let tStart = 0;
  let pStart = 0;
  let tEnd = 0;
  let lastP = 0;
  let lastProgressAt = performance.now();
  const cpu = await cpuMeter(b);
  const t0 = performance.now();
  let resolveDone: () => void = () => {};
  const done = new Promise<void>((r) => (resolveDone = r));
  kick = () => {
    const p = counters[progressOf] - base;
    if (p !== lastP) {
      lastP = p;
      lastProgressAt = performance.now();
    }
    if (tStart === 0 && p >= warmup) {
      tStart = performance.now();
      pStart = p;
    }
    if (p >= total) {
      if (tEnd === 0) {
        tEnd = performance.now();
        resolveDone();
      }
      return;
    }
    while (sent < total && sent - p < P.window) {
      const d = rr;
      rr = rr + 1 === pubs.length ? 0 : rr + 1;
      const t = templates[d];
      if (t.idAt < 0) pubs[d].write(t.buf);
      else {
        const id = (ids[d] = ids[d] === 65535 ? 1 : ids[d] + 1);
        const buf = Buffer.allocUnsafe(t.buf.length);
        t.buf.copy(buf);
        buf.writeUInt16BE(id, t.idAt);
        pubs[d].write(buf);
      }
      sent++;
    }
  };
  let stalled: string | null = null;
  const watchdog = setInterval(() => {
    const now = performance.now();
    if (now - t0 > P.phaseDeadlineMs) stalled = `deadline of ${P.phaseDeadlineMs} ms reached at ${lastP}/${total}`;
    else if (now - lastProgressAt > P.stallMs) stalled = `no progress for ${P.stallMs} ms at ${lastP}/${total} (sent ${sent})`;
    if (stalled) resolveDone();
  }, 100);
  kick();
  await done;
  clearInterval(watchdog);
  kick = () => {};
  const wall = performance.now() - t0;
  const used = await cpu(wall);
  // QoS 1: every PUBLISH a device sent is acknowledged (bounded wait).
  let pubackMismatch = 0;
  if (templates[0].idAt >= 0 && !stalled) {
    const until = performance.now() + 2000;
    while (counters.pubacks - ackBase < sent && performance.now() < until) await new Promise((r) => setTimeout(r, 10));
    pubackMismatch = sent - (counters.pubacks - ackBase);
  }
  const ms = tEnd && tStart ? tEnd - tStart : 0;
  const m = tEnd ? total - pStart : 0;
  return {
    rate: stalled || !ms ? NaN : (m / ms) * 1000,
    measured: m,
    ms,
    sent,
    stalled,
    brokerCpu: used.server,
    loadCpu: used.load,
    pubackMismatch,
  };
}

// ------------------------------------------------------------------ one broker instance per measurement

interface RampResult {
  rate: number;
  ms: number;
  ok: number;
  failed: number;
  firstError: string | null;
  stalled: string | null;
  idleRss: number;
  rssPerConn: number;
  heapPerConn: number;
  cpuPerConnMs: number;
  brokerCpu: number;
  gc: boolean;
  log: number;
}

async function rampInstance(kind: Kind, template: string | null): Promise<RampResult> {
  const b = await startBroker(kind, template);
  try {
    const before = await b.request<Extract<Reply, { op: 'mem' }>>('mem');
    const cpu0 = await b.cpuMs();
    counters.droppedAfterConnect = 0;
    const r = await profiled(b, 'ramp', () => openDevices(b.ready.port, connects, P.inFlight, P.rampDeadlineMs));
    const cpu1 = await b.cpuMs();
    // Let the last 'client' handlers (the bridge's presence writes) finish before measuring.
    await new Promise((res) => setTimeout(res, 200));
    const after = await b.request<Extract<Reply, { op: 'mem' }>>('mem');
    return {
      rate: r.stalled || r.failed ? NaN : (r.ok / r.ms) * 1000,
      ms: r.ms,
      ok: r.ok,
      failed: r.failed,
      firstError: r.firstError,
      stalled: r.stalled,
      idleRss: before.rss,
      rssPerConn: (after.rss - before.rss) / Math.max(1, r.ok),
      heapPerConn: (after.heapUsed - before.heapUsed) / Math.max(1, r.ok),
      cpuPerConnMs: (cpu1 - cpu0) / Math.max(1, r.ok),
      brokerCpu: ((cpu1 - cpu0) / r.ms) * 100,
      gc: before.gc && after.gc,
      log: b.log.count,
    };
  } finally {
    await b.exit();
    if (b.log.count) console.error(`  (${kind} ramp: ${b.log.count} broker log lines, first: ${b.log.first[0]})`);
  }
}

interface TputResult {
  connectMs: number;
  qos0: PhaseResult;
  qos1: PhaseResult;
  vitals: PhaseResult;
  /** Store calls per phase (bridge only): method → count. */
  calls: { qos0: Record<string, number>; qos1: Record<string, number>; vitals: Record<string, number> } | null;
  dropped: number;
  otherDeliveries: number;
}

/**
 * Store methods the broker is meant to call while devices publish: the ingest's writes, and the timer
 * that writes last-heard times and usage counters every few seconds (touchMany, recordUsage);
 * anything else is a lookup on the publish path.
 */
const INGEST_WRITES = new Set(['recordVitals', 'recordHello', 'recordError', 'touch', 'touchMany', 'recordUsage', 'setOnline']);
const isLookup = (method: string): boolean => !INGEST_WRITES.has(method);

async function storeCalls(b: BrokerProc): Promise<Record<string, number>> {
  return (await b.request<Extract<Reply, { op: 'storeCalls' }>>('storeCalls')).calls;
}
const diff = (a: Record<string, number>, b: Record<string, number>): Record<string, number> => {
  const d: Record<string, number> = {};
  for (const k of Object.keys(b)) if (b[k] - (a[k] ?? 0)) d[k] = b[k] - (a[k] ?? 0);
  return d;
};

async function throughputInstance(kind: Kind, template: string | null, token: string): Promise<TputResult> {
  const b = await startBroker(kind, template);
  try {
    counters.droppedAfterConnect = 0;
    counters.otherDeliveries = 0;
    const r = await openDevices(b.ready.port, connects.slice(0, P.publishers), P.inFlight, P.rampDeadlineMs);
    if (r.failed || r.stalled) throw new Error(`${kind}: connecting ${P.publishers} publishers failed: ${r.stalled ?? r.firstError}`);
    await openSubscriber(b.ready.port, kind, token);
    const pubs = r.sockets;
    const ev0 = pubs.map((_, i) => publishTemplate(topics.device.event(deviceIds[i], 't'), EVENT, 0));
    const ev1 = pubs.map((_, i) => publishTemplate(topics.device.event(deviceIds[i], 't'), EVENT, 1));
    const vit = pubs.map((_, i) => publishTemplate(topics.device.vitals(deviceIds[i]), VITALS, 1));
    const c0 = kind === 'bridge' ? await storeCalls(b) : null;
    const qos0 = await profiled(b, 'qos0', () => runPhase(b, pubs, ev0, 'delivered', P.warmup, P.measured));
    const c1 = kind === 'bridge' ? await storeCalls(b) : null;
    const qos1 = await profiled(b, 'qos1', () => runPhase(b, pubs, ev1, 'delivered', P.warmup, P.measured));
    const c2 = kind === 'bridge' ? await storeCalls(b) : null;
    const vitals = await profiled(b, 'vitals', () => runPhase(b, pubs, vit, 'pubacks', P.vitalsWarmup, P.vitalsMeasured));
    const c3 = kind === 'bridge' ? await storeCalls(b) : null;
    return {
      connectMs: r.ms,
      qos0,
      qos1,
      vitals,
      calls: c0 && c1 && c2 && c3 ? { qos0: diff(c0, c1), qos1: diff(c1, c2), vitals: diff(c2, c3) } : null,
      dropped: counters.droppedAfterConnect,
      otherDeliveries: counters.otherDeliveries,
    };
  } finally {
    await b.exit();
    if (b.log.count) console.error(`  (${kind} throughput: ${b.log.count} broker log lines, first: ${b.log.first[0]})`);
  }
}

// ------------------------------------------------------------------ report

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
  startRun('broker');
  log(`provisioning ${P.devices} devices (scrypt secrets) in a temp bridge data dir...`);
  const prov = await provision(P.devices);
  log(`provisioned in ${(prov.ms / 1000).toFixed(1)} s`);

  const ramps: Record<Kind, RampResult[]> = { bare: [], bridge: [] };
  const tputs: Record<Kind, TputResult[]> = { bare: [], bridge: [] };
  const runs = Math.max(P.runs, P.rampRuns);
  for (let run = 0; run < runs; run++) {
    currentRun = run;
    // Brokers take turns; which goes first alternates between runs.
    const order: Kind[] = run % 2 ? ['bridge', 'bare'] : ['bare', 'bridge'];
    if (run < P.rampRuns)
      for (const kind of order) {
        const r = await rampInstance(kind, kind === 'bridge' ? prov.dir : null);
        ramps[kind].push(r);
        log(
          `run ${run + 1} ${kind} ramp: ${r.ok}/${P.devices} in ${(r.ms / 1000).toFixed(2)} s = ${fmt(r.rate)} conn/s, ` +
            `${fmt(r.rssPerConn / 1024, 1)} KB RSS/conn, ${fmt(r.cpuPerConnMs, 2)} ms CPU/conn, broker CPU ${fmt(r.brokerCpu)} %` +
            (r.stalled ? ` STALLED: ${r.stalled}` : '') + (r.failed ? ` ${r.failed} failed (${r.firstError})` : ''),
        );
      }
    if (run < P.runs)
      for (const kind of order) {
        const t = await throughputInstance(kind, kind === 'bridge' ? prov.dir : null, prov.token);
        tputs[kind].push(t);
        const p = (name: string, x: PhaseResult): string =>
          `${name} ${x.stalled ? 'STALLED (' + x.stalled + ')' : fmt(x.rate) + ' msg/s'} [broker ${fmt(x.brokerCpu)} %, loadgen ${fmt(x.loadCpu)} %]` +
          (x.pubackMismatch ? ` ${x.pubackMismatch} PUBACKs missing` : '');
        log(`run ${run + 1} ${kind} throughput: ${p('QoS0', t.qos0)}; ${p('QoS1', t.qos1)}; ${p('vitals', t.vitals)}` + (t.dropped ? `; ${t.dropped} publishers dropped` : ''));
        if (t.calls) log(`  store calls: QoS0 ${JSON.stringify(t.calls.qos0)} QoS1 ${JSON.stringify(t.calls.qos1)} vitals ${JSON.stringify(t.calls.vitals)}`);
      }
  }
  removeTempDir(prov.dir);

  // ---- the table
  const rows: string[][] = [];
  const ratio = (bare: number[], bridge: number[]): number => median(bridge) / median(bare);
  const within = (ok: boolean | null): string => (ok === null ? '–' : ok ? 'yes' : '**no**');
  const rampRate = (k: Kind) => ramps[k].map((r) => r.rate);
  const rss = (k: Kind) => ramps[k].map((r) => r.rssPerConn / 1024);
  const tp = (k: Kind, f: (t: TputResult) => PhaseResult) => tputs[k].map((t) => f(t).rate);
  {
    const q = ratio(rampRate('bare'), rampRate('bridge'));
    rows.push([`connection ramp, ${fmt(P.devices)} authenticated devices (connections/s)`, cell(rampRate('bare')), cell(rampRate('bridge')), fmt(q, 2), 'none set', '–']);
  }
  {
    const q = ratio(rss('bare'), rss('bridge'));
    rows.push([`broker RSS growth per connection at ${fmt(P.devices)} connections, after forced GC (KB)`, cell(rss('bare'), 1), cell(rss('bridge'), 1), fmt(q, 2), '≤ 1.5×', within(Number.isFinite(q) ? q <= 1.5 : false)]);
  }
  for (const [name, f] of [
    [`QoS 0 events, ${fmt(P.publishers)} devices → 1 subscriber (delivered msg/s)`, (t: TputResult) => t.qos0],
    [`QoS 1 events, ${fmt(P.publishers)} devices → 1 subscriber (delivered msg/s)`, (t: TputResult) => t.qos1],
  ] as const) {
    const q = ratio(tp('bare', f), tp('bridge', f));
    rows.push([name, cell(tp('bare', f)), cell(tp('bridge', f)), fmt(q, 2), '≥ 0.80', within(Number.isFinite(q) ? q >= 0.8 : false)]);
  }
  {
    const f = (t: TputResult) => t.vitals;
    const q = ratio(tp('bare', f), tp('bridge', f));
    rows.push([`QoS 1 vitals, ${fmt(P.publishers)} devices; bridge stores each before PUBACK (acknowledged msg/s)`, cell(tp('bare', f)), cell(tp('bridge', f)), fmt(q, 2), 'extra row', '–']);
  }
  {
    // Policy on the publish path: any store call while messages flow other than the ingest's own writes
    // (vitals, last heard in batches, presence) is a lookup the policy should have answered from memory.
    const sum = (c: Record<string, number>, keep: (k: string) => boolean) => Object.entries(c).filter(([k]) => keep(k)).reduce((a, [, n]) => a + n, 0);
    const lookups = (t: TputResult) => (t.calls ? sum(t.calls.qos0, isLookup) + sum(t.calls.qos1, isLookup) + sum(t.calls.vitals, isLookup) : NaN);
    const msgs = tputs.bridge.reduce((a, t) => a + t.qos0.sent + t.qos1.sent + t.vitals.sent, 0);
    const n = tputs.bridge.map(lookups);
    rows.push([
      'store lookups on the publish path (all throughput phases)',
      'n/a',
      `${fmt(n.reduce((a, b) => a + b, 0))} in ${fmt(msgs)} messages`,
      '–',
      '0 (policy from memory)',
      within(n.length ? n.every((x) => x === 0) : null),
    ]);
  }

  const out: string[] = [];
  out.push('## Broker benchmark: Flotilla bridge vs bare aedes');
  out.push('');
  out.push(...table(['measure', 'bare aedes', 'bridge', 'ratio (bridge/bare)', 'budget', 'within?'], rows));
  out.push('');
  const rr = (k: Kind, f: (r: RampResult) => number, d = 0) => cell(ramps[k].map(f), d);
  out.push('Cells: median (min–max) of the runs. Ramp: ' + P.rampRuns + ' run(s) per broker; throughput: ' + P.runs + ' run(s) per broker; brokers take turns, a fresh broker process for every measurement.');
  out.push('');
  out.push('Parameters and context:');
  out.push(machineLine('broker pinned to CPU0, load generator to CPU1 (taskset)', 'NODELAY on both sides'));
  out.push(`- load: raw pre-encoded MQTT 3.1.1 packets on plain sockets; CONNECT with username = client id = device id, password = device secret (bare aedes gets the same bytes and checks nothing; maxClientsIdLength 64 on both); keepalive ${P.keepalive} s`);
  out.push(`- ramp: ${fmt(P.devices)} CONNECTs, at most ${P.inFlight} awaiting CONNACK; RSS and heap measured after two forced GCs (--expose-gc) before and after; bounded by ${P.rampDeadlineMs / 1000} s and a ${P.stallMs / 1000} s stall detector`);
  out.push(`- throughput: ${fmt(P.publishers)} publishers round-robin, 1 subscriber on ${topics.filter.deviceEvents()} at QoS 1 (bridge: an operator app of the product's owner, by token); at most ${P.window} messages in flight end to end; ${fmt(P.warmup)} warm-up then ${fmt(P.measured)} measured events per QoS; vitals: ${fmt(P.vitalsWarmup)} + ${fmt(P.vitalsMeasured)}, window on PUBACKs; bounded by ${P.phaseDeadlineMs / 1000} s and a ${P.stallMs / 1000} s stall detector`);
  out.push(`- payloads: event ${EVENT.length} B (protocol \`event\` on dev/<id>/evt/t), vitals ${VITALS.length} B (5 metrics on dev/<id>/vitals)`);
  out.push(`- bridge: createBridge on a copy of a data dir provisioned once with ${fmt(P.devices)} devices: ${(prov.ms / 1000).toFixed(1)} s (createDevice + setDeviceSecret at scrypt N=2^10, 8 at a time, both CPUs)` + (P.keepRateLimit ? '; event rate limit kept (1/s per device)' : '; the per-device event rate limit (1/s, bursts of 4) raised to 1e9 in the broker process so 1,000 devices can carry the load; the limiter still runs on every event'));
  out.push(`- idle broker RSS after GC: bare ${rr('bare', (r) => r.idleRss / 2 ** 20, 1)} MB, bridge ${rr('bridge', (r) => r.idleRss / 2 ** 20, 1)} MB; heap growth per connection: bare ${rr('bare', (r) => r.heapPerConn / 1024, 1)} KB, bridge ${rr('bridge', (r) => r.heapPerConn / 1024, 1)} KB`);
  out.push(`- broker CPU during the ramp: bare ${rr('bare', (r) => r.brokerCpu)} % (${rr('bare', (r) => r.cpuPerConnMs, 2)} ms/conn), bridge ${rr('bridge', (r) => r.brokerCpu)} % (${rr('bridge', (r) => r.cpuPerConnMs, 2)} ms/conn)`);
  const pc = (k: Kind, f: (t: TputResult) => PhaseResult, g: (p: PhaseResult) => number) => cell(tputs[k].map((t) => g(f(t))));
  out.push(`- CPU during throughput (broker / load generator, % of one core): QoS0 bare ${pc('bare', (t) => t.qos0, (p) => p.brokerCpu)} / ${pc('bare', (t) => t.qos0, (p) => p.loadCpu)}, bridge ${pc('bridge', (t) => t.qos0, (p) => p.brokerCpu)} / ${pc('bridge', (t) => t.qos0, (p) => p.loadCpu)}; QoS1 bare ${pc('bare', (t) => t.qos1, (p) => p.brokerCpu)} / ${pc('bare', (t) => t.qos1, (p) => p.loadCpu)}, bridge ${pc('bridge', (t) => t.qos1, (p) => p.brokerCpu)} / ${pc('bridge', (t) => t.qos1, (p) => p.loadCpu)}; vitals bridge ${pc('bridge', (t) => t.vitals, (p) => p.brokerCpu)} %`);
  const callsOf = (f: (c: NonNullable<TputResult['calls']>) => Record<string, number>): string => {
    const total: Record<string, number> = {};
    for (const t of tputs.bridge) if (t.calls) for (const [k, v] of Object.entries(f(t.calls))) total[k] = (total[k] ?? 0) + v;
    return Object.keys(total).length ? Object.entries(total).map(([k, v]) => `${k} ${fmt(v)}`).join(', ') : 'none';
  };
  out.push(`- bridge store calls during the throughput phases (all runs, counted on the store object the broker holds): QoS0 events: ${callsOf((c) => c.qos0)}; QoS1 events: ${callsOf((c) => c.qos1)}; vitals: ${callsOf((c) => c.vitals)}`);
  const problems: string[] = [];
  for (const k of ['bare', 'bridge'] as Kind[]) {
    for (const r of ramps[k]) if (r.stalled || r.failed) problems.push(`${k} ramp: ${r.stalled ?? ''} ${r.failed ? r.failed + ' failed: ' + r.firstError : ''}`);
    for (const t of tputs[k]) {
      for (const [n, p] of [['QoS0', t.qos0], ['QoS1', t.qos1], ['vitals', t.vitals]] as const) {
        if (p.stalled) problems.push(`${k} ${n}: ${p.stalled}`);
        if (p.pubackMismatch) problems.push(`${k} ${n}: ${p.pubackMismatch} PUBACKs missing`);
      }
      if (t.dropped) problems.push(`${k} throughput: ${t.dropped} publishers disconnected`);
    }
    if (!ramps[k].every((r) => r.gc)) problems.push(`${k}: no forced GC (gc not exposed)`);
  }
  out.push(`- problems: ${problems.length ? problems.join('; ') : 'none (every CONNECT accepted, no stall, every QoS 1 message acknowledged, no publisher dropped)'}`);
  out.push(wholeRunLine(' (the benchmark itself adds about 1.5)'));
  console.log(out.join('\n'));
}

runMain(main);
