/**
 * OTA benchmark (the OTA issue: "time to deliver a 256 KB image to 1 device
 * and to 500 simulated devices concurrently, bytes/s through the bridge, and
 * beside it the time for raw MQTT to carry the same bytes to the same
 * devices over bare aedes. Budget: within 1.5× of the raw transfer; bridge
 * RSS stays bounded (chunks streamed from disk, not whole images held per
 * device)"). One run, two markdown tables (times; ratios, budget and
 * resources); asserts nothing.
 *
 * Four cases per device count (1, then N), each on fresh server processes,
 * in this order; cells are of one run each. Two of them run the real agents
 * (simulator), two run do-nothing wire clients; each pair differs only in
 * the server, so the like-for-like pairs are ours vs raw MQTT with the same
 * agents, and the bridge with raw devices vs raw MQTT with raw devices. The
 * budget (≤ 1.5×) is judged on those two pairs (agents: on the time until
 * every device said hello on the new version, the verified time's verdict
 * beside it; raw devices: on the time until every device verified). The
 * ratios of ours to raw MQTT with raw devices (the earlier judgement: the
 * bridge and the agents' own work against bare aedes and devices doing
 * none) are still printed, marked as not like for like.
 *
 * 1. Ours: a real bridge (createBridge: embedded SQLite in a temp data dir,
 * the HTTP API and plain MQTT on port 0) in a child process
 * (bench/ota-server.ts) pinned to CPU0, measured alone for RSS and CPU; the
 * devices are a simulator Fleet of the real agent in this process, pinned to
 * CPU1 (flash in memory, 512 KB slots, the default ramp of 150 devices/s). A
 * version 2 of the fleet's app, padded with a comment to exactly --size
 * bytes, is uploaded through POST /v1/products/:product/firmware (multipart)
 * into a template data dir; each case gets a fresh bridge on a copy of it,
 * powers its devices on at version 1, waits until the bridge knows all of
 * them connected, then releases version 2 as the product default (PUT
 * .../firmware/release, concurrency and min_attempts ≥ the devices, so every
 * device starts at once and nothing pauses) and waits until every job is
 * done: the device verified the image (SHA-256 of its slot), reset into it
 * and said hello running it. Times come from the bridge's own job records
 * (its store's createJob and updateJob, wrapped in the child): release →
 * last device verified (the transfer) and → last job done (plus the reset,
 * the simulator's 1 s of darkness per reboot, the reconnect and the hello).
 *
 * 2. Raw MQTT with the same agents: bare aedes 1.2 (no authentication) in a
 * child process pinned to CPU0 with, in the same process (as the bridge's
 * OTA manager sits beside its aedes), a minimal OTA publisher speaking the
 * device protocol (@flotilla/protocol's topics and messages), and the same
 * Fleet as ours (same options, same image bytes: the product's paddedImage)
 * connected to it instead of the bridge. The agent needs nothing from the
 * cloud beyond the broker's CONNACK, SUBACK and PUBACKs (it sends its hello
 * on connect, and confirms a trial image when it reaches the broker), so it
 * runs against bare aedes unchanged. Once every device said hello (version
 * 1) and --settle passed, the publisher is told to start: to each device
 * whose hello ran version 1 (and later to any device saying such a hello,
 * which resumes) the bridge's otaBegin (same job, product, version, size,
 * SHA-256 of the image and chunkSize = defaultOptions.ota.chunkSize; the
 * job is 1 for every device, where the bridge numbers its jobs 1..N: its
 * messages are at most 2 bytes longer), then
 * otaChunk messages of the image held in memory, QoS 1, at most
 * defaultOptions.ota.window chunks ahead of the offset the device
 * acknowledges (otaStatus 'offset'), recovering as the bridge's Transfer
 * with its defaults: the window resent once from an offset the device
 * repeats, begin again after defaultOptions.ota.ackTimeoutMs of silence (the
 * device answers with the offset it holds; failed after maxSilences in a
 * row), begin again on a reconnect's hello; 'verified' → verified time; the
 * device then resets and its hello running version 2 → done time, as the
 * bridge's job: whether or not the "verified" status arrived (the agent
 * resets 2 s after verifying even if that status is still queued behind
 * unacknowledged ones, so on a loaded machine some never go out; a
 * publisher that waited for it left those devices stalled; such devices
 * count as verified, their verified time unknown, on both sides). No store,
 * no login, no disk. Times, as ours: start request → last device verified,
 * and → last hello on version 2.
 *
 * 3. The bridge with raw devices: the same bridge, template and release as
 * ours, the devices being raw MQTT wire clients in this process
 * (bench/ota-anchor.ts) logging in with their secrets and saying hello
 * (version 1) on connect, then PUBACKing each chunk and acknowledging it
 * with a QoS 1 otaStatus, the last one "verified" (no flash, no SHA-256, no
 * reboot), timed until every job is verified (they never reset). It
 * separates what the bridge costs from what the simulated agents cost
 * (flash writes, boot records, a JavaScript SHA-256 of 256 KB per device,
 * reboots, all on one core).
 *
 * 4. Raw MQTT with raw devices (the first anchor): the same bare aedes and
 * publisher, the same raw clients without login or hello; begin to every
 * device at the start; start → last "verified" acknowledgement received.
 * The same bytes (the bridge's otaBegin and otaChunk messages) and round
 * trips, without the bridge's logic, store, disk reads, the agent's flash
 * writes and SHA-256, or the reboot.
 *
 *   cd /work/main && npx tsx bench/ota.ts [--quick] [--devices N] [--size BYTES]
 *
 * Options (defaults shown): --devices 500 --size 262144 (bytes, header
 * included) --ramp 150 (devices/s) --deadline 600 (s, per delivery)
 * --settle 2 (s, after all devices are connected) --mid 5 (s after the
 * release: one forced-GC memory reading of the bridge, if at least half the
 * transfers are still running); --quick: --devices 50 --mid 1;
 * --cpu-prof DIR: V8 CPU profiles of the server and of this process during
 * each N-device delivery (all four cases), written to DIR (the profiler
 * slows the servers a little: read the tables of a run without it).
 */
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { defaultOptions } from '@flotilla/bridge';
import type { Messages } from '@flotilla/protocol';
import { defaultFleetOptions, Fleet } from '@flotilla/simulator';
import {
  commandLine, fmt, installCleanup, log, machineLine, makeTempDir, median, percentile, pinLoadGenerator, pinned, runMain, startChildServer, startRun, table, wholeRunLine, type ChildLog, type ChildServer,
} from './harness.js';
import { openAnchorDevices, type AnchorDevices } from './ota-anchor.js';
import { otaScenario, paddedImage, PRODUCT_SLUGS, type JobTimes, type OtaReply, type OtaRequest, type ProductKey, type TemplateProduct } from './ota-common.js';

