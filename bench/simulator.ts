/**
 * Simulator benchmark (issue 6: "10,000 devices from one process on this
 * machine (2 cores), memory per device reported"). One run, one markdown
 * table: the simulator (a Fleet of the real agent image, in this process)
 * beside bare MQTT.js clients doing the same on the wire, against the same
 * bridge. Asserts nothing.
 *
 * Measured for each side, N devices (10,000; --quick 1,000):
 *   - time to connect all N: from the start of the ramp until N sessions
 *     hold a CONNACK (the simulator's stats().connected; the anchor counts
 *     its clients' 'connect' and 'close'), bounded by a deadline;
 *   - devices connected at the end of a steady window (30 s; --quick 10 s,
 *     after 10 s, --quick 3 s, to settle) and device → cloud messages/s
 *     during it (publishes counted on the wire: the simulator's LinkWatch,
 *     the anchor's publish calls);
 *   - the load process's RSS and V8 heap per device: after all are
 *     connected minus before the devices were built, both after a forced GC,
 *     divided by N; its CPU in the window, and per session accepted while
 *     connecting (CPU time of the connect phase, the traffic of the devices
 *     already connected included, over the sessions accepted in it) and its
 *     event-loop delay in the window (monitorEventLoopDelay, p99 and max:
 *     how late the devices' timers run, so how faithful the load's rates are);
 *   - the bridge's RSS growth per device (after a forced GC, over the idle
 *     bridge), its CPU in the window and per session accepted while connecting.
 *
 * The load: a bench scenario with the quiet scenario's app (one double
 * variable on a walk, one function, keepalive 60 s) and known rates: an
 * event "reading" per device every 10 s on average (exponential intervals,
 * QoS 0, as the app's `occasionally`), vitals on connect and then every
 * window length (so each device reports exactly once in the window,
 * whatever its phase). Both sides ramp at 150 devices/s, the simulator's
 * default ramp (devices due by the clock, each at a random point of a 50 ms
 * tick), below what the bridge accepts on one core (about 200 sessions/s:
 * at 500/s, logins queue past the agent's 10 s CONNACK timeout and devices
 * reconnect; --ramp 500 to see it). The anchor's clients
 * (MQTT.js 5 defaults but NODELAY) do what the agent does on CONNACK:
 * subscribe to cloud/<id>/req|ota|evt at QoS 1, hello and status online at
 * QoS 1, vitals at QoS 0; same will, credentials, topics and CBOR payloads.
 *
 * Method: the bridge runs in a child process (bench/simulator-server.ts)
 * pinned to CPU0, on the embedded SQLite default, plain MQTT on port 0 and
 * no TLS listeners; the load runs pinned to CPU1 (taskset, when present).
 * The devices are registered once through the operator HTTP API exactly as
 * the simulator does (its provision(), 1,000 per request, with a bearer
 * token of a user owning the product), on a bridge that is then closed;
 * each side then gets a fresh bridge on a copy of that data dir, so neither
 * inherits the other's sessions or heap. The simulator runs in this process
 * (GC exposed at run time through v8.setFlagsFromString); the anchor runs in
 * a fresh child process pinned to CPU1 too, so its RSS per device is not
 * flattered by pages the Fleet freed. Every wait is bounded.
 *
 *   cd /work/main && npx tsx bench/simulator.ts [--quick] [--devices N]
 *   npm run bench -w simulator
 *
 * Options (defaults shown): --devices 10000 --window 30 (s) --event-every 10
 * (s, mean) --vitals-every 0 (s; 0: the window's length) --settle 10 (s)
 * --ramp 150 (devices/s) --connect-slack 60 (s allowed beyond the ramp's
 * length to connect all); --quick: --devices 1000 --window 10 --settle 3.
 */
