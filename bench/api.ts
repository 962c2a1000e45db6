/**
 * API benchmark (issue 5): a device's function called and variable read
 * through the bridge's HTTP API (HTTP → bridge → device over MQTT → bridge →
 * HTTP), beside the same request/response done with raw MQTT on bare aedes.
 * Prints one markdown table:
 *
 *   - function call round trip (POST /v1/devices/:id/:fn with {arg}), p50 and
 *     p99, with 1 caller and with 100 concurrent callers, against 100
 *     connected devices; calls/s at 100 callers;
 *   - variable reads (GET /v1/devices/:id/:var) with 100 concurrent callers:
 *     reads/s, p50 and p99;
 *   - beside each, the anchor: one MQTT requester on bare aedes publishes the
 *     same request payload to cloud/<id>/req (QoS 1), the device answers with
 *     the same reply payload on dev/<id>/reply (QoS 1), the requester gets it
 *     on dev/+/reply (QoS 1): the same four hops, the same bytes to the device;
 *   - the budget of issue 5: p50 within 2 ms of the raw MQTT round trip, p99
 *     under 50 ms at 100 concurrent callers; pass/fail;
 *   - beside them, the floor: a node:http server answering the same two routes
 *     with the same JSON at once, with no device and no work behind them
 *     (bench/api-server.ts floor), driven by the same callers: what HTTP
 *     alone costs on the server's one core, which no bridge can go below.
 *
 * Method (as bench/broker.ts, shared/research/mqtt-anchors.md): each server
 * runs in a child process (bench/api-server.ts) pinned to CPU0, this load
 * generator (HTTP callers, requester and the 100 devices) is pinned to CPU1
 * (taskset, when present); loopback only; NODELAY everywhere. The devices
 * are raw mqtt-packet clients speaking the Flotilla protocol (hello first,
 * then a reply to every request), identical in both setups. HTTP callers use
 * node:http with a keep-alive Agent (maxSockets = callers) and a bearer token
 * of the product's owner. Each run starts fresh servers (the bridge on an
 * empty temp data dir it provisions: a user, a product, the devices with
 * their secrets, a token); servers take turns; each cell is the median
 * (min–max) of the runs. Every loop is bounded by a count, a deadline and a
 * stall detector. Per run and server: a warm-up at 100 callers (calls and
 * reads, not measured), then calls at 100 callers, reads at 100 callers,
 * calls with 1 caller. Callers target the devices round-robin.
 *
 *   cd /work/main && npx tsx bench/api.ts [--quick] [--runs 3]
 *   npm run bench -w bridge     (bench/broker.ts, then this)
 *
 * Options (defaults shown): --devices 100 --callers 100; each phase ends
 * at a count or a time, whichever comes first: --warmup 5000 --warmup-ms 3000,
 * --calls 10000 --calls-ms 10000 (calls at 100 callers), --reads 10000
 * --reads-ms 6000, --seq 2000 --seq-ms 4000 (calls with 1 caller); --runs 3
 * --stall-ms 5000 --phase-deadline-ms 30000 (a phase still running then has
 * failed) --call-timeout-ms 3000 (the bridge's callTimeoutMs, and the
 * requester's); --keep-rate-limit (keep the bridge's per-address request
 * limit, Particle's 10,000 per 5 minutes: the phases then fail on 429); --cpu-prof DIR (each
 * server writes V8 CPU profiles under DIR/bare and DIR/bridge, one per thread, when it
 * exits; profiling slows it, so the table of such a run is not a measurement); --quick (a smoke run: 1 run; 2000 or 1.5 s, 2000 or 3 s,
 * 2000 or 2 s, 300 or 1.5 s).
 *
 * Exit status: 0 when the table holds measurements, whether or not the
 * budget is met; 1 when the harness failed (a server did not start, devices
 * did not come online, a phase stalled or a request failed).
 */