// ------------------------------------------------------------------ parameters

const { numbers, str } = commandLine();
const P = numbers({ devices: 500, size: 262_144, ramp: 150, deadline: 600, settle: 2, mid: 5 }, { devices: 50, mid: 1 });
if (P.devices < 1 || P.ramp <= 0 || P.size < 1) throw new Error('--devices, --size and --ramp must be positive');
const CHUNK = defaultOptions.ota.chunkSize;
const WINDOW = defaultOptions.ota.window;
const VERSION = 2;
const SERVER = fileURLToPath(new URL('./ota-server.ts', import.meta.url));
const cpuProfDir = str('cpu-prof');
if (cpuProfDir !== null) mkdirSync(cpuProfDir, { recursive: true });
/** Slots large enough for the image (the Fleet's default is 512 KB). */
const SLOT = Math.max(defaultFleetOptions.slotSize, Math.ceil(P.size / 4096) * 4096);
const MB = 2 ** 20;

installCleanup();
// This process (the devices) runs on CPU1; the servers go to CPU0.
pinLoadGenerator();

type Ready = Extract<OtaReply, { op: 'ready' }>;
type Proc = ChildServer<OtaRequest, OtaReply, Ready>;
type Mem = Extract<OtaReply, { op: 'mem' }>;
type Rss = Extract<OtaReply, { op: 'rss' }>;
type Prog = Extract<OtaReply, { op: 'progress' }>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function startServer(args: string[], name: string, dir: string | null, cpuList = '0'): Promise<Proc> {
  return startChildServer<OtaRequest, OtaReply, Ready>({ script: SERVER, args, cpuList, nodeFlags: ['--expose-gc'], name, who: name, readyMs: 120_000, dir });
}

/** CPU time of this process, ms. */
function loadCpuMs(): number {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
}

/** V8's profiler in this process (the devices), for --cpu-prof. */
async function profileHere<T>(file: string | null, f: () => Promise<T>): Promise<T> {
  if (!file) return f();
  const s = new Session();
  s.connect();
  await s.post('Profiler.enable');
  await s.post('Profiler.setSamplingInterval', { interval: 200 });
  await s.post('Profiler.start');
  try {
    return await f();
  } finally {
    const { profile } = await s.post('Profiler.stop');
    writeFileSync(file, JSON.stringify(profile));
    s.disconnect();
  }
}

/** Waits (polling every `everyMs`) until `test` holds or `ms` pass; logs `line()` every 5 s. */
async function until<T>(poll: () => Promise<T>, test: (v: T) => boolean, ms: number, everyMs: number, line: (v: T) => string): Promise<{ v: T; ok: boolean }> {
  const end = performance.now() + ms;
  let lastLog = performance.now();
  for (;;) {
    const v = await poll();
    if (test(v)) return { v, ok: true };
    if (performance.now() >= end) return { v, ok: false };
    if (performance.now() - lastLog > 5000) {
      lastLog = performance.now();
      log(line(v));
    }
    await sleep(everyMs);
  }
}

// ------------------------------------------------------------------ the HTTP API