import { cpSync } from 'node:fs';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import { encode, LIMITS } from '@flotilla/protocol';
import { defaultFleetOptions, Fleet, parseScenario, provision, type CredentialsFile, type Scenario } from '@flotilla/simulator';
import {
  commandLine, fmt, installCleanup, log, machineLine, makeTempDir, pinLoadGenerator, pinned, runMain, startChildServer, startRun, table, wholeRunLine, type ChildServer,
} from './harness.js';
import type { AnchorPlan, AnchorStats, SimReply, SimRequest } from './simulator-server.js';

// ------------------------------------------------------------------ parameters

const { numbers } = commandLine();
const P = numbers(
  {
    devices: 10_000,
    window: 30,
    // Before the window: timers the ramp delayed have fired, the last hellos are stored.
    settle: 10,
    eventEvery: 10,
    vitalsEvery: 0,
    // The simulator's default (defaultFleetOptions.rampPerSecond): the bridge on one core accepts about
    // 200 agent sessions/s (scrypt, then the hello, online and vitals writes), so at 500/s logins queue
    // past the agent's 10 s CONNACK timeout and devices reconnect (--ramp 500 shows it).
    ramp: 150,
    connectSlack: 60,
  },
  // --quick
  { devices: 1000, window: 10, settle: 3 },
);
if (P.devices < 1 || P.window <= 0 || P.eventEvery < 0.1 || P.ramp <= 0) throw new Error('--devices, --window, --event-every (≥ 0.1) and --ramp must be positive');
const VITALS_EVERY = P.vitalsEvery || P.window;
const EVENT = 'reading';
const KEEPALIVE = 60;
/** Device → cloud messages per second the scenario asks for, N devices connected. */
const EXPECTED_RATE = P.devices * (1 / P.eventEvery + 1 / VITALS_EVERY);
const CONNECT_DEADLINE_MS = (P.devices / P.ramp + P.connectSlack) * 1000;

const SERVER = fileURLToPath(new URL('./simulator-server.ts', import.meta.url));
/** The bridge's log lines (pino, at info: it logs refusals) are counted, its start and stop aside. */
const QUIET = /"msg":"(bridge listening|bridge closed)"/;

/** The quiet scenario's app with rates this benchmark can count on. */
const SCENARIO: Scenario = parseScenario(
  {
    description: 'bench/simulator.ts: the quiet app, an event every ' + P.eventEvery + ' s and vitals every ' + VITALS_EVERY + ' s per device',
    vitals: VITALS_EVERY,
    keepalive: KEEPALIVE,
    variables: { temperature: { type: 'double', walk: { start: 21, step: 0.05, min: 15, max: 30 } } },
    functions: { setLed: { returns: 1 } },
    events: [{ name: EVENT, every: P.eventEvery, data: '{{temperature}}' }],
  },
  'bench',
);

installCleanup();
// This process (the simulator's load) runs on CPU1; the bridge goes to CPU0.
pinLoadGenerator();

// A forced GC before each memory reading, without asking for node flags (npm run bench runs plain tsx).
const gcFn = ((): (() => void) | null => {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed) return exposed;
  v8.setFlagsFromString('--expose-gc');
  try {
    // A new context gets the gc global the flag now exposes.
    return vm.runInNewContext('gc') as () => void;
  } catch {
    return null;
  }
})();

// ------------------------------------------------------------------ processes and measurements

type Ready = Extract<SimReply, { op: 'ready' }>;
type Proc = ChildServer<SimRequest, SimReply, Ready>;
type Mem = { rss: number; heapUsed: number };
type Counts = Record<string, number>;

async function memHere(): Promise<Mem> {
  if (gcFn) {
    gcFn();
    await new Promise((r) => setImmediate(r));
    gcFn();
  }
  const u = process.memoryUsage();
  return { rss: u.rss, heapUsed: u.heapUsed };
}

async function memOf(p: Proc): Promise<Mem> {
  return p.request<Extract<SimReply, { op: 'mem' }>>('mem');
}

/**
 * How late timers ran, ms, from monitorEventLoopDelay's p99 and max (ns): it samples every 10 ms
 * (its default resolution, used on both sides) and records the whole interval, so 10 ms is taken off.
 */
