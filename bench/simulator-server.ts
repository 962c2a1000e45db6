/**
 * The child processes of bench/simulator.ts, each started with an IPC
 * channel (bench/harness.ts's startChildServer); not meant to be run by hand.
 *
 *   simulator-server.ts setup <dataDir>    createBridge with the HTTP API, a user, a product
 *                                          (slug "bench") and a bearer token of the user;
 *                                          the parent registers the devices through the API
 *                                          (the simulator's provision()), then asks 'close'
 *   simulator-server.ts bridge <dataDir>   createBridge (MQTT only) on a copy of that data dir:
 *                                          the bridge under test, one per side of the table
 *   simulator-server.ts mqttjs             the anchor's load: bare MQTT.js clients, one per
 *                                          device, doing what the agent does on the wire, in a
 *                                          fresh process so its RSS per device is its own
 *
 * Every mode answers 'cpu' and 'exit' (server-harness.ts's serve) and 'mem'
 * (RSS and V8 heap after a forced GC: run with --expose-gc).
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import type { Bridge } from '@flotilla/bridge';
import { cloudTopic, deviceTopic, encode, LIMITS, RESET_REASON, type Messages } from '@flotilla/protocol';
import { forcedGc, PLAIN_MQTT_ONLY, provisionBench, runMode, send as sendAny, serve as serveAny } from './server-harness.js';

// ------------------------------------------------------------------ messages

/** What the anchor's clients do: the bench scenario's rates, as the agent runs them. */
export interface AnchorPlan {
  port: number;
  product: number;
  devices: { id: string; secret: string }[];
  rampPerSecond: number;
  /** Mean seconds between two events of a device (exponential, as the simulator's app). */
  eventEvery: number;
  eventName: string;
  /** Seconds between two vitals reports (on connect, then periodic, as the agent). */
  vitalsEvery: number;
  keepalive: number;
}

export interface AnchorStats {
  /** Clients powered on so far (the ramp's progress), connected now, and session counts. */
  started: number;
  connected: number;
  connects: number;
  refused: number;
  /** Sessions that ended after their CONNACK, and connections closed before one (MQTT.js' 30 s connect timeout). */
  ended: number;
  abandoned: number;
  /** Device → cloud publishes by channel. */
  sent: Record<string, number>;
  /** performance.now() in the child when it took these. */
  at: number;
}

/** Parent → child. */
export type SimRequest =
  | { id: number; op: 'cpu' }
  | { id: number; op: 'exit' }
  | { id: number; op: 'mem' }
  | { id: number; op: 'close' }
  | { id: number; op: 'sessions' }
  | { id: number; op: 'start'; plan: AnchorPlan }
  | { id: number; op: 'stats' }
  | { id: number; op: 'loop' }
  | { id: number; op: 'stop' };

/** Child → parent. */
export type SimReply =
  | { op: 'ready'; mqttPort: number; httpPort: number | null; token: string | null; startupMs: number }
  | { op: 'error'; message: string }
  | { id: number; op: 'cpu'; userMs: number; systemMs: number }
  | { id: number; op: 'exit' }
  | { id: number; op: 'mem'; rss: number; heapUsed: number; gc: boolean }
  | { id: number; op: 'close' }
  /** Bridge: MQTT clients aedes holds, and devices it has a session of. */
  | { id: number; op: 'sessions'; clients: number; devices: number }
  | { id: number; op: 'start'; baseline: { rss: number; heapUsed: number } }
  | ({ id: number; op: 'stats' } & AnchorStats)
  /** monitorEventLoopDelay's p99 and max since the last 'loop' (then reset), ns, resolution 10 ms. */
  | { id: number; op: 'loop'; p99: number; max: number }
  | { id: number; op: 'stop' };

const send: (r: SimReply) => void = sendAny;

async function mem(): Promise<{ rss: number; heapUsed: number; gc: boolean }> {
  const gc = await forcedGc();
  const u = process.memoryUsage();
  return { rss: u.rss, heapUsed: u.heapUsed, gc };
}

type Handled = Exclude<SimRequest, { op: 'cpu' | 'exit' }>;

function serve(handle: (m: Handled) => Promise<SimReply>): void {
  serveAny<SimRequest, SimReply>(async (m) => (m.op === 'mem' ? { id: m.id, op: 'mem', ...(await mem()) } : handle(m)));
}

const unexpected = (m: Handled): never => {
  throw new Error(`unexpected request ${m.op} in mode ${process.argv[2]}`);
};

// ------------------------------------------------------------------ bridges