import { Agent, request as httpRequest } from 'node:http';
import { fileURLToPath } from 'node:url';
import { encode } from '@flotilla/protocol';
import { benchDeviceId, benchSecret } from './broker-common.js';
import { ARG, CALL_RETURN, FUNCTION, REQUESTER_CLIENT_ID, VAR_VALUE, VARIABLE, type ServerReply, type ServerRequest } from './api-common.js';
import { mqttCounters, openDevices, replyTo, Requester, type RawClient } from './api-mqtt.js';
import {
  cell, commandLine, cpuMeter, fmt, installCleanup, log, startRun, machineLine, makeTempDir, median, percentile, pinLoadGenerator, runMain, startChildServer, table, trackConnections, wholeRunLine,
  type ChildServer,
} from './harness.js';

// ------------------------------------------------------------------ parameters

const { flag, numbers, str } = commandLine();
const P = {
  ...numbers(
    {
      devices: 100,
      callers: 100,
      warmup: 5000,
      warmupMs: 3000,
      calls: 10_000,
      callsMs: 10_000,
      reads: 10_000,
      readsMs: 6000,
      seq: 2000,
      seqMs: 4000,
      runs: 3,
      stallMs: 5000,
      phaseDeadlineMs: 30_000,
      callTimeoutMs: 3000,
    },
    // --quick
    { warmup: 2000, warmupMs: 1500, calls: 2000, callsMs: 3000, reads: 2000, readsMs: 2000, seq: 300, seqMs: 1500, runs: 1 },
  ),
  keepRateLimit: flag('keep-rate-limit'),
  /** Where each server writes a V8 CPU profile (node --cpu-prof), or null. */
  cpuProfDir: str('cpu-prof'),
  setupDeadlineMs: 60_000,
};
if (P.devices < 1 || P.callers < 1 || P.runs < 1) throw new Error('--devices, --callers and --runs must be ≥ 1');

/** The budget of issue 5. */
const BUDGET = { p50SlackMs: 2, p99MaxMs: 50 };

const SERVER = fileURLToPath(new URL('./api-server.ts', import.meta.url));

installCleanup();
// This process is the load generator: CPU1. The servers go to CPU0.
pinLoadGenerator();

// ------------------------------------------------------------------ the server process

type Kind = 'bare' | 'floor' | 'bridge';
const KINDS: Kind[] = ['bare', 'floor', 'bridge'];
const TITLE: Record<Kind, string> = { bare: 'raw MQTT on bare aedes', floor: 'HTTP floor (node:http, no work)', bridge: 'bridge HTTP' };

type Ready = Extract<ServerReply, { op: 'ready' }>;

interface ServerProc extends ChildServer<ServerRequest, ServerReply, Ready> {
  kind: Kind;
}

async function startServer(kind: Kind): Promise<ServerProc> {
  let dir: string | null = null;
  const args: string[] = [kind];
  if (kind === 'bridge') {
    dir = makeTempDir('flotilla-bench-api-');
    args.push(dir, String(P.devices), String(P.callTimeoutMs));
    if (P.keepRateLimit) args.push('--keep-rate-limit');
  }
  // One directory per kind: each thread (tsx's loader runs in a worker) writes a profile of its own, named by pid and thread.
  const nodeFlags = P.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', P.cpuProfDir + '/' + kind] : [];
  const s = await startChildServer<ServerRequest, ServerReply, Ready>({ script: SERVER, args, cpuList: '0', name: kind, who: 'server', readyMs: P.setupDeadlineMs, dir, nodeFlags });
  return { ...s, kind };
}

// ------------------------------------------------------------------ callers

const deviceIds = Array.from({ length: P.devices }, (_, i) => benchDeviceId(i));
const secrets = deviceIds.map((_, i) => benchSecret(i));

type Op = 'call' | 'var';

/** One round trip to device `deviceId`; resolves when the answer is complete and checked, rejects otherwise. */
type RoundTrip = (op: Op, deviceId: string) => Promise<void>;

const CALL_BODY = Buffer.from(JSON.stringify({ arg: ARG }));

/** Sizes of what goes over the wire, measured on the first round trips (the report shows them). */
interface Sizes {
  httpCallResponse: number;
  httpVarResponse: number;
}
const sizes: Record<'bridge' | 'floor', Sizes> = { bridge: { httpCallResponse: 0, httpVarResponse: 0 }, floor: { httpCallResponse: 0, httpVarResponse: 0 } };