function lateness(p99Ns: number, maxNs: number): { p99: number; max: number } {
  const late = (ns: number): number => Math.max(0, ns / 1e6 - 10);
  return { p99: late(p99Ns), max: late(maxNs) };
}

const sum = (c: Counts): number => Object.values(c).reduce((a, b) => a + b, 0);
const minus = (a: Counts, b: Counts): Counts => Object.fromEntries(Object.entries(a).map(([k, v]) => [k, v - (b[k] ?? 0)]));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What each side's load reports while it runs. */
interface LoadStats {
  started: number;
  connected: number;
  connects: number;
  refused: number;
  /** Sessions that ended after their CONNACK. */
  disconnects: number;
  /** Connections closed before their CONNACK (the anchor only; the simulator's LinkWatch does not see them). */
  abandoned?: number;
  sent: Counts;
}

/** A side's devices: built and ramped by start(), which answers the memory before they were built. */
interface Load {
  start(): Promise<Mem>;
  stats(): Promise<LoadStats>;
  mem(): Promise<Mem>;
  cpuMs(): Promise<number>;
  /** The load process's event-loop delay since the last call (then reset), ms: how late its timers run. */
  loopDelay(): Promise<{ p99: number; max: number }>;
  stop(): Promise<void>;
  /** Lines the devices logged (the simulator's onLog; none for the anchor). */
  logs: { count: number; first: string[] };
}

/** The simulator: a Fleet of the real agent in this process. */
function fleetLoad(port: number, creds: CredentialsFile): Load {
  let fleet: Fleet | null = null;
  const logs = { count: 0, first: [] as string[] };
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  return {
    logs,
    async loopDelay() {
      const r = lateness(loop.percentile(99), loop.max);
      loop.reset();
      return r;
    },
    async start() {
      const before = await memHere();
      fleet = new Fleet({
        bridge: `mqtt://127.0.0.1:${port}`, product: creds.product.id, devices: creds.devices, scenario: SCENARIO, rampPerSecond: P.ramp,
        onLog: (line) => {
          logs.count++;
          if (logs.first.length < 3) logs.first.push(line.slice(0, 300));
        },
      });
      // Resolves when the ramp has powered every device on; connections are counted by the caller.
      fleet.start().catch((e: Error) => {
        logs.count++;
        logs.first.unshift('fleet.start: ' + e.message);
      });
      return before;
    },
    async stats() {
      const s = fleet!.stats();
      return { started: s.started, connected: s.connected, connects: s.connects, refused: s.refused, disconnects: s.disconnects, sent: s.sent };
    },
    mem: memHere,
    async cpuMs() {
      const c = process.cpuUsage();
      return (c.user + c.system) / 1000;
    },
    async stop() {
      fleet?.stop();
      loop.disable();
    },
  };
}

/** The anchor: bare MQTT.js clients in a fresh child process (simulator-server.ts mqttjs). */
async function anchorLoad(port: number, creds: CredentialsFile): Promise<Load> {
  const p: Proc = await startChildServer<SimRequest, SimReply, Ready>({ script: SERVER, args: ['mqttjs'], cpuList: '1', nodeFlags: ['--expose-gc'], name: 'mqttjs', who: 'anchor', readyMs: 60_000, dir: null });
  const plan: AnchorPlan = { port, product: creds.product.id, devices: creds.devices, rampPerSecond: P.ramp, eventEvery: P.eventEvery, eventName: EVENT, vitalsEvery: VITALS_EVERY, keepalive: KEEPALIVE };
  return {
    logs: p.log,
    async start() {
      return (await p.request<Extract<SimReply, { op: 'start' }>>('start', { plan })).baseline;
    },
    async stats() {
      const s: AnchorStats = await p.request<Extract<SimReply, { op: 'stats' }>>('stats');
      return { started: s.started, connected: s.connected, connects: s.connects, refused: s.refused, disconnects: s.ended, abandoned: s.abandoned, sent: s.sent };
    },
    mem: () => memOf(p),
    cpuMs: () => p.cpuMs(),
    async loopDelay() {
      const r = await p.request<Extract<SimReply, { op: 'loop' }>>('loop');
      return lateness(r.p99, r.max);
    },
    async stop() {
      await p.request('stop');
      await p.exit();
    },
  };
}