async function setup(dataDir: string): Promise<void> {
  const t0 = performance.now();
  const { createBridge } = await import('@flotilla/bridge');
  // The import route answers 10 requests for 10,000 devices, far under the per-address limit
  // (10,000 per 5 minutes): the default rate limits stay.
  const b = await createBridge({ dataDir, host: '127.0.0.1', ...PLAIN_MQTT_ONLY, httpPort: 0, mqttPort: 0, logLevel: 'silent', ownerPassword: 'bench-owner-password' });
  // The operator, a product it owns (slug "bench") and a token; no devices: the parent registers them.
  const { token } = await provisionBench(b.store, 0, 1, 3600);
  serve(async (m) => {
    if (m.op !== 'close') return unexpected(m);
    // A graceful close: the parent copies the data dir once this process has exited.
    await b.close();
    return { id: m.id, op: 'close' };
  });
  send({ op: 'ready', mqttPort: b.ports.mqtt, httpPort: b.ports.http, token, startupMs: performance.now() - t0 });
}

async function bridge(dataDir: string): Promise<void> {
  const t0 = performance.now();
  const { createBridge } = await import('@flotilla/bridge');
  // Default MQTT limits: the bench scenario stays under the per-device event rate (1/s, bursts of 4).
  const b: Bridge = await createBridge({ dataDir, host: '127.0.0.1', ...PLAIN_MQTT_ONLY, mqttPort: 0, logLevel: 'info' });
  const clients = (b.broker.aedes as unknown as { clients: Record<string, unknown> }).clients;
  serve(async (m) => {
    if (m.op !== 'sessions') return unexpected(m);
    return { id: m.id, op: 'sessions', clients: Object.keys(clients).length, devices: b.broker.context.devices.size };
  });
  send({ op: 'ready', mqttPort: b.ports.mqtt, httpPort: null, token: null, startupMs: performance.now() - t0 });
}

// ------------------------------------------------------------------ the anchor: bare MQTT.js clients