async function api(base: string, token: string, method: string, path: string, body?: unknown): Promise<any> {
  const r = await fetch(base + path, {
    method, headers: { authorization: 'Bearer ' + token, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : null;
}

async function upload(base: string, token: string, product: TemplateProduct, image: Uint8Array): Promise<{ size: number; sha256: string }> {
  const form = new FormData();
  form.set('file', new Blob([Buffer.from(image)]), `v${VERSION}.flim`);
  const r = await fetch(`${base}/v1/products/${product.slug}/firmware`, { method: 'POST', headers: { authorization: 'Bearer ' + token }, body: form });
  const text = await r.text();
  if (r.status !== 201) throw new Error(`upload to ${product.slug}: ${r.status} ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

// ------------------------------------------------------------------ one delivery

interface Delivery {
  n: number;
  /** ms from the start (the release request, the anchor's start) until every device holds the image (verified) and, ours, said hello running it (done); NaN when the deadline came first. */
  verifiedMs: number;
  doneMs: number;
  /** Per device: start of its job → verified, and verified → done (ours), ms. */
  transferMs: number[];
  rebootMs: number[];
  /** ms from the start until the first and the last job began. */
  firstStartMs: number;
  lastStartMs: number;
  completed: number;
  failed: number;
  reasons: Record<string, number>;
  /** The server process: RSS before (after GC, devices connected), peak sampled during, after GC at the end; CPU during. */
  rssIdle: number;
  rssPeak: number;
  rssAfterGc: number;
  heapIdle: number;
  externalIdle: number;
  heapEnd: number;
  serverCpuMs: number;
  /** This process (the devices): CPU during, event-loop delay p99 and max (ms). */
  loadCpuMs: number;
  loopP99: number;
  loopMax: number;
  wallMs: number;
  /** Connecting the devices (ours: the ramp and hellos), s. */
  connectMs: number;
  notes: string[];
  problems: string[];
  serverLog: ChildLog;
  /** The bridge after a forced GC once mid-transfer (--mid s after the release, at least half the transfers running); null when not taken. */
  mid: (Mem & { running: number; atMs: number }) | null;
}

function jobStats(d: Pick<Delivery, 'transferMs' | 'rebootMs'>, jobs: JobTimes[], t0: number): { verifiedMs: number; doneMs: number; firstStartMs: number; lastStartMs: number } {
  let verified = -Infinity;
  let done = -Infinity;
  let first = Infinity;
  let last = -Infinity;
  for (const j of jobs) {
    first = Math.min(first, j.created - t0);
    last = Math.max(last, j.created - t0);
    if (j.verified !== null) {
      verified = Math.max(verified, j.verified - t0);
      d.transferMs.push(j.verified - j.created);
      if (j.state === 'done' && j.ended !== null) d.rebootMs.push(j.ended - j.verified);
    }
    if (j.state === 'done' && j.ended !== null) done = Math.max(done, j.ended - t0);
  }
  return { verifiedMs: verified, doneMs: done, firstStartMs: first, lastStartMs: last };
}

const loop = monitorEventLoopDelay({ resolution: 10 });

/** The devices of a bridge case: a Fleet of the real agent, or the anchor's raw devices logging in. */
interface BridgeDevices {
  /** Powers on (Fleet: on its ramp, resolves once all are powered on; raw: once all are subscribed and said hello). */
  start(): Promise<void>;
  connected(): number;
  /** Checks at the end: problems found, and a line of notes. */
  check(n: number): { problems: string[]; note: string };
  stop(): void;
}

function agentDevices(port: number, product: TemplateProduct, server = 'the bridge'): BridgeDevices {
  const log = { count: 0, first: [] as string[] };
  const fleet = new Fleet({
    bridge: `mqtt://127.0.0.1:${port}`, product: product.id, devices: product.devices, scenario: otaScenario(1), rampPerSecond: P.ramp, slotSize: SLOT,
    onLog: (line) => {
      log.count++;
      if (log.first.length < 3) log.first.push(line.slice(0, 300));
    },
  });
  return {
    start: () => fleet.start(),
    connected: () => fleet.stats().connected,
    check(n) {
      const fs = fleet.stats();
      const problems: string[] = [];
      if (fs.versions[VERSION] !== n) problems.push(`the fleet runs versions ${JSON.stringify(fs.versions)}`);
      if (fs.crashes || fs.refused || fs.ota.rolledBack) problems.push(`fleet ${fs.crashes} crashes, ${fs.refused} refused, ${fs.ota.rolledBack} rolled back`);
      if (log.count) problems.push(`the devices logged ${log.count} lines, first: ${log.first.join(' | ')}`);
      const note =
        `fleet: ${fs.connected}/${n} connected, versions ${JSON.stringify(fs.versions)}, ${fs.ota.updated} trial boots reached ${server}, ${fs.ota.rolledBack} rolled back, ${fs.crashes} crashes, ` +
        `${fs.refused} refused, ${fs.disconnects} sessions ended (the ${n} resets among them), OTA messages received ${fmt(fs.received.ota ?? 0)}, sent ${fmt(fs.sent.ota ?? 0)}`;
      return { problems, note };
    },
    stop: () => fleet.stop(),
  };
}

function wireDevices(port: number, product: TemplateProduct): BridgeDevices {
  let devices: AnchorDevices | null = null;
  // The agent's hello for the bench scenario's app, running version 1.
  const hello: Messages['hello'] = {
    agent: '0.1.0', firmware: 1, product: product.id, variables: [{ name: 'temperature', type: 'double' }], functions: ['setLed'], subscriptions: [], bootReason: 'power_down',
    ota: { slot: 0, trial: false, rolledBackFrom: null },
  };
  return {
    async start() {
      devices = await openAnchorDevices(port, product.devices.map((d) => d.id), 100, 60_000, { secrets: product.devices.map((d) => d.secret), hello });
    },
    connected: () => (devices ? product.devices.length - devices.dropped() : 0),
    check(n) {
      const complete = devices?.complete() ?? 0;
      const problems: string[] = [];
      if (complete < n) problems.push(`${complete}/${n} raw devices hold the whole image`);
      if (devices?.dropped()) problems.push(`${devices.dropped()} sessions dropped`);
      return { problems, note: `raw devices: ${complete}/${n} hold the whole image, ${devices?.dropped() ?? 0} sessions dropped` };
    },
    stop: () => devices?.close(),
  };
}

/**
 * Ours: a fresh bridge on a copy of the template and the product's devices (`kind`: the real agent,
 * or raw devices); the release, then every job done (agent: the device said hello on the new
 * version) or, raw devices (which do not reset), every job verified.
 */
async function ours(key: ProductKey, template: string, product: TemplateProduct, token: string, kind: 'agent' | 'wire'): Promise<Delivery> {
  const n = product.devices.length;
  const label = `${kind === 'agent' ? 'ours' : 'bridge with raw devices'}, ${n} device${n > 1 ? 's' : ''}`;
  const dir = makeTempDir('flotilla-bench-ota-');
  cpSync(template, dir, { recursive: true });
  const bridge = await startServer(['bridge', dir], 'bridge', dir);
  const base = `http://127.0.0.1:${bridge.ready.httpPort}`;
  const devices = (kind === 'agent' ? agentDevices : wireDevices)(bridge.ready.mqttPort, product);
  const finished = (p: Prog) => (kind === 'agent' ? p.done : p.verified) + p.failed >= n;
  try {
    // ---- power on at version 1; wait until the bridge's OTA manager knows every device connected
    const tc = performance.now();
    await devices.start();
    const connectDeadline = kind === 'agent' ? n / P.ramp + 60 : 60;
    const connected = await until(
      () => bridge.request<Extract<OtaReply, { op: 'online' }>>('online'),
      (o) => o.online >= n || (o.online < 0 && o.sessions >= n),
      connectDeadline * 1000, 100,
      (o) => `${label}: ${o.online}/${n} devices said hello (${o.sessions} sessions; ${devices.connected()} connected)`,
    );
    if (!connected.ok) throw new Error(`${label}: only ${connected.v.online}/${n} devices said hello within ${connectDeadline} s`);
    const connectMs = performance.now() - tc;
    await sleep(P.settle * 1000);
    const idle = await bridge.request<Mem>('mem');
    await bridge.request('rssReset');
    const cpu0 = await bridge.cpuMs();
    const load0 = loadCpuMs();
    loop.reset();
    loop.enable();
    const w0 = performance.now();
    log(`${label}: ${n} connected in ${fmt(connectMs / 1000, 1)} s; releasing version ${VERSION} (${fmt(P.size)} bytes)`);

    // ---- the release, and every job to its end
    let mid: Delivery['mid'] = null;
    const prof = cpuProfDir && key === 'fleet' ? join(cpuProfDir, `${kind === 'agent' ? 'ours' : 'bridge-raw-devices'}`) : null;
    if (prof) await bridge.request('profileStart');
    const { v: end, ok } = await profileHere(prof ? prof + '-load.cpuprofile' : null, async () => {
      const t0 = Date.now();
      const released = await api(base, token, 'PUT', `/v1/products/${product.slug}/firmware/release`, {
        version: VERSION, product_default: true, concurrency: Math.max(1000, n), min_attempts: Math.max(1000, n),
      });
      const r = await until(
        async () => {
          const p = await bridge.request<Prog>('progress');
          // Once, mid-transfer (most transfers running): what the bridge holds after a forced GC.
          if (!mid && n > 1 && Date.now() - t0 >= P.mid * 1000 && p.running >= n / 2) mid = { ...(await bridge.request<Mem>('mem')), running: p.running, atMs: Date.now() - t0 };
          return p;
        },
        finished,
        P.deadline * 1000, 100,
        (p) => `${label}: ${p.started} jobs started, ${p.verified} verified, ${p.done} done, ${p.failed} failed, ${p.running} transfers running`,
      );
      return { v: { ...r.v, t0, rolloutId: released.rollout.id as number }, ok: r.ok };
    });
    const wallMs = performance.now() - w0;
    const cpu1 = await bridge.cpuMs();
    const load1 = loadCpuMs();
    loop.disable();
    const rss = await bridge.request<Rss>('rss');
    if (prof) await bridge.request('profileStop', { file: prof + '-bridge.cpuprofile' });
    const { jobs } = await bridge.request<Extract<OtaReply, { op: 'jobs' }>>('jobs');
    const d: Delivery = {
      n, verifiedMs: NaN, doneMs: NaN, transferMs: [], rebootMs: [], firstStartMs: NaN, lastStartMs: NaN, completed: end.done, failed: end.failed, reasons: end.reasons,
      rssIdle: idle.rss, rssPeak: rss.peak, rssAfterGc: 0, heapIdle: idle.heapUsed, externalIdle: idle.external, heapEnd: rss.heapUsed, serverCpuMs: cpu1 - cpu0, loadCpuMs: load1 - load0,
      loopP99: loop.percentile(99) / 1e6, loopMax: loop.max / 1e6, wallMs, connectMs, notes: [], problems: [], serverLog: bridge.log, mid,
    };
    Object.assign(d, jobStats(d, jobs, end.t0));
    const ended = (p: Prog) => Object.entries(p.reasons).map(([k, v]) => `${v} ${k}`).join(', ');
    if (!ok || !finished(end) || end.failed) d.problems.push(`${label}: within ${P.deadline} s, ${end.verified}/${n} jobs verified, ${end.done}/${n} done (${ended(end) || 'none ended'})`);
    if (end.verified < n) d.verifiedMs = NaN;
    if (kind === 'wire' || end.done < n) d.doneMs = NaN;
    const rollout = await api(base, token, 'GET', `/v1/products/${product.slug}/rollouts/${end.rolloutId}`);
    d.rssAfterGc = (await bridge.request<Mem>('mem')).rss;
    const c = devices.check(n);
    d.problems.push(...c.problems.map((p) => `${label}: ${p}`));
    d.notes.push(
      `rollout ${rollout.id}: ${rollout.state}, devices ${JSON.stringify(rollout.devices)}; ${c.note}; jobs started ${fmt(d.firstStartMs)}–${fmt(d.lastStartMs)} ms after the release; ` +
        `jobs ended: ${ended(end) || 'none (verified, waiting for a hello that raw devices never send)'}; attempts ${[...new Set(jobs.map((j) => j.attempts))].join('/')}`,
    );
    if (kind === 'agent' && (rollout.devices.done !== rollout.devices.total || rollout.devices.total !== n)) d.problems.push(`${label}: the rollout counts ${rollout.devices.done}/${rollout.devices.total} devices done`);
    if (bridge.log.count) d.problems.push(`${label}: the bridge logged ${bridge.log.count} lines, first: ${bridge.log.first.join(' | ')}`);
    log(`${label}: verified ${fmt(d.verifiedMs / 1000, 2)} s, done ${fmt(d.doneMs / 1000, 2)} s after the release; bridge CPU ${fmt((d.serverCpuMs / wallMs) * 100)} %, load CPU ${fmt((d.loadCpuMs / wallMs) * 100)} %, bridge RSS ${fmt(d.rssIdle / MB)} → peak ${fmt(d.rssPeak / MB)} MB`);
    return d;
  } finally {
    devices.stop();
    await bridge.exit();
  }
}

/**
 * The anchors: bare aedes and its publisher (a child) with, in this process, the anchor's raw devices
 * (`kind` 'wire': start → every device's last acknowledgement) or the same Fleet of the real agent as
 * ours ('agent': connected to bare aedes, every device said hello on version 1; start → every device
 * verified, and said hello running version 2).
 */
async function anchor(product: TemplateProduct, imageFile: string, kind: 'wire' | 'agent'): Promise<Delivery> {
  const n = product.devices.length;
  const ids = product.devices.map((d) => d.id);
  const label = `raw MQTT with ${kind === 'agent' ? 'the same agents' : 'raw devices'}, ${n} device${n > 1 ? 's' : ''}`;
  const finished = (p: Prog) => (kind === 'agent' ? p.done : p.verified) + p.failed >= n;
  const broker = await startServer(['bare'], 'bare', null);
  let wire: AnchorDevices | null = null;
  let agents: BridgeDevices | null = null;
  try {
    // ---- the devices: raw clients subscribed, or the agents powered on (ramp) and every one said hello on version 1
    const tc = performance.now();
    if (kind === 'wire') wire = await openAnchorDevices(broker.ready.mqttPort, ids, 100, 60_000);
    else {
      const a = (agents = agentDevices(broker.ready.mqttPort, product, 'bare aedes'));
      await a.start();
      const deadline = n / P.ramp + 60;
      const said = await until(
        () => broker.request<Extract<OtaReply, { op: 'online' }>>('online'),
        (o) => o.online >= n,
        deadline * 1000, 100,
        (o) => `${label}: ${o.online}/${n} devices said hello (${o.sessions} sessions; ${a.connected()} connected)`,
      );
      if (!said.ok) throw new Error(`${label}: only ${said.v.online}/${n} devices said hello within ${deadline} s`);
    }
    const connectMs = performance.now() - tc;
    await sleep(P.settle * 1000);
    const idle = await broker.request<Mem>('mem');
    await broker.request('rssReset');
    const cpu0 = await broker.cpuMs();
    const load0 = loadCpuMs();
    loop.reset();
    loop.enable();
    const w0 = performance.now();
    if (kind === 'agent') log(`${label}: ${n} connected and said hello in ${fmt(connectMs / 1000, 1)} s; starting the publisher`);
    const prof = cpuProfDir && n > 1 ? join(cpuProfDir, kind === 'agent' ? 'raw-agents' : 'raw') : null;
    if (prof) await broker.request('profileStart');
    const deliver = async () => {
      const t0 = Date.now();
      await broker.request('start', { plan: { kind, devices: ids, imageFile, chunkSize: CHUNK, window: WINDOW, ackTimeoutMs: defaultOptions.ota.ackTimeoutMs, maxSilences: defaultOptions.ota.maxSilences, job: 1, product: product.id, version: VERSION } });
      const r = await until(
        () => broker.request<Prog>('progress'),
        finished,
        P.deadline * 1000, 50,
        (p) => `${label}: ${p.verified}/${n} devices hold the image` + (kind === 'agent' ? `, ${p.done} said hello on v${VERSION}, ${p.failed} failed` : ''),
      );
      return { v: { ...r.v, t0 }, ok: r.ok };
    };
    const { v: end, ok } = await profileHere(prof ? prof + '-load.cpuprofile' : null, () =>
      deliver().catch((e: Error) => {
        throw new Error(`${e.message}; the broker's output: ${broker.log.first.join(' | ') || 'none'}`);
      }),
    );
    const wallMs = performance.now() - w0;
    const cpu1 = await broker.cpuMs();
    const load1 = loadCpuMs();
    loop.disable();
    const rss = await broker.request<Rss>('rss');
    if (prof) await broker.request('profileStop', { file: prof + '-bare.cpuprofile' });
    const { jobs } = await broker.request<Extract<OtaReply, { op: 'jobs' }>>('jobs');
    const d: Delivery = {
      n, verifiedMs: NaN, doneMs: NaN, transferMs: [], rebootMs: [], firstStartMs: NaN, lastStartMs: NaN, completed: end.done, failed: end.failed, reasons: end.reasons,
      rssIdle: idle.rss, rssPeak: rss.peak, rssAfterGc: (await broker.request<Mem>('mem')).rss, heapIdle: idle.heapUsed, externalIdle: idle.external, heapEnd: rss.heapUsed,
      serverCpuMs: cpu1 - cpu0, loadCpuMs: load1 - load0, loopP99: loop.percentile(99) / 1e6, loopMax: loop.max / 1e6, wallMs, connectMs, notes: [], problems: [], serverLog: broker.log, mid: null,
    };
    Object.assign(d, jobStats(d, jobs, end.t0));
    if (kind === 'wire') {
      d.rebootMs = [];
      d.doneMs = d.verifiedMs;
      if (!ok || end.verified < n) {
        d.verifiedMs = d.doneMs = NaN;
        d.problems.push(`${label}: ${end.verified}/${n} devices acknowledged the whole image within ${P.deadline} s`);
      }
      const w = wire as AnchorDevices;
      const deviceSide = w.completedAt();
      d.notes.push(`last device held its last byte ${fmt(Math.max(...deviceSide) - end.t0)} ms after the start (${deviceSide.length}/${n} complete); sessions dropped ${w.dropped()}`);
      if (w.dropped()) d.problems.push(`${label}: ${w.dropped()} sessions dropped`);
    } else {
      if (end.verified < n) d.verifiedMs = NaN;
      if (end.done < n) d.doneMs = NaN;
      const ended = Object.entries(end.reasons).map(([k, v]) => `${v} ${k}`).join(', ');
      if (!ok || !finished(end) || end.failed) d.problems.push(`${label}: within ${P.deadline} s, ${end.verified}/${n} verified, ${end.done}/${n} said hello on v${VERSION} (${ended || 'none failed'})`);
      const c = (agents as BridgeDevices).check(n);
      d.problems.push(...c.problems.map((p) => `${label}: ${p}`));
      d.notes.push(`${c.note}; transfers begun ${fmt(d.firstStartMs)}–${fmt(d.lastStartMs)} ms after the start`);
    }
    d.notes.push(
      `the publisher sent ${fmt(end.begins ?? 0)} begins for ${fmt(end.started)} transfers (${fmt(end.silentBegins ?? 0)} of them after ${defaultOptions.ota.ackTimeoutMs} ms of silence) and resent ${fmt(end.resends ?? 0)} windows from a repeated offset` +
        (kind === 'agent'
          ? `; ${fmt(end.unverified ?? 0)} devices said hello on v${VERSION} without their "verified" status having arrived (the agent resets 2 s after verifying whether or not the status went out; done, as the bridge counts them, and left out of the verified times)`
          : ''),
    );
    if (broker.log.count) d.problems.push(`${label}: the broker logged ${broker.log.count} lines, first: ${broker.log.first.join(' | ')}`);
    log(
      `${label}: all hold the image ${fmt(d.verifiedMs / 1000, 2)} s after the start` + (kind === 'agent' ? `, all said hello on v${VERSION} ${fmt(d.doneMs / 1000, 2)} s` : '') +
        `; broker CPU ${fmt((d.serverCpuMs / wallMs) * 100)} %, load CPU ${fmt((d.loadCpuMs / wallMs) * 100)} %`,
    );
    return d;
  } finally {
    wire?.close();
    agents?.stop();
    await broker.exit();
  }
}

// ------------------------------------------------------------------ the run

async function main(): Promise<number> {
  startRun('bridge / bare aedes');
  const n = P.devices;

  // ---- the template: operator, products, devices, token; version 2 uploaded through the API
  const template = makeTempDir('flotilla-bench-ota-template-');
  const tp = performance.now();
  const setup = await startServer(['setup', template, String(n)], 'setup', null, pinned ? '0,1' : '0');
  const { products, token } = setup.ready as Ready & { products: Record<ProductKey, TemplateProduct>; token: string };
  const base = `http://127.0.0.1:${setup.ready.httpPort}`;
  const images = {} as Record<ProductKey, Uint8Array>;
  for (const key of ['one', 'fleet'] as const) {
    images[key] = paddedImage(products[key].id, VERSION, P.size);
    const up = await upload(base, token, products[key], images[key]);
    if (up.size !== P.size) throw new Error(`uploaded ${up.size} bytes, not ${P.size}`);
  }
  await setup.request('close');
  await setup.exit();
  log(`template: products ${PRODUCT_SLUGS.one} (1 device) and ${PRODUCT_SLUGS.fleet} (${fmt(n)} devices), version ${VERSION} (${fmt(P.size)} bytes) uploaded to each, in ${fmt((performance.now() - tp) / 1000, 1)} s`);
  // The anchors' publisher reads the same bytes (each product's own image: the agents check its header's product).
  const imageDir = makeTempDir('flotilla-bench-ota-image-');
  const imageFiles = {} as Record<ProductKey, string>;
  for (const key of ['one', 'fleet'] as const) writeFileSync((imageFiles[key] = join(imageDir, `${key}-v${VERSION}.flim`)), images[key]);

  // ---- 1 device, then N: ours, raw MQTT with the same agents, the bridge with raw devices, raw MQTT with raw devices, each on fresh servers
  const cases: { label: string; ours: Delivery; agents: Delivery; wire: Delivery; raw: Delivery }[] = [];
  for (const key of ['one', 'fleet'] as const) {
    const p = products[key];
    const o = await ours(key, template, p, token, 'agent');
    await sleep(1000);
    const a = await anchor(p, imageFiles[key], 'agent');
    await sleep(1000);
    const w = await ours(key, template, p, token, 'wire');
    await sleep(1000);
    const r = await anchor(p, imageFiles[key], 'wire');
    cases.push({ label: `${fmt(p.devices.length)} device${p.devices.length > 1 ? 's' : ''}`, ours: o, agents: a, wire: w, raw: r });
    await sleep(1000);
  }

  // ---- the tables
  const mbps = (devices: number, ms: number) => fmt((devices * P.size) / MB / (ms / 1000), 2);
  const s = (ms: number, digits = 2) => fmt(ms / 1000, digits);
  const ratio = (a: number, b: number) => (Number.isFinite(a / b) ? fmt(a / b, 2) + '×' : 'n/a');
  const judge = (a: number, b: number) => (Number.isFinite(a / b) ? (a / b <= 1.5 ? 'within' : 'over') : 'n/a');
  const held = (d: Delivery) => (d.mid ? d.mid.heapUsed + d.mid.external - d.heapIdle - d.externalIdle : NaN);
  const cpu = (d: Delivery) => fmt((d.serverCpuMs / d.wallMs) * 100);
  const loadCpu = (d: Delivery) => fmt((d.loadCpuMs / d.wallMs) * 100);
  const times = cases.map(({ label, ours: o, agents: a, wire: w, raw: r }) => [
    label,
    s(o.verifiedMs),
    s(o.doneMs),
    s(a.verifiedMs),
    s(a.doneMs),
    s(w.verifiedMs),
    s(r.verifiedMs),
    `${mbps(o.n, o.verifiedMs)} / ${mbps(a.n, a.verifiedMs)} / ${mbps(w.n, w.verifiedMs)} / ${mbps(r.n, r.verifiedMs)}`,
  ]);
  const ratios = cases.map(({ label, ours: o, agents: a, wire: w, raw: r }) => {
    const growth = o.rssPeak - o.rssIdle;
    return [
      label,
      ratio(o.doneMs, a.doneMs),
      ratio(o.verifiedMs, a.verifiedMs),
      ratio(w.verifiedMs, r.verifiedMs),
      `agents: ${judge(o.doneMs, a.doneMs)} (verified: ${judge(o.verifiedMs, a.verifiedMs)}); raw devices: ${judge(w.verifiedMs, r.verifiedMs)}`,
      ratio(o.doneMs, r.verifiedMs),
      ratio(o.verifiedMs, r.verifiedMs),
      `${fmt(o.rssPeak / MB)} / +${fmt(growth / MB, 1)} MB (${fmt(growth / 1024 / o.n, 1)} KB/device)` + (o.mid ? `; held mid-transfer after GC (heap + Buffers) +${fmt(held(o) / MB, 1)} MB (${fmt(held(o) / 1024 / o.mid.running, 1)} KB/transfer)` : ''),
      `${cpu(o)} / ${cpu(a)} / ${cpu(w)} / ${cpu(r)}`,
      `${loadCpu(o)} / ${loadCpu(a)} / ${loadCpu(w)} / ${loadCpu(r)}`,
    ];
  });

  const out: string[] = [];
  out.push(`## OTA benchmark: a ${fmt(P.size)}-byte image to 1 and to ${fmt(n)} devices, the bridge vs raw MQTT over bare aedes`);
  out.push('');
  out.push('Times (s from the release, or from the raw publisher\'s start, until the last device):');
  out.push('');
  out.push(
    ...table(
      [
        'devices', 'ours: all verified', 'ours: all said hello on v2', 'raw MQTT, same agents: all verified', 'raw MQTT, same agents: all said hello on v2',
        'bridge, raw devices: all verified', 'raw MQTT, raw devices: all bytes acknowledged', 'MB/s to verified: ours / raw MQTT, same agents / bridge, raw devices / raw MQTT, raw devices',
      ],
      times,
    ),
  );
  out.push('');
  out.push('Ratios, budget and resources:');
  out.push('');
  out.push(
    ...table(
      [
        'devices', 'ours / raw MQTT, same agents: hello (like for like)', 'ours / raw MQTT, same agents: verified (like for like)', 'bridge, raw devices / raw MQTT, raw devices (like for like)',
        'budget ≤ 1.5× (judged on the like-for-like pairs)', 'ours hello / raw MQTT, raw devices (not like for like)', 'ours verified / raw MQTT, raw devices (not like for like)',
        'bridge RSS peak / growth over idle (ours)', 'server CPU % of one core: bridge (ours) / bare aedes (same agents) / bridge (raw devices) / bare aedes (raw devices)',
        'device process CPU % of one core: agents (ours) / agents (raw MQTT) / raw devices (bridge) / raw devices (raw MQTT)',
      ],
      ratios,
    ),
  );
  out.push('');
  out.push(
    'One run. MB = 2^20 bytes; MB/s = devices × image size / time. Ours: the real agent on the simulator; "verified": the device checked the SHA-256 of its slot and said so; ' +
      '"hello on v2": it then reset, came back after the Fleet\'s 1 s of darkness per reboot, logged in and said hello running version 2 (the bridge\'s job done). ' +
      '"Raw MQTT, same agents": the same Fleet of the same agents (same options, same image), connected to bare aedes, with a minimal publisher beside aedes speaking the device protocol ' +
      '(begin, chunks a window ahead of the acknowledged offset, verified, hello on v2): the devices do all their own work (flash, SHA-256, reset, 1 s dark, reconnect), the server none of the bridge\'s (login, store, rollout, disk). ' +
      '"Bridge, raw devices": the same bridge and release, the devices being the anchor\'s raw MQTT clients logged in with their secrets (hello on connect, no flash, no SHA-256, no reset); ' +
      '"raw MQTT, raw devices": those clients on bare aedes with the same publisher. ' +
      'Like for like (same devices on both sides, only the server differs): ours vs raw MQTT with the same agents, and bridge with raw devices vs raw MQTT with raw devices. ' +
      'The budget (issue: within 1.5× of the raw transfer) is judged on those two pairs: for the agents on the time until every device said hello on v2 (the job done), the verified time\'s verdict in brackets; for the raw devices on the time until every device verified. ' +
      'The two "ours / raw MQTT, raw devices" columns (the previous judgement) are not like for like: they set the bridge with the agents\' own work against bare aedes with devices that do none; shown for comparison only.',
  );
  out.push('');
  out.push('Parameters and context:');
  out.push(machineLine('servers pinned to CPU0, devices (this process) to CPU1 (taskset)', 'plain MQTT, NODELAY on both sides'));
  out.push(
    `- image: the fleet's app at version ${VERSION} padded with a comment to ${fmt(P.size)} bytes (header included), uploaded through POST /v1/products/:product/firmware (multipart) into a template; released with PUT /v1/products/:product/firmware/release {version: ${VERSION}, product_default: true, concurrency: ${Math.max(1000, n)}, min_attempts: ${Math.max(1000, n)}}; ` +
      `bridge OTA defaults: chunk ${fmt(CHUNK)} B, window ${WINDOW} chunks, ack timeout ${defaultOptions.ota.ackTimeoutMs} ms, tick ${defaultOptions.ota.tickMs} ms`,
  );
  out.push(
    `- ours: createBridge in a child process (embedded SQLite in a copy of the template, HTTP and MQTT on port 0, no TLS/WebSocket listeners, log level warn), fresh per case; devices: new Fleet({...}) of the real agent in this process (shared realm, flash in memory, ${fmt(SLOT / 1024)} KB slots, ramp ${fmt(P.ramp)}/s, reboot after ${1} s dark as the Fleet's default); ` +
      `times from the bridge's job records (its store's createJob/updateJob wrapped in the child), from the release request; one forced GC in the bridge ${P.mid} s into the transfer (its memory reading: a pause of the order of 0.1 s)`,
  );
  out.push(
    `- raw MQTT (both anchors): bare aedes 1.2 (no authentication) in a child process with the publisher in the same process (aedes.publish, QoS 1; the devices' messages taken by in-process subscriptions to dev/+/ota and dev/+/hello), fresh per case; ` +
      `the bridge's otaBegin (the image's SHA-256; job 1 for every device, the bridge's job ids run 1..N) and otaChunk messages from the image in memory, each encoded once (${fmt(CHUNK)} B of image per chunk, ${WINDOW} in flight ahead of the acknowledged offset, the window resent once from a repeated offset, begin again after ${defaultOptions.ota.ackTimeoutMs} ms of silence (failed after ${defaultOptions.ota.maxSilences} in a row) or on a reconnect's hello, as the bridge's Transfer; no store, disk or rollout); times from the start request sent by this process (the transfers' records kept in the child, same clock)`,
  );
  out.push(
    `- raw MQTT, same agents: the same new Fleet({...}) as ours (same options and image), pointed at bare aedes, which takes any login; once every device said hello (version 1), the publisher is told to start: begin to each, ` +
      `verified at its "verified" status, done at its hello running version ${VERSION} after the reset (as the bridge: also when its "verified" status never arrived, the agent having reset first); nothing from the cloud is needed after the hello (the agent confirms a trial image when it reaches the broker)`,
  );
  out.push(
    `- raw MQTT, raw devices: raw MQTT 3.1.1 clients in this process (bench/ota-anchor.ts), no login, no hello; begin to every device at the start; each device PUBACKs and acknowledges every chunk with a QoS 1 otaStatus, the last one "verified"; no flash, SHA-256 or reboot`,
  );
  const midLine = (d: Delivery) =>
    d.mid
      ? `mid-transfer (${s(d.mid.atMs, 1)} s after the release, ${fmt(d.mid.running)} transfers running), after a forced GC: RSS ${fmt(d.mid.rss / MB)} MB (+${fmt((d.mid.rss - d.rssIdle) / MB, 1)} MB over idle, ${fmt((d.mid.rss - d.rssIdle) / 1024 / d.mid.running, 1)} KB per running transfer), ` +
        `V8 heap + external (Buffers) ${fmt((d.mid.heapUsed + d.mid.external) / MB, 1)} MB (+${fmt((d.mid.heapUsed + d.mid.external - d.heapIdle - d.externalIdle) / MB, 1)} MB, ${fmt((d.mid.heapUsed + d.mid.external - d.heapIdle - d.externalIdle) / 1024 / d.mid.running, 1)} KB per running transfer); `
      : '';
  const msStats = (xs: number[]) => {
    const v = [...xs].sort((a, b) => a - b);
    return v.length ? `median ${fmt(median(v))}, p90 ${fmt(percentile(v, v.length, 0.9))}, max ${fmt(v[v.length - 1])} ms` : 'n/a';
  };
  out.push(
    '- bridge with raw devices: the same bridge, template and release; the devices are the anchor\'s raw clients (bench/ota-anchor.ts) logging in with id and secret, subscribing to cloud/<id>/ota and saying hello (version 1, the agent\'s fields) on connect; ' +
      'they take and acknowledge the chunks as against bare aedes; timed until every job is verified (they never reset, so no job is done)',
  );
  for (const c of cases) {
    const { ours: o, agents: a, wire: w, raw: r } = c;
    out.push(
      `- ${c.label}, ours: devices connected and said hello in ${s(o.connectMs, 1)} s; per device, job start → verified ${msStats(o.transferMs)}; verified → hello on v2 (reset, 1 s dark, reconnect, login, hello) ${msStats(o.rebootMs)}; ` +
        `bridge RSS ${fmt(o.rssIdle / MB)} MB before (after GC), peak ${fmt(o.rssPeak / MB)} MB during (sampled every 50 ms), ${fmt(o.rssAfterGc / MB)} MB after (GC); V8 heap ${fmt(o.heapIdle / MB)} → ${fmt(o.heapEnd / MB)} MB at the end (no GC); ${midLine(o)}` +
        `bridge CPU ${fmt(o.serverCpuMs / 1000, 1)} s (${fmt(o.serverCpuMs / o.n, 1)} ms per device) in ${s(o.wallMs, 1)} s; device process (the agents) CPU ${fmt((o.loadCpuMs / o.wallMs) * 100)} % of a core, event-loop delay p99 ${fmt(o.loopP99)} / max ${fmt(o.loopMax)} ms; ${o.notes.join('; ')}`,
    );
    out.push(
      `- ${c.label}, raw MQTT with the same agents: devices connected and said hello in ${s(a.connectMs, 1)} s; per device, begin → verified ${msStats(a.transferMs)}; verified → hello on v2 ${msStats(a.rebootMs)}; ` +
        `broker RSS ${fmt(a.rssIdle / MB)} MB before (after GC), peak ${fmt(a.rssPeak / MB)} MB, ${fmt(a.rssAfterGc / MB)} MB after (GC); broker CPU ${fmt(a.serverCpuMs / 1000, 1)} s (${fmt(a.serverCpuMs / a.n, 1)} ms per device) in ${s(a.wallMs, 1)} s; ` +
        `device process (the agents) CPU ${fmt((a.loadCpuMs / a.wallMs) * 100)} % of a core, event-loop delay p99 ${fmt(a.loopP99)} / max ${fmt(a.loopMax)} ms; ${a.notes.join('; ')}`,
    );
    out.push(
      `- ${c.label}, bridge with raw devices: logged in and said hello in ${s(w.connectMs, 1)} s; per device, job start → verified ${msStats(w.transferMs)}; ` +
        `bridge RSS ${fmt(w.rssIdle / MB)} MB before (after GC), peak ${fmt(w.rssPeak / MB)} MB during (+${fmt((w.rssPeak - w.rssIdle) / MB, 1)} MB, ${fmt((w.rssPeak - w.rssIdle) / 1024 / w.n, 1)} KB/device), ${fmt(w.rssAfterGc / MB)} MB after (GC); ${midLine(w)}` +
        `bridge CPU ${fmt(w.serverCpuMs / 1000, 1)} s in ${s(w.wallMs, 1)} s; device process CPU ${fmt((w.loadCpuMs / w.wallMs) * 100)} % of a core, event-loop delay p99 ${fmt(w.loopP99)} / max ${fmt(w.loopMax)} ms; ${w.notes.join('; ')}`,
    );
    out.push(
      `- ${c.label}, raw MQTT with raw devices: devices subscribed in ${s(r.connectMs, 1)} s; per device, begin → last acknowledgement ${msStats(r.transferMs)}; ` +
        `broker RSS ${fmt(r.rssIdle / MB)} MB before (after GC), peak ${fmt(r.rssPeak / MB)} MB, ${fmt(r.rssAfterGc / MB)} MB after (GC); broker CPU ${fmt(r.serverCpuMs / 1000, 1)} s in ${s(r.wallMs, 1)} s; ` +
        `device process CPU ${fmt((r.loadCpuMs / r.wallMs) * 100)} % of a core, event-loop delay p99 ${fmt(r.loopP99)} / max ${fmt(r.loopMax)} ms; ${r.notes.join('; ')}`,
    );
  }
  const problems = cases.flatMap((c) => [...c.ours.problems, ...c.agents.problems, ...c.wire.problems, ...c.raw.problems]);
  out.push(
    `- problems: ${problems.length ? problems.join('; ') : 'none (ours and raw MQTT with the same agents: every device verified and said hello on version 2; raw devices: every transfer verified; nothing crashed, refused, dropped or logged)'}`,
  );
  if (cpuProfDir) out.push(`- CPU profiles of the ${fmt(n)}-device deliveries (the server and this process, for each side) in ${cpuProfDir}`);
  out.push(wholeRunLine());
  console.log(out.join('\n'));
  return 0;
}

runMain(main);