async function startBridge(template: string): Promise<Proc> {
  const dir = makeTempDir('flotilla-bench-sim-');
  cpSync(template, dir, { recursive: true });
  return startChildServer<SimRequest, SimReply, Ready>({ script: SERVER, args: ['bridge', dir], cpuList: '0', nodeFlags: ['--expose-gc'], ignoreLog: QUIET, name: 'bridge', who: 'bridge', readyMs: 60_000, dir });
}

interface SideResult {
  /** ms from the start of the ramp until all N were connected; NaN when the deadline came first. */
  connectMs: number;
  /** How long the connect phase took (connectMs, or the deadline), and the sessions accepted and devices connected at its end. */
  rampMs: number;
  sessionsThen: number;
  connectedThen: number;
  connectedEnd: number;
  final: LoadStats;
  windowMs: number;
  windowSent: Counts;
  /** The load process's event-loop delay in the window, ms. */
  loopDelay: { p99: number; max: number };
  base: Mem;
  connectedMem: Mem;
  endMem: Mem;
  /** CPU ms used during the connect phase; % of one core in the window. */
  loadCpuRamp: number;
  loadCpuWindow: number;
  bridgeIdle: Mem;
  bridgeConnected: Mem;
  bridgeCpuRamp: number;
  bridgeCpuWindow: number;
  bridgeSessions: { clients: number; devices: number };
  bridgeLog: { count: number; first: string[] };
  deviceLog: { count: number; first: string[] };
}

/** One side: a fresh bridge, the load's ramp until all are connected (or the deadline), then the steady window. */
async function side(name: string, template: string, makeLoad: (port: number) => Promise<Load>): Promise<SideResult> {
  const bridge = await startBridge(template);
  try {
    const bridgeIdle = await memOf(bridge);
    const load = await makeLoad(bridge.ready.mqttPort);
    try {
      const n = P.devices;
      const b0 = await bridge.cpuMs();
      const l0 = await load.cpuMs();
      const t0 = performance.now();
      const base = await load.start();
      // Counted from the start of the ramp; the memory reading above comes before it.
      let s = await load.stats();
      let lastLog = t0;
      while (s.connected < n && performance.now() - t0 < CONNECT_DEADLINE_MS) {
        await sleep(100);
        s = await load.stats();
        if (performance.now() - lastLog > 5000) {
          lastLog = performance.now();
          log(`${name}: ${fmt(s.connected)}/${fmt(n)} connected (started ${fmt(s.started)}, sessions ${fmt(s.connects)}, refused ${fmt(s.refused)}, ended ${fmt(s.disconnects)}` + (s.abandoned !== undefined ? `, closed before CONNACK ${fmt(s.abandoned)})` : ')'));
        }
      }
      const rampMs = performance.now() - t0;
      const connectMs = s.connected >= n ? rampMs : NaN;
      const bridgeCpuRamp = (await bridge.cpuMs()) - b0;
      const loadCpuRamp = (await load.cpuMs()) - l0;
      log(`${name}: ${fmt(s.connected)}/${fmt(n)} connected after ${fmt(rampMs / 1000, 1)} s; bridge CPU ${fmt((bridgeCpuRamp / rampMs) * 100)} %, load CPU ${fmt((loadCpuRamp / rampMs) * 100)} % during the ramp`);
      const connectedThen = s.connected;
      const sessionsThen = s.connects;
      const connectedMem = await load.mem();
      const bridgeConnected = await memOf(bridge);
      await sleep(P.settle * 1000);

      // The steady window.
      const w0 = await load.stats();
      const wb0 = await bridge.cpuMs();
      const wl0 = await load.cpuMs();
      await load.loopDelay();
      const tw0 = performance.now();
      await sleep(P.window * 1000);
      const w1 = await load.stats();
      const loopDelay = await load.loopDelay();
      const windowMs = performance.now() - tw0;
      const bridgeCpuWindow = (((await bridge.cpuMs()) - wb0) / windowMs) * 100;
      const loadCpuWindow = (((await load.cpuMs()) - wl0) / windowMs) * 100;
      const windowSent = minus(w1.sent, w0.sent);
      log(`${name}: window ${fmt(windowMs / 1000, 1)} s: ${fmt(w1.connected)}/${fmt(n)} connected, ${fmt(sum(windowSent) / (windowMs / 1000))} msg/s; bridge CPU ${fmt(bridgeCpuWindow)} %, load CPU ${fmt(loadCpuWindow)} %`);
      const endMem = await load.mem();
      const bridgeSessions = await bridge.request<Extract<SimReply, { op: 'sessions' }>>('sessions');
      return {
        connectMs, rampMs, sessionsThen, connectedThen, connectedEnd: w1.connected, final: w1, windowMs, windowSent, loopDelay, base, connectedMem, endMem, loadCpuRamp, loadCpuWindow,
        bridgeIdle, bridgeConnected, bridgeCpuRamp, bridgeCpuWindow, bridgeSessions: { clients: bridgeSessions.clients, devices: bridgeSessions.devices }, bridgeLog: bridge.log, deviceLog: load.logs,
      };
    } finally {
      await load.stop();
    }
  } finally {
    await bridge.exit();
  }
}

