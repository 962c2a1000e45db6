/**
 * The server side of bench/ota.ts, in a process of its own (so its RSS and
 * CPU are its own), started with an IPC channel (bench/harness.ts's
 * startChildServer); not meant to be run by hand.
 *
 *   ota-server.ts setup <dataDir> <n>   createBridge with the HTTP API; an operator, product
 *                                       "ota-one" (1 device) and "ota-fleet" (n devices) it owns,
 *                                       their devices with secrets and a bearer token; the parent
 *                                       uploads the images through the API, then asks 'close'
 *   ota-server.ts bridge <dataDir>      createBridge (HTTP and plain MQTT) on a copy of that data
 *                                       dir: the bridge under test; its store's createJob and
 *                                       updateJob are wrapped to time every job (created,
 *                                       verified, done)
 *   ota-server.ts bare                  the anchors: bare aedes 1.2 on a NODELAY server (no
 *                                       authentication), and in the same process (as the bridge's
 *                                       OTA manager sits beside its aedes) a publisher that speaks
 *                                       the device protocol: the bridge's otaBegin (the image's
 *                                       SHA-256), then the image held in memory as otaChunk QoS 1
 *                                       publishes of chunkSize bytes, `window` ahead of the offset
 *                                       each device acknowledges (otaStatus on dev/<id>/ota), and
 *                                       the recovery of the bridge's Transfer, with its defaults
 *                                       (the plan's ackTimeoutMs and maxSilences): the window
 *                                       resent once from an offset a device repeats; a device
 *                                       silent for ackTimeoutMs sent begin again (it answers with
 *                                       the offset it holds, sending resumes there), maxSilences
 *                                       in a row → failed (timeout); no store, no disk.
 *                                       Plan kind 'wire' (bench/ota-anchor.ts's raw devices): begin
 *                                       to all at 'start', each done at its "verified". Kind
 *                                       'agent' (the simulator's real agents), as the bridge's
 *                                       OTA manager: the publisher takes their hellos
 *                                       (dev/<id>/hello); at 'start', begin to every device whose
 *                                       hello ran another version, and again on any such hello
 *                                       later (a reconnect resumes); a session that ends (not
 *                                       replaced by a reconnect) stops its transfer's silence
 *                                       timer until that hello; verified at its "verified"; done
 *                                       at its hello running the version (not on trial), with or
 *                                       without a "verified" before it: the agent resets 2 s after
 *                                       verifying even when that status is still queued behind
 *                                       unacknowledged ones (firmware/src/ota.ts), so under load it
 *                                       can be lost, and a publisher waiting for it stalls (the
 *                                       bridge counts such a job done too); rolled back from it
 *                                       after verified → failed
 *
 * Every mode answers 'cpu' and 'exit' (server-harness.ts's serve), 'mem'
 * (after a forced GC: run with --expose-gc), 'rss' and 'rssReset' (the
 * highest RSS sampled every 50 ms since the reset), 'profileStart' and
 * 'profileStop' (V8's sampling profiler, for --cpu-prof).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Aedes } from 'aedes';
import type { Bridge } from '@flotilla/bridge';
import { cloudTopic, decode, encode } from '@flotilla/protocol';
import { cpuProfiler, forcedGc, PLAIN_MQTT_ONLY, runMode, send as sendAny, serve as serveAny } from './server-harness.js';
import { otaDeviceId, otaSecret, PRODUCT_SLUGS, type AnchorPlan, type JobTimes, type OtaReply, type OtaRequest, type ProductKey, type Progress, type TemplateProduct } from './ota-common.js';

const send: (r: OtaReply) => void = sendAny;

// ------------------------------------------------------------------ what every mode answers

let peak = 0;
const sampler = setInterval(() => {
  const r = process.memoryUsage.rss();
  if (r > peak) peak = r;
}, 50);
sampler.unref();

const profiler = cpuProfiler();

type Handled = Exclude<OtaRequest, { op: 'cpu' | 'exit' | 'mem' | 'rss' | 'rssReset' | 'profileStart' | 'profileStop' }>;

function serve(handle: (m: Handled) => Promise<OtaReply>): void {
  serveAny<OtaRequest, OtaReply>(async (m) => {
    switch (m.op) {
      case 'mem': {
        const gc = await forcedGc();
        const u = process.memoryUsage();
        return { id: m.id, op: 'mem', rss: u.rss, heapUsed: u.heapUsed, external: u.external, gc };
      }
      case 'rss': {
        const u = process.memoryUsage();
        peak = Math.max(peak, u.rss);
        return { id: m.id, op: 'rss', rss: u.rss, peak, heapUsed: u.heapUsed };
      }
      case 'rssReset':
        peak = process.memoryUsage.rss();
        return { id: m.id, op: 'rssReset' };
      case 'profileStart':
        await profiler.start();
        return { id: m.id, op: 'profileStart' };
      case 'profileStop': {
        await profiler.stop(m.file);
        return { id: m.id, op: 'profileStop', file: m.file };
      }
      default:
        return handle(m);
    }
  });
}

const unexpected = (m: Handled): never => {
  throw new Error(`unexpected request ${m.op} in mode ${process.argv[2]}`);
};

// ------------------------------------------------------------------ the bridge

async function setup(dataDir: string, n: number): Promise<void> {
  const t0 = performance.now();
  const { createBridge } = await import('@flotilla/bridge');
  const b = await createBridge({ dataDir, host: '127.0.0.1', ...PLAIN_MQTT_ONLY, httpPort: 0, mqttPort: 0, logLevel: 'silent', ownerPassword: 'bench-owner-password' });
  const s = b.store;
  const user = await s.createUser('ota-bench-operator', 'ota-bench-operator-password');
  const products = {} as Record<ProductKey, TemplateProduct>;
  for (const [key, count] of [['one', 1], ['fleet', n]] as const) {
    const p = await s.createProduct({ name: 'OTA bench ' + key, slug: PRODUCT_SLUGS[key], ownerUserId: user.id });
    const devices = Array.from({ length: count }, (_, i) => ({ id: otaDeviceId(key, i), secret: otaSecret(key, i) }));
    // scrypt runs on libuv's pool (4 threads): 8 at a time keep it busy.
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < devices.length) {
        const d = devices[next++];
        await s.createDevice({ id: d.id, productId: p.id });
        await s.setDeviceSecret(d.id, d.secret);
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    products[key] = { id: Number(p.id), slug: p.slug, devices };
  }
  const { token } = await s.issueToken({ subject: { kind: 'user', id: user.id }, clientId: 'ota-bench', scopes: [], ttlSeconds: null });
  serve(async (m) => {
    if (m.op !== 'close') return unexpected(m);
    // A graceful close: the parent copies the data dir once this process has exited.
    await b.close();
    return { id: m.id, op: 'close' };
  });
  send({ op: 'ready', mqttPort: b.ports.mqtt, httpPort: b.ports.http, token, products, startupMs: performance.now() - t0 });
}

async function bridge(dataDir: string): Promise<void> {
  const t0 = performance.now();
  const { createBridge } = await import('@flotilla/bridge');
  // warn: a run that goes as it should logs nothing (jobs ending are info); a paused rollout or a failed transfer shows.
  const b: Bridge = await createBridge({ dataDir, host: '127.0.0.1', ...PLAIN_MQTT_ONLY, httpPort: 0, mqttPort: 0, logLevel: 'warn' });
  // Every job's times, from the store calls the OTA manager makes (it holds this very object).
  const jobs = new Map<number, JobTimes>();
  type Job = { id: number; deviceId: string; state: string; reason: string | null; attempts: number };
  const store = b.store as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  const createJob = store.createJob.bind(b.store);
  const updateJob = store.updateJob.bind(b.store);
  store.createJob = async (...a: unknown[]) => {
    const j = (await createJob(...a)) as Job;
    jobs.set(j.id, { device: j.deviceId, created: Date.now(), verified: null, ended: null, state: j.state, reason: null, attempts: j.attempts });
    return j;
  };
  store.updateJob = async (id: unknown, changes: unknown) => {
    const at = Date.now();
    const j = (await updateJob(id, changes)) as Job;
    const t = jobs.get(j.id);
    if (t) {
      const state = (changes as { state?: string }).state;
      if (state === 'verified') t.verified = at;
      if (state === 'done' || state === 'failed' || state === 'aborted') t.ended = at;
      t.state = j.state;
      t.reason = j.reason;
      t.attempts = j.attempts;
    }
    return j;
  };
  const aedesClients = (b.broker.aedes as unknown as { clients: Record<string, unknown> }).clients;
  // The manager's connected devices (a private map; -1 if it is renamed).
  const online = (): number => (b.ota as unknown as { online?: Map<string, unknown> }).online?.size ?? -1;
  serve(async (m) => {
    switch (m.op) {
      case 'online':
        return { id: m.id, op: 'online', online: online(), sessions: Object.keys(aedesClients).length };
      case 'progress': {
        const p: Progress = { started: jobs.size, verified: 0, done: 0, failed: 0, reasons: {}, running: b.ota.transfersRunning };
        for (const j of jobs.values()) {
          if (j.verified !== null || j.state === 'done') p.verified++;
          if (j.state === 'done') p.done++;
          if (j.state === 'failed' || j.state === 'aborted') p.failed++;
          if (j.ended !== null) {
            const k = j.state + (j.reason ? ' (' + j.reason + ')' : '');
            p.reasons[k] = (p.reasons[k] ?? 0) + 1;
          }
        }
        return { id: m.id, op: 'progress', ...p };
      }
      case 'jobs':
        return { id: m.id, op: 'jobs', jobs: [...jobs.values()] };
      default:
        return unexpected(m);
    }
  });
  send({ op: 'ready', mqttPort: b.ports.mqtt, httpPort: b.ports.http, token: null, products: null, startupMs: performance.now() - t0 });
}

// ------------------------------------------------------------------ the anchor: bare aedes and a publisher beside it

async function bare(): Promise<void> {
  const t0 = performance.now();
  // maxClientsIdLength as the bridge's: device ids are 24 characters, aedes' default allows 23.
  const aedes = await Aedes.createBroker({ maxClientsIdLength: 64 });
  const server = createServer({ noDelay: true }, (s) => aedes.handle(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  /**
   * One device's transfer, as the bridge's Transfer (bridge/src/ota/transfer.ts) runs it: begin → the offset
   * the device holds → chunks `window` ahead of it, the window resent once from a repeated offset; silent
   * for ackTimeoutMs → begin again (it answers with its offset), maxSilences in a row → failed (timeout).
   */
  interface Tx {
    id: string;
    topic: string;
    /** Everything before this has been published (since the last resend point). */
    sentUpTo: number;
    /** The device's last acknowledged offset; -1 before its first answer to a begin. */
    held: number;
    /** The offset the window was last resent from (once per offset, as the bridge). */
    resentFrom: number;
    /** Silences in a row, and their timer (null while the transfer is not running: ended, or the device offline). */
    silences: number;
    timer: NodeJS.Timeout | null;
    started: number;
    verified: number | null;
    /** Agents: the hello running the new version; raw devices: as verified. */
    done: number | null;
    failed: { at: number; reason: string } | null;
  }
  const txs = new Map<string, Tx>();
  /** The version each device said hello running last (agents; raw devices say no hello to bare aedes). */
  const hellos = new Map<string, number>();
  /** Each device's current session (aedes' client object): a session replaced by a reconnect is not the device going offline. */
  const sessions = new Map<string, unknown>();
  let plan: AnchorPlan | null = null;
  let members = new Set<string>();
  /** The image's chunks, each encoded once as the bridge's otaChunk message (the same bytes on the wire), and the begin. */
  let chunks: Buffer[] = [];
  let begin = Buffer.alloc(0);
  let size = 0;
  let failed = 0;
  let resends = 0;
  let begins = 0;
  let silentBegins = 0;
  let reasons: Record<string, number> = {};

  const publish = (topic: string, payload: Buffer): void =>
    aedes.publish({ cmd: 'publish', topic, payload, qos: 1, retain: false, dup: false }, () => {});

  const running = (t: Tx): boolean => t.verified === null && t.done === null && !t.failed;

  const disarm = (t: Tx): void => {
    if (t.timer) clearTimeout(t.timer);
    t.timer = null;
  };

  /** (Re)starts the silence timer, as Transfer.arm: on every begin and every status. */
  const arm = (t: Tx): void => {
    if (t.timer) t.timer.refresh();
    else t.timer = setTimeout(() => silence(t), (plan as AnchorPlan).ackTimeoutMs);
  };

  const fail = (t: Tx, reason: string): void => {
    disarm(t);
    t.failed = { at: Date.now(), reason };
    failed++;
    const k = 'failed (' + reason + ')';
    reasons[k] = (reasons[k] ?? 0) + 1;
  };

  const fill = (t: Tx): void => {
    const p = plan as AnchorPlan;
    const limit = Math.min(size, t.held + p.window * p.chunkSize);
    while (t.sentUpTo < limit) {
      publish(t.topic, chunks[t.sentUpTo / p.chunkSize]);
      t.sentUpTo = Math.min(size, t.sentUpTo + p.chunkSize);
    }
  };

  /** Begin (again) to a device: it answers with the offset it holds (0, or where it stopped), and its chunks follow from there. */
  const beginTo = (id: string): void => {
    let t = txs.get(id);
    if (t) {
      t.held = -1;
      t.resentFrom = -1;
    } else {
      t = { id, topic: cloudTopic(id, 'ota'), sentUpTo: 0, held: -1, resentFrom: -1, silences: 0, timer: null, started: Date.now(), verified: null, done: null, failed: null };
      txs.set(id, t);
    }
    begins++;
    publish(t.topic, begin);
    arm(t);
  };

  /** ackTimeoutMs without a status: begin again (the device answers with the offset it holds), as the bridge's Transfer; after maxSilences in a row, failed. */
  function silence(t: Tx): void {
    t.timer = null;
    if (!running(t)) return;
    if (++t.silences > (plan as AnchorPlan).maxSilences) return fail(t, 'timeout');
    silentBegins++;
    beginTo(t.id);
  }

  // A device whose session ended (not replaced by a reconnect): its transfer stops until its next hello, as the bridge's offline hook.
  aedes.on('clientReady', (c) => sessions.set(c.id, c));
  aedes.on('clientDisconnect', (c) => {
    if (sessions.get(c.id) !== c) return;
    sessions.delete(c.id);
    const t = txs.get(c.id);
    if (t && plan?.kind === 'agent') disarm(t);
  });

  /** An in-process subscription (as the bridge's hooks take the devices' messages), its handler given the device id and the decoded message. */
  const take = (filter: string, handle: (id: string, m: ReturnType<typeof decode>) => void): Promise<void> =>
    new Promise<void>((resolve) =>
      aedes.subscribe(
        filter,
        (packet, cb) => {
          // Released on a fresh stack: mqemitter drains its queue (emits beyond its concurrency) from this callback,
          // recursively, so a synchronous release under load overflows the stack.
          queueMicrotask(cb);
          const id = packet.topic.split('/')[1];
          let m: ReturnType<typeof decode>;
          try {
            m = decode(packet.payload as Buffer);
          } catch (e) {
            console.error(`bare: ${packet.topic}: undecodable message: ${(e as Error).message}`);
            return;
          }
          handle(id, m);
        },
        () => resolve(),
      ),
    );

  // Each device's acknowledgements (dev/<id>/ota), as the bridge's Transfer.status takes them.
  await take('dev/+/ota', (id, m) => {
    const t = txs.get(id);
    const p = plan;
    if (!p || !t || m.kind !== 'otaStatus' || m.job !== p.job || !running(t)) return;
    t.silences = 0;
    arm(t);
    if (m.state === 'verified') {
      disarm(t);
      t.verified = Date.now();
      if (p.kind === 'wire') t.done = t.verified;
      return;
    }
    if (m.state === 'failed') return fail(t, m.reason ?? 'aborted');
    const o = m.offset;
    if (t.held < 0 || o < t.held || o > t.sentUpTo) {
      // First answer (a resume point), or the device went back: send from what it holds.
      t.sentUpTo = o;
    } else if (o === t.held && o < t.sentUpTo && t.resentFrom !== o) {
      // The same offset again with more sent: a chunk was lost (or refused out of order); resend the window, once per offset.
      t.resentFrom = o;
      t.sentUpTo = o;
      resends++;
    }
    // The device holds this much: keep `window` chunks in flight ahead of it.
    t.held = o;
    fill(t);
  });

  // The agents' hellos (dev/<id>/hello), as the bridge's OTA manager takes them: running the new version (confirmed) → done,
  // whether or not its "verified" status arrived (the agent resets 2 s after verifying even if the status is still queued);
  // rolled back from it → failed; running another version (before the start, or a reconnect mid-transfer) → begin (again).
  await take('dev/+/hello', (id, m) => {
    if (m.kind !== 'hello') return;
    hellos.set(id, m.firmware);
    const p = plan;
    if (!p || p.kind !== 'agent' || !members.has(id)) return;
    const t = txs.get(id);
    if (t && t.done === null && !t.failed) {
      if (m.firmware === p.version && !m.ota.trial) {
        disarm(t);
        t.done = Date.now();
        return;
      }
      if (t.verified !== null && m.ota.rolledBackFrom === p.version) return fail(t, 'rolled_back');
    }
    if (m.firmware !== p.version && (!t || running(t))) {
      if (t) t.silences = 0;
      beginTo(id);
    }
  });

  serve(async (m) => {
    switch (m.op) {
      case 'start': {
        const p = (plan = m.plan);
        const image = readFileSync(p.imageFile);
        size = image.length;
        chunks = [];
        for (let at = 0; at < size; at += p.chunkSize)
          chunks.push(Buffer.from(encode('otaChunk', { job: p.job, offset: at, data: image.subarray(at, Math.min(size, at + p.chunkSize)) })));
        // The bridge's begin: the image's real SHA-256 (the agent checks its slot against it).
        const sha256 = createHash('sha256').update(image).digest();
        begin = Buffer.from(encode('otaBegin', { job: p.job, product: p.product, version: p.version, size, sha256, chunkSize: p.chunkSize }));
        for (const t of txs.values()) disarm(t);
        txs.clear();
        members = new Set(p.devices);
        failed = resends = begins = silentBegins = 0;
        reasons = {};
        // Raw devices: begin to every device. Agents: to every device that said hello running another version
        // (all of them: the parent starts once all said hello); any other gets it on its hello.
        for (const id of p.devices) {
          const v = hellos.get(id);
          if (p.kind === 'wire' || (v !== undefined && v !== p.version)) beginTo(id);
        }
        return { id: m.id, op: 'start' };
      }
      case 'progress': {
        // As the bridge's progress: a job done counts as verified, whether or not its "verified" status arrived.
        let verified = 0;
        let done = 0;
        let unverified = 0;
        let active = 0;
        for (const t of txs.values()) {
          if (t.verified !== null || t.done !== null) verified++;
          if (t.done !== null) done++;
          if (t.done !== null && t.verified === null) unverified++;
          if (running(t)) active++;
        }
        return { id: m.id, op: 'progress', started: txs.size, verified, done, failed, reasons: { ...reasons }, running: active, resends, begins, silentBegins, unverified };
      }
      case 'jobs':
        return {
          id: m.id, op: 'jobs',
          jobs: [...txs].map(([device, t]) => ({
            device, created: t.started, verified: t.verified, ended: t.done ?? t.failed?.at ?? null,
            state: t.done !== null ? 'done' : t.failed ? 'failed' : t.verified !== null ? 'verified' : 'sending', reason: t.failed?.reason ?? null, attempts: 1,
          })),
        };
      case 'online':
        return { id: m.id, op: 'online', online: hellos.size, sessions: Object.keys((aedes as unknown as { clients: Record<string, unknown> }).clients).length };
      default:
        return unexpected(m);
    }
  });
  send({ op: 'ready', mqttPort: port, httpPort: null, token: null, products: null, startupMs: performance.now() - t0 });
}

runMode({
  setup: (dir, n) => setup(dir, Number(n)),
  bridge: (dir) => bridge(dir),
  bare: () => bare(),
});