/** One device on MQTT.js, doing on the wire what the agent does with the bench scenario. */
async function anchor(): Promise<void> {
  const t0 = performance.now();
  const { default: mqtt } = await import('mqtt');
  type Client = ReturnType<typeof mqtt.connect>;
  const clients: Client[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const stats: AnchorStats = { started: 0, connected: 0, connects: 0, refused: 0, ended: 0, abandoned: 0, sent: {}, at: 0 };
  const count = (channel: string): void => {
    stats.sent[channel] = (stats.sent[channel] ?? 0) + 1;
  };
  let ramp: NodeJS.Timeout | null = null;
  let stopped = false;
  // How late timers run here: the anchor's own fidelity, as the parent measures the simulator's.
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();

  const later = (ms: number, fn: () => void): void => {
    const t = setTimeout(() => {
      timers.delete(t);
      if (!stopped) fn();
    }, ms);
    timers.add(t);
  };

  function device(plan: AnchorPlan, id: string, secret: string): void {
    // The agent's hello for the bench scenario's app: one double variable, one function.
    const hello: Messages['hello'] = {
      agent: '0.1.0', firmware: 1, product: plan.product, variables: [{ name: 'temperature', type: 'double' }], functions: ['setLed'], subscriptions: [], bootReason: 'power_down',
      ota: { slot: 0, trial: false, rolledBackFrom: null },
    };
    const topic = {
      hello: deviceTopic(id, 'hello'), status: deviceTopic(id, 'status'), vitals: deviceTopic(id, 'vitals'), event: deviceTopic(id, 'evt', plan.eventName),
      inbox: [cloudTopic(id, 'req'), cloudTopic(id, 'ota'), cloudTopic(id, 'evt')],
    };
    const c = mqtt.connect({
      host: '127.0.0.1', port: plan.port, protocol: 'mqtt', protocolVersion: 4, clean: true, clientId: id, username: id, password: secret, keepalive: plan.keepalive,
      // The agent's will: offline on its own status topic, QoS 1.
      will: { topic: topic.status, payload: Buffer.from(encode('status', { online: false })), qos: 1, retain: false },
      // MQTT.js' defaults otherwise: reconnect every second, 30 s to CONNACK.
    });
    clients.push(c);
    const startedAt = performance.now();
    let up = false;
    let temperature = 21;
    // Nagle + delayed ACK would add 40 ms to every QoS 1 exchange (mqtt-anchors.md); the agent's HAL sets it too.
    const noDelay = (): void => void (c.stream as { setNoDelay?: (on: boolean) => void } | undefined)?.setNoDelay?.(true);
    noDelay();
    const publishVitals = (): void => {
      // The 16 metrics the agent reports (no signal or battery in this scenario), as numbers of its kind.
      const s = Math.floor((performance.now() - startedAt) / 1000);
      const values = {
        'device.system.uptime': s, 'device.system.memory.used': 28000 + Math.round((Math.random() * 2 - 1) * 2000), 'device.system.memory.total': 83200,
        'device.system.reset_reason': RESET_REASON.power_down, 'device.cloud.connection.status': 2, 'device.cloud.connection.attempts': 1, 'device.cloud.connection.disconnects': 0,
        'device.cloud.connection.error': 0, 'device.cloud.coap.transmit': 2, 'device.cloud.coap.retransmit': 0, 'device.cloud.coap.unack': 0,
        'device.cloud.coap.round_trip': 0, 'device.cloud.publish.rate_limited': 0, 'device.cloud.publish.sent': s >> 3, 'device.cloud.publish.dropped': 0,
        'device.cloud.errors.reported': 0,
      };
      c.publish(topic.vitals, Buffer.from(encode('vitals', { values })), { qos: 0 });
      count('vitals');
    };
    c.on('connect', () => {
      noDelay();
      up = true;
      stats.connects++;
      stats.connected++;
      // What the agent does on CONNACK: subscribe to its three inbox topics, then hello, online, vitals.
      c.subscribe(topic.inbox, { qos: 1 });
      c.publish(topic.hello, Buffer.from(encode('hello', hello)), { qos: 1 });
      count('hello');
      c.publish(topic.status, Buffer.from(encode('status', { online: true })), { qos: 1 });
      count('status');
      publishVitals();
    });
    c.on('close', () => {
      if (up) {
        stats.ended++;
        stats.connected--;
      } else stats.abandoned++;
      up = false;
    });
    c.on('error', (e: Error & { code?: number }) => {
      if (typeof e.code === 'number') stats.refused++; // a CONNACK refusal
    });
    // Vitals: on connect (above), and every vitalsEvery from power-on while connected, as the agent's timer.
    const vitals = (): void =>
      later(plan.vitalsEvery * 1000, () => {
        vitals();
        if (up) publishVitals();
      });
    vitals();
    // Events at exponential intervals of mean eventEvery, from power-on, as the app's `occasionally`; sent only while connected.
    const next = (): void =>
      later(Math.max(10, -Math.log(1 - Math.random()) * plan.eventEvery * 1000), () => {
        next();
        if (!up) return;
        temperature = Math.min(30, Math.max(15, temperature + (Math.random() * 2 - 1) * 0.05 * Math.sqrt(plan.eventEvery)));
        c.publish(topic.event, Buffer.from(encode('event', { data: String(Math.round(temperature * 100) / 100), ttl: LIMITS.eventTtlDefault })), { qos: 0 });
        count('evt');
      });
    next();
  }

  serve(async (m) => {
    switch (m.op) {
      case 'start': {
        const plan = m.plan;
        // The credentials are in memory before the baseline, as in the parent before its Fleet is built.
        const baseline = await mem();
        // The simulator's ramp: rampPerSecond / 20 every 50 ms, each at a random point of its tick.
        const perTick = plan.rampPerSecond / 20;
        let budget = 0;
        let next = 0;
        const tick = (): void => {
          if (stopped) return;
          budget += perTick;
          for (; budget >= 1 && next < plan.devices.length; budget--) {
            const d = plan.devices[next++];
            later(Math.random() * 50, () => {
              stats.started++;
              device(plan, d.id, d.secret);
            });
          }
          ramp = next < plan.devices.length ? setTimeout(tick, 50) : null;
        };
        tick();
        return { id: m.id, op: 'start', baseline: { rss: baseline.rss, heapUsed: baseline.heapUsed } };
      }
      case 'stats':
        return { id: m.id, op: 'stats', ...stats, sent: { ...stats.sent }, at: performance.now() };
      case 'loop': {
        const r = { id: m.id, op: 'loop' as const, p99: loop.percentile(99), max: loop.max };
        loop.reset();
        return r;
      }
      case 'stop':
        stopped = true;
        if (ramp) clearTimeout(ramp);
        for (const t of timers) clearTimeout(t);
        for (const c of clients) c.end(true);
        return { id: m.id, op: 'stop' };
      default:
        return unexpected(m);
    }
  });
  send({ op: 'ready', mqttPort: 0, httpPort: null, token: null, startupMs: performance.now() - t0 });
}

runMode({
  setup: (dir) => setup(dir),
  bridge: (dir) => bridge(dir),
  mqttjs: () => anchor(),
});