function httpRoundTrip(port: number, token: string, agent: Agent, sizes: Sizes): RoundTrip {
  const auth = 'Bearer ' + token;
  const callHeaders = { authorization: auth, 'content-type': 'application/json', 'content-length': String(CALL_BODY.length) };
  const varHeaders = { authorization: auth };
  return (op, deviceId) =>
    new Promise<void>((resolve, reject) => {
      const path = '/v1/devices/' + deviceId + '/' + (op === 'call' ? FUNCTION : VARIABLE);
      const req = httpRequest({ host: '127.0.0.1', port, agent, method: op === 'call' ? 'POST' : 'GET', path, headers: op === 'call' ? callHeaders : varHeaders }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode !== 200) return reject(new Error(`HTTP ${res.statusCode} ${text.slice(0, 200)}`));
          let body: { return_value?: unknown; result?: unknown };
          try {
            body = JSON.parse(text) as typeof body;
          } catch {
            return reject(new Error('HTTP 200 with a body that is not JSON: ' + text.slice(0, 200)));
          }
          if (op === 'call' ? body.return_value !== CALL_RETURN : body.result !== VAR_VALUE) return reject(new Error('unexpected answer ' + text.slice(0, 200)));
          if (op === 'call') sizes.httpCallResponse ||= text.length;
          else sizes.httpVarResponse ||= text.length;
          resolve();
        });
      });
      req.on('socket', (s) => s.setNoDelay(true));
      req.setTimeout(P.callTimeoutMs * 2, () => req.destroy(new Error(`no HTTP answer within ${P.callTimeoutMs * 2} ms`)));
      req.on('error', reject);
      req.end(op === 'call' ? CALL_BODY : undefined);
    });
}

function mqttRoundTrip(requester: Requester): RoundTrip {
  return async (op, deviceId) => {
    const r = await requester.ask(deviceId, op === 'call' ? { op: 'call', name: FUNCTION, arg: ARG } : { op: 'var', name: VARIABLE }, P.callTimeoutMs);
    if (r.status !== 'ok' || r.value !== (op === 'call' ? CALL_RETURN : VAR_VALUE)) throw new Error('unexpected reply ' + JSON.stringify(r));
  };
}

// ------------------------------------------------------------------ a phase

interface PhaseResult {
  name: string;
  done: number;
  errors: number;
  firstError: string | null;
  stalled: string | null;
  ms: number;
  rate: number;
  p50: number;
  p99: number;
  max: number;
  serverCpu: number;
  loadCpu: number;
  /**
   * The server's CPU time per round trip (µs): steadier than throughput on a
   * shared VM, as time the core was taken away is not counted.
   */
  serverUsPerOp: number;
}

let rr = 0;
/** The bridge's default per-token request limit, as its server reported it. */
let requestLimit: Ready['requestLimit'] = null;

/**
 * `total` round trips with `callers` in flight (each caller waits for its
 * answer before the next); bounded by P.phaseDeadlineMs and a stall detector.
 */