// ------------------------------------------------------------------ the run

async function main(): Promise<number> {
  startRun('bridge');
  const n = P.devices;

  // ---- devices registered through the operator API, as the simulator does
  const template = makeTempDir('flotilla-bench-sim-template-');
  // Both CPUs: registering is not measured.
  const setup: Proc = await startChildServer<SimRequest, SimReply, Ready>({ script: SERVER, args: ['setup', template], cpuList: pinned ? '0,1' : '0', name: 'setup', who: 'bridge', readyMs: 60_000, dir: null });
  const tp = performance.now();
  const creds = await provision({ api: `http://127.0.0.1:${setup.ready.httpPort}`, token: setup.ready.token, product: 'bench', count: n, file: null });
  const provisionMs = performance.now() - tp;
  await setup.request('close');
  await setup.exit();
  log(`registered ${fmt(n)} devices of product ${creds.product.slug} (id ${creds.product.id}) through POST /v1/products/:product/devices in ${fmt(provisionMs / 1000, 1)} s`);

  // ---- the simulator, then the anchor, each against a fresh bridge on a copy of that data dir
  const sim = await side('simulator', template, async (port) => fleetLoad(port, creds));
  // Let the kernel finish closing the fleet's sockets before the next ramp.
  await sleep(2000);
  const bare = await side('mqtt.js', template, (port) => anchorLoad(port, creds));

  // ---- the table
  const KB = 1024;
  const rows: string[][] = [];
  const row = (label: string, a: number, b: number, digits: number, shown?: [string, string]): void => {
    const q = a / b;
    rows.push([label, shown?.[0] ?? fmt(a, digits), shown?.[1] ?? fmt(b, digits), Number.isFinite(q) ? fmt(q, 2) + '×' : 'n/a']);
  };
  const perDevice = (r: SideResult, f: (m: Mem) => number) => (f(r.connectedMem) - f(r.base)) / n / KB;
  const rate = (r: SideResult) => sum(r.windowSent) / (r.windowMs / 1000);
  const connectCell = (r: SideResult) => (Number.isFinite(r.connectMs) ? fmt(r.connectMs / 1000, 1) : `not all: ${fmt(r.connectedThen)} after ${fmt(CONNECT_DEADLINE_MS / 1000)}`);
  row(`devices connected at the end of the ${P.window} s window (of ${fmt(n)})`, sim.connectedEnd, bare.connectedEnd, 0);
  row(`time to connect all ${fmt(n)} (s; the ramp alone takes ${fmt(n / P.ramp, 1)})`, sim.connectMs / 1000, bare.connectMs / 1000, 1, [connectCell(sim), connectCell(bare)]);
  row(`device → cloud messages/s in the window (the scenario asks ${fmt(EXPECTED_RATE)})`, rate(sim), rate(bare), 0);
  row('load process RSS per device, all connected, after GC (KB)', perDevice(sim, (m) => m.rss), perDevice(bare, (m) => m.rss), 1);
  row('load process V8 heap per device, all connected, after GC (KB)', perDevice(sim, (m) => m.heapUsed), perDevice(bare, (m) => m.heapUsed), 1);
  row('load process CPU in the window (% of one core)', sim.loadCpuWindow, bare.loadCpuWindow, 1);
  row('load process event-loop delay in the window, p99 / max (ms: how late device timers run)', sim.loopDelay.p99, bare.loopDelay.p99, 1, [
    `${fmt(sim.loopDelay.p99, 1)} / ${fmt(sim.loopDelay.max)}`,
    `${fmt(bare.loopDelay.p99, 1)} / ${fmt(bare.loopDelay.max)}`,
  ]);
  row('load process CPU per session accepted while connecting (ms)', sim.loadCpuRamp / sim.sessionsThen, bare.loadCpuRamp / bare.sessionsThen, 2);
  row('bridge RSS growth per device, after GC (KB)', (sim.bridgeConnected.rss - sim.bridgeIdle.rss) / n / KB, (bare.bridgeConnected.rss - bare.bridgeIdle.rss) / n / KB, 1);
  row('bridge CPU in the window (% of one core)', sim.bridgeCpuWindow, bare.bridgeCpuWindow, 1);
  row('bridge CPU per session accepted while connecting (ms)', sim.bridgeCpuRamp / sim.sessionsThen, bare.bridgeCpuRamp / bare.sessionsThen, 2);

  const mb = (b: number) => fmt(b / 2 ** 20, 0) + ' MB';
  const breakdown = (c: Counts) => Object.entries(c).filter(([, v]) => v > 0).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k || 'other'} ${fmt(v)}`).join(', ') || 'none';
  const evtBytes = encode('event', { data: '21.05', ttl: LIMITS.eventTtlDefault }).length;
  const out: string[] = [];
  out.push(`## Simulator benchmark: ${fmt(n)} devices of the real agent vs bare MQTT.js, one process each`);
  out.push('');
  out.push(...table(['measure', 'simulator (real agent)', 'bare MQTT.js', 'ratio (simulator/bare)'], rows));
  out.push('');
  out.push(`One run. Issue 6: ${fmt(n)} devices from one process on this machine, memory per device reported.`);
  out.push('');
  out.push('Parameters and context:');
  out.push(machineLine('bridge pinned to CPU0, load (this process, or the anchor\'s child) to CPU1 (taskset)', 'plain MQTT, NODELAY on both sides'));
  out.push(`- bridge: createBridge in a child process, embedded SQLite in a temp data dir, MQTT on port 0, no TLS/WebSocket listeners, default limits (per-device events 1/s bursts of 4, CONNACK within the agent's 10 s); a fresh bridge per side on a copy of the data dir where ${fmt(n)} devices were registered through POST /v1/products/:product/devices by the simulator's provision() (1,000 per request, bearer token of the product's owner): ${fmt(provisionMs / 1000, 1)} s`);
  out.push(`- load: ${SCENARIO.description}; keepalive ${KEEPALIVE} s; events QoS 0 "${EVENT}" (${evtBytes} B CBOR payload), exponential intervals; ramp ${fmt(P.ramp)} devices/s on both sides (the simulator's default, defaultFleetOptions.rampPerSecond, is ${defaultFleetOptions.rampPerSecond}); connect deadline ${fmt(CONNECT_DEADLINE_MS / 1000)} s; ${P.settle} s to settle, then the ${P.window} s window`);
  out.push(`- simulator: new Fleet({...}) from @flotilla/simulator in this process (shared realm, flash in memory, probe on); memory read after a forced GC (v8.setFlagsFromString('--expose-gc')${gcFn ? '' : ': NOT AVAILABLE, readings without GC'})`);
  out.push('- anchor: one MQTT.js 5 client per device (defaults: reconnect every 1 s, 30 s connect timeout; NODELAY set) in a fresh child process pinned to CPU1 and run with --expose-gc; baseline read in that process after loading mqtt and receiving the credentials; on CONNACK it subscribes to cloud/<id>/req|ota|evt (QoS 1), publishes hello and status online (QoS 1) and vitals (QoS 0), as the agent; the same will, credentials, topics and CBOR payload kinds');
  for (const [label, r] of [['simulator', sim], ['mqtt.js', bare]] as const) {
    out.push(
      `- ${label}: load RSS ${mb(r.base.rss)} before the devices, ${mb(r.connectedMem.rss)} all connected, ${mb(r.endMem.rss)} after the window (${fmt((r.endMem.rss - r.base.rss) / n / KB, 1)} KB/device); heap ${mb(r.base.heapUsed)} → ${mb(r.connectedMem.heapUsed)} → ${mb(r.endMem.heapUsed)}; ` +
        `connecting: ${fmt(r.rampMs / 1000, 1)} s, bridge CPU ${fmt((r.bridgeCpuRamp / r.rampMs) * 100)} %, load CPU ${fmt((r.loadCpuRamp / r.rampMs) * 100)} %; ` +
        `bridge RSS idle ${mb(r.bridgeIdle.rss)}, all connected ${mb(r.bridgeConnected.rss)}; bridge holds ${fmt(r.bridgeSessions.clients)} MQTT clients at the end; ` +
        `sessions ${fmt(r.final.connects)} accepted, ${fmt(r.final.refused)} refused, ${fmt(r.final.disconnects)} ended` + (r.final.abandoned !== undefined ? `, ${fmt(r.final.abandoned)} connections closed before their CONNACK` : '') + `; sent in the window: ${breakdown(r.windowSent)} in ${fmt(r.windowMs / 1000, 1)} s`,
    );
  }
  const problems: string[] = [];
  for (const [label, r] of [['simulator', sim], ['mqtt.js', bare]] as const) {
    if (!Number.isFinite(r.connectMs)) problems.push(`${label}: only ${fmt(r.connectedThen)}/${fmt(n)} connected within ${fmt(CONNECT_DEADLINE_MS / 1000)} s`);
    if (r.connectedEnd < n) problems.push(`${label}: ${fmt(r.connectedEnd)}/${fmt(n)} connected at the end of the window`);
    if (r.final.refused) problems.push(`${label}: ${fmt(r.final.refused)} CONNECTs refused`);
    if (r.final.disconnects) problems.push(`${label}: ${fmt(r.final.disconnects)} sessions ended after their CONNACK`);
    if (r.final.abandoned) problems.push(`${label}: ${fmt(r.final.abandoned)} connections closed before their CONNACK`);
    if (r.bridgeLog.count) problems.push(`${label}: the bridge logged ${fmt(r.bridgeLog.count)} lines, first: ${r.bridgeLog.first.join(' | ')}`);
    if (r.deviceLog.count) problems.push(`${label}: the devices logged ${fmt(r.deviceLog.count)} lines, first: ${r.deviceLog.first.join(' | ')}`);
  }
  out.push(`- problems: ${problems.length ? problems.join('; ') : 'none (every device connected within the deadline and stayed connected, nothing refused, nothing logged)'}`);
  out.push(wholeRunLine());
  console.log(out.join('\n'));
  return 0;
}

runMain(main);