async function runPhase(name: string, server: ServerProc, rt: RoundTrip, ops: Op | 'mixed', callers: number, total: number, enoughMs = Infinity): Promise<PhaseResult> {
  const samples = new Float64Array(total);
  let issued = 0;
  let done = 0;
  let errors = 0;
  let firstError: string | null = null;
  let stalled: string | null = null;
  let lastProgressAt = performance.now();
  const cpu = await cpuMeter(server);
  const t0 = performance.now();
  let stop: () => void = () => {};
  const stopped = new Promise<void>((r) => (stop = r));
  const watchdog = setInterval(() => {
    const now = performance.now();
    if (now - t0 > P.phaseDeadlineMs) stalled = `deadline of ${P.phaseDeadlineMs} ms reached at ${done + errors}/${total}`;
    else if (now - lastProgressAt > P.stallMs) stalled = `no answer for ${P.stallMs} ms at ${done + errors}/${total}`;
    if (stalled) stop();
  }, 100);
  const caller = async (): Promise<void> => {
    while (issued < total && !stalled && performance.now() - t0 < enoughMs) {
      const k = issued++;
      const op: Op = ops === 'mixed' ? (k % 2 ? 'var' : 'call') : ops;
      const deviceId = deviceIds[rr];
      rr = rr + 1 === deviceIds.length ? 0 : rr + 1;
      const t = performance.now();
      try {
        await rt(op, deviceId);
        const now = performance.now();
        samples[done++] = now - t;
        lastProgressAt = now;
      } catch (e) {
        errors++;
        lastProgressAt = performance.now();
        firstError ??= (e as Error).message;
        // Failures come back fast (a 429, a refused connection): stop rather than spin through the count.
        if (errors >= 100 && !stalled) {
          stalled = `stopped after ${errors} failed round trips`;
          stop();
        }
      }
    }
  };
  await Promise.race([Promise.all(Array.from({ length: Math.min(callers, total) }, caller)), stopped]);
  const ms = performance.now() - t0;
  clearInterval(watchdog);
  const used = await cpu(ms);
  const sorted = samples.subarray(0, done).sort();
  const bad = stalled || errors;
  return {
    name,
    done,
    errors,
    firstError,
    stalled,
    ms,
    rate: bad ? NaN : (done / ms) * 1000,
    p50: bad ? NaN : percentile(sorted, done, 0.5),
    p99: bad ? NaN : percentile(sorted, done, 0.99),
    max: bad ? NaN : sorted[done - 1],
    serverCpu: used.server,
    loadCpu: used.load,
    serverUsPerOp: bad || !done ? NaN : ((used.server / 100) * ms * 1000) / done,
  };
}

// ------------------------------------------------------------------ one server instance per run

interface InstanceResult {
  kind: Kind;
  setupMs: number;
  startupMs: number;
  provisionMs: number;
  warmup: PhaseResult;
  calls: PhaseResult;
  reads: PhaseResult;
  seq: PhaseResult;
  droppedDevices: number;
}

async function instance(kind: Kind): Promise<InstanceResult> {
  const t0 = performance.now();
  const s = await startServer(kind);
  if (s.ready.requestLimit) requestLimit = s.ready.requestLimit;
  let agent: Agent | null = null;
  try {
    const dropped0 = mqttCounters.unexpectedClose;
    // The floor has no broker: its answers need no device.
    const devices: RawClient[] = kind === 'floor' ? [] : await openDevices(s.ready.mqttPort, deviceIds, secrets, 50);
    trackConnections(...devices);
    let rt: RoundTrip;
    if (kind === 'bridge') {
      // The hellos were acknowledged, so recorded; the store must say so before any request.
      const until = performance.now() + P.setupDeadlineMs;
      for (;;) {
        const r = await s.request<Extract<ServerReply, { op: 'devicesReady' }>>('devicesReady', { n: P.devices });
        if (r.ready === P.devices) break;
        if (performance.now() > until) throw new Error(`bridge: only ${r.ready}/${P.devices} devices online with ${FUNCTION} and ${VARIABLE} (${r.online} online) after ${P.setupDeadlineMs} ms`);
        await new Promise((res) => setTimeout(res, 100));
      }
    }
    if (kind !== 'bare') {
      agent = new Agent({ keepAlive: true, maxSockets: P.callers, scheduling: 'lifo' });
      rt = httpRoundTrip(s.ready.httpPort as number, s.ready.token as string, agent, sizes[kind]);
    } else {
      const requester = await Requester.open(s.ready.mqttPort, REQUESTER_CLIENT_ID);
      trackConnections(requester);
      rt = mqttRoundTrip(requester);
    }
    const setupMs = performance.now() - t0;
    // Until the JIT has settled: a count, or a time for the slower server.
    const warmup = await runPhase('warm-up', s, rt, 'mixed', P.callers, P.warmup, P.warmupMs);
    const calls = await runPhase('calls', s, rt, 'call', P.callers, P.calls, P.callsMs);
    const reads = await runPhase('reads', s, rt, 'var', P.callers, P.reads, P.readsMs);
    const seq = await runPhase('calls, 1 caller', s, rt, 'call', 1, P.seq, P.seqMs);
    return { kind, setupMs, startupMs: s.ready.startupMs, provisionMs: s.ready.provisionMs, warmup, calls, reads, seq, droppedDevices: mqttCounters.unexpectedClose - dropped0 };
  } finally {
    agent?.destroy();
    await s.exit();
    if (s.log.count) console.error(`  (${kind}: ${s.log.count} server log lines, first: ${s.log.first[0]})`);
  }
}

// ------------------------------------------------------------------ report

function describe(r: InstanceResult): string {
  const p = (x: PhaseResult): string =>
    `${x.name} ${x.stalled ? 'STALLED (' + x.stalled + ')' : x.errors ? `${x.errors} FAILED (${x.firstError})` : `${fmt(x.rate)}/s p50 ${fmt(x.p50, 2)} p99 ${fmt(x.p99, 2)} ms`}` +
    ` [server ${fmt(x.serverCpu)} %, loadgen ${fmt(x.loadCpu)} %]`;
  return `${p(r.calls)}; ${p(r.reads)}; ${p(r.seq)}` + (r.warmup.stalled || r.warmup.errors ? `; ${p(r.warmup)}` : '');
}

async function main(): Promise<number> {
  startRun('servers');
  const results: Record<Kind, InstanceResult[]> = { bare: [], floor: [], bridge: [] };
  for (let run = 0; run < P.runs; run++) {
    // Servers take turns; the order reverses between runs.
    const order: Kind[] = run % 2 ? [...KINDS].reverse() : KINDS;
    for (const kind of order) {
      const r = await instance(kind);
      results[kind].push(r);
      log(`run ${run + 1} ${TITLE[kind]} (setup ${fmt(r.setupMs)} ms): ${describe(r)}`);
    }
  }

  // ---- the table
  const ofKind = (k: Kind, f: (r: InstanceResult) => number) => results[k].map(f);
  const rows: string[][] = [];
  const verdict = (ok: boolean | null): string => (ok === null ? '–' : ok ? 'pass' : '**FAIL**');
  const latencyRow = (label: string, f: (r: InstanceResult) => number, budget: 'p50' | 'p99' | null): void => {
    const a = ofKind('bare', f);
    const b = ofKind('bridge', f);
    const d = median(b) - median(a);
    let target = 'none set';
    let ok: boolean | null = null;
    if (budget === 'p50') {
      target = `≤ anchor + ${BUDGET.p50SlackMs} ms (${fmt(median(a) + BUDGET.p50SlackMs, 2)})`;
      ok = Number.isFinite(d) ? d <= BUDGET.p50SlackMs : false;
    } else if (budget === 'p99') {
      target = `< ${BUDGET.p99MaxMs} ms`;
      ok = Number.isFinite(median(b)) ? median(b) < BUDGET.p99MaxMs : false;
    }
    rows.push([label, cell(a, 2), cell(b, 2), Number.isFinite(d) ? (d >= 0 ? '+' : '−') + fmt(Math.abs(d), 2) + ' ms' : 'n/a', target, verdict(ok), cell(ofKind('floor', f), 2)]);
  };
  const rateRow = (label: string, f: (r: InstanceResult) => number): void => {
    const a = ofKind('bare', f);
    const b = ofKind('bridge', f);
    const q = median(b) / median(a);
    rows.push([label, cell(a), cell(b), Number.isFinite(q) ? fmt(q, 2) + '×' : 'n/a', 'none set', '–', cell(ofKind('floor', f))]);
  };
  const C = P.callers;
  latencyRow('function call, 1 caller: p50 (ms)', (r) => r.seq.p50, 'p50');
  latencyRow('function call, 1 caller: p99 (ms)', (r) => r.seq.p99, null);
  latencyRow(`function call, ${C} concurrent callers: p50 (ms)`, (r) => r.calls.p50, 'p50');
  latencyRow(`function call, ${C} concurrent callers: p99 (ms)`, (r) => r.calls.p99, 'p99');
  rateRow(`function calls/s, ${C} concurrent callers`, (r) => r.calls.rate);
  rateRow(`variable reads/s, ${C} concurrent callers`, (r) => r.reads.rate);
  rateRow(`server CPU per function call, ${C} callers (µs)`, (r) => r.calls.serverUsPerOp);
  rateRow(`server CPU per variable read, ${C} callers (µs)`, (r) => r.reads.serverUsPerOp);
  latencyRow(`variable read, ${C} concurrent callers: p50 (ms)`, (r) => r.reads.p50, 'p50');
  latencyRow(`variable read, ${C} concurrent callers: p99 (ms)`, (r) => r.reads.p99, 'p99');

  const reqCall = encode('request', { id: 1000, op: 'call', name: FUNCTION, arg: ARG }).length;
  const reqVar = encode('request', { id: 1000, op: 'var', name: VARIABLE }).length;
  const repCall = encode('reply', replyTo({ id: 1000, op: 'call', name: FUNCTION, arg: ARG })).length;
  const repVar = encode('reply', replyTo({ id: 1000, op: 'var', name: VARIABLE })).length;

  const out: string[] = [];
  out.push(`## API benchmark: function calls and variable reads through the bridge vs raw MQTT on bare aedes (${P.devices} devices)`);
  out.push('');
  out.push(...table(['measure', 'anchor: raw MQTT on bare aedes', 'bridge: HTTP → device → HTTP', 'bridge vs anchor', 'budget', 'pass?', 'floor: node:http answering at once'], rows));
  out.push('');
  out.push(`Cells: median (min–max) of ${P.runs} run(s); each run starts a fresh server process; servers take turns. Budget (issue 5): p50 within ${BUDGET.p50SlackMs} ms of the raw MQTT round trip; p99 under ${BUDGET.p99MaxMs} ms at ${C} concurrent callers.`);
  out.push('');
  out.push('Parameters and context:');
  out.push(machineLine('server pinned to CPU0, load generator (callers and the devices) to CPU1 (taskset)', 'NODELAY on every socket'));
  out.push(`- devices: ${P.devices} raw MQTT 3.1.1 clients (plain sockets, bench/api-mqtt.ts) in the load generator, CONNECT with client id = username = device id and the device secret; subscribed to cloud/<id>/req at QoS 1; a hello (1 function \`${FUNCTION}\`, 1 double variable \`${VARIABLE}\`) acknowledged before measuring; each request PUBACKed and answered at QoS 1 on dev/<id>/reply; callers target the devices round-robin`);
  out.push(
    `- bridge: createBridge (MQTT + HTTP API) on an empty temp data dir; a user owning a product with the ${P.devices} devices and a bearer token of that user, provisioned in the server process; callTimeoutMs ${P.callTimeoutMs}; the store must report every device online with its function and variable before the first request. HTTP: node:http, keep-alive Agent with maxSockets = callers; POST /v1/devices/<id>/${FUNCTION} with application/json {"arg": "<${Buffer.byteLength(ARG)} B>"} (${CALL_BODY.length} B body) → ${sizes.bridge.httpCallResponse} B JSON; GET /v1/devices/<id>/${VARIABLE} → ${sizes.bridge.httpVarResponse} B JSON; every answer checked (200 and the device's value)` +
      `; (floor: ${sizes.floor.httpCallResponse} B / ${sizes.floor.httpVarResponse} B)` +
      (requestLimit
        ? requestLimit.lifted
          ? `; the per-token request limit (${fmt(requestLimit.limit)} per ${requestLimit.windowMs / 60000} min, Particle's) raised to 1e9 through the bridge's rateLimits option, so the load on the one bench token is not cut; the limiter still counts every request`
          : `; the per-token request limit kept (${fmt(requestLimit.limit)} per ${requestLimit.windowMs / 60000} min): past it the bridge answers 429 and the phases fail`
        : ''),
  );
  out.push(`- setup per run (server start, devices connected and ready): anchor ${cell(ofKind('bare', (r) => r.setupMs))} ms; bridge ${cell(ofKind('bridge', (r) => r.setupMs))} ms, of which createBridge ${cell(ofKind('bridge', (r) => r.startupMs))} ms and provisioning ${cell(ofKind('bridge', (r) => r.provisionMs))} ms`);
  out.push(`- floor: a node:http server in the same kind of process on the same core, answering POST /v1/devices/<id>/${FUNCTION} and GET /v1/devices/<id>/${VARIABLE} at once with the bridge's JSON shapes; no broker, no device, no token check; the same callers, agent and checks: below it no HTTP bridge written on node:http can go, whatever it does`);
  out.push(`- anchor: bare aedes (no hooks), one requester client publishing the same request payloads to cloud/<id>/req at QoS 1 and subscribed to dev/+/reply at QoS 1, matching replies by their id (uint32, as the bridge's request router); the same device clients answer`);
  out.push(`- payloads to and from the devices (protocol CBOR, both setups): call request ${reqCall} B, its reply ${repCall} B; variable request ${reqVar} B, its reply ${repVar} B`);
  const n = (k: Kind, f: (r: InstanceResult) => PhaseResult) => cell(results[k].map((r) => f(r).done));
  const n3 = (f: (r: InstanceResult) => PhaseResult) => KINDS.map((k) => n(k, f)).join(' / ');
  out.push(
    `- phases per run and server, each ending at a count or a time, whichever comes first (round trips done: anchor / floor / bridge): ` +
      `warm-up at ${C} callers, calls and reads alternating, not measured: ${fmt(P.warmup)} or ${P.warmupMs / 1000} s (${n3((r) => r.warmup)}); ` +
      `calls at ${C} callers: ${fmt(P.calls)} or ${P.callsMs / 1000} s (${n3((r) => r.calls)}); ` +
      `reads at ${C} callers: ${fmt(P.reads)} or ${P.readsMs / 1000} s (${n3((r) => r.reads)}); ` +
      `calls with 1 caller: ${fmt(P.seq)} or ${P.seqMs / 1000} s (${n3((r) => r.seq)}); ` +
      `every phase also bounded by ${P.phaseDeadlineMs / 1000} s and a ${P.stallMs / 1000} s stall detector`,
  );
  const pc = (k: Kind, f: (r: InstanceResult) => PhaseResult, g: (p: PhaseResult) => number) => cell(results[k].map((r) => g(f(r))));
  for (const [label, f] of [
    [`calls at ${C} callers`, (r: InstanceResult) => r.calls],
    [`reads at ${C} callers`, (r: InstanceResult) => r.reads],
    ['calls with 1 caller', (r: InstanceResult) => r.seq],
  ] as const)
    out.push(
      `- CPU, ${label} (server / load generator, % of one core): anchor ${pc('bare', f, (p) => p.serverCpu)} / ${pc('bare', f, (p) => p.loadCpu)}, floor ${pc('floor', f, (p) => p.serverCpu)} / ${pc('floor', f, (p) => p.loadCpu)}, bridge ${pc('bridge', f, (p) => p.serverCpu)} / ${pc('bridge', f, (p) => p.loadCpu)}`,
    );
  const max3 = (f: (r: InstanceResult) => PhaseResult) => KINDS.map((k) => pc(k, f, (p) => p.max)).join(' / ');
  out.push(`- max round trip seen (ms, anchor / floor / bridge): calls at ${C} callers ${max3((r) => r.calls)}; reads ${max3((r) => r.reads)}; 1 caller ${max3((r) => r.seq)}`);
  const problems: string[] = [];
  for (const k of KINDS)
    for (const r of results[k]) {
      for (const p of [r.warmup, r.calls, r.reads, r.seq]) {
        if (p.stalled) problems.push(`${k} ${p.name}: ${p.stalled}`);
        if (p.errors) problems.push(`${k} ${p.name}: ${p.errors} failed (first: ${p.firstError})`);
      }
      if (r.droppedDevices) problems.push(`${k}: ${r.droppedDevices} device connections closed by the server`);
    }
  if (mqttCounters.badMessages) problems.push(`${mqttCounters.badMessages} unexpected MQTT messages (first: ${mqttCounters.firstProblem})`);
  out.push(`- problems: ${problems.length ? problems.join('; ') : 'none (every round trip answered and checked, no stall, no device dropped)'}`);
  out.push(wholeRunLine());
  console.log(out.join('\n'));
  if (problems.length) {
    console.error('harness: the measurement is incomplete (see problems above)');
    return 1;
  }
  return 0;
}

runMain(main);
