/**
 * The broker under test for bench/broker.ts, in a process of its own (so its
 * RSS is its own and the load generator runs beside it, pinned to another
 * CPU). Started by bench/broker.ts with an IPC channel; not meant to be run
 * by hand.
 *
 *   broker-server.ts bare                      bare aedes 1.2 on a NODELAY net server
 *   broker-server.ts bridge <dataDir> [--keep-event-rate-limit]
 *                                              createBridge on a provisioned data dir
 *   broker-server.ts provision <dataDir> <n>   createBridge, then a user, a product,
 *                                              n devices with secrets and a token; exits
 *
 * Answers the parent's requests: memory after a forced GC (run with
 * --expose-gc), CPU time used, and (bridge) how often each store method was
 * called, to check that the publish path does not reach the database.
 */
import { join } from 'node:path';
import type { Reply, Request } from './broker-common.js';
import { cpuProfiler, forcedGc, listenBareAedes, PLAIN_MQTT_ONLY, provisionBench, runMode, send as sendAny, serve as serveAny } from './server-harness.js';

const send: (r: Reply) => void = sendAny;
const storeCalls: Record<string, number> = {};
const profiler = cpuProfiler();

/** Memory after a forced GC, V8's CPU profiler, the store calls; CPU time and exit as every server. */
function serve(): void {
  serveAny<Request, Reply>(async (m) => {
    switch (m.op) {
      case 'mem': {
        const gc = await forcedGc();
        const u = process.memoryUsage();
        return { id: m.id, op: 'mem', rss: u.rss, heapUsed: u.heapUsed, gc };
      }
      case 'profileStart':
        // V8's sampling profiler for one phase (bench/broker.ts --cpu-prof DIR).
        await profiler.start();
        return { id: m.id, op: 'profileStart' };
      case 'profileStop': {
        const file = join(m.dir, `${m.label}.cpuprofile`);
        await profiler.stop(file);
        return { id: m.id, op: 'profileStop', file };
      }
      case 'storeCalls':
        return { id: m.id, op: 'storeCalls', calls: { ...storeCalls } };
    }
  });
}

async function bare(): Promise<void> {
  const t0 = performance.now();
  const port = await listenBareAedes();
  serve();
  send({ op: 'ready', port, startupMs: performance.now() - t0 });
}

async function bridge(dataDir: string, keepRateLimit: boolean): Promise<void> {
  const t0 = performance.now();
  const { createBridge, defaultOptions } = await import('@flotilla/bridge');
  // Devices may publish 1 event/s with bursts of 4 (Particle's rate): 1,000 devices at 20k msg/s would be
  // cut at once. Lifted through the bridge's option; the limiter still runs on every event, it never refuses.
  const eventRate = keepRateLimit ? defaultOptions.mqtt.eventRate : { perSecond: 1e9, burst: 1e9 };
  const b = await createBridge({ dataDir, host: '127.0.0.1', mqttPort: 0, ...PLAIN_MQTT_ONLY, logLevel: 'info', mqtt: { ...defaultOptions.mqtt, eventRate } });
  // The broker holds this very object (createBroker({ store })): count every call it makes.
  const store = b.store as unknown as Record<string, unknown>;
  for (const [name, fn] of Object.entries(store)) {
    if (typeof fn !== 'function') continue;
    storeCalls[name] = 0;
    store[name] = function (this: unknown, ...args: unknown[]) {
      storeCalls[name]++;
      return (fn as (...a: unknown[]) => unknown).apply(this, args);
    };
  }
  serve();
  send({ op: 'ready', port: b.ports.mqtt, startupMs: performance.now() - t0 });
}

async function provision(dataDir: string, n: number): Promise<void> {
  // Imported here, not at the top: the bare broker's process loads none of the bridge.
  const { createBridge } = await import('@flotilla/bridge');
  const b = await createBridge({ dataDir, host: '127.0.0.1', mqttPort: 0, ...PLAIN_MQTT_ONLY, logLevel: 'silent', ownerPassword: 'bench-owner-password' });
  const t0 = performance.now();
  // scrypt runs on libuv's pool (4 threads): 8 at a time keep it busy.
  const { token, productId } = await provisionBench(b.store, n, 8, null);
  const ms = performance.now() - t0;
  await b.close();
  process.send?.({ op: 'provisioned', devices: n, ms, token, productId } satisfies Reply, () => process.exit(0));
}

runMode({
  bare: () => bare(),
  bridge: (dir, flag) => bridge(dir, flag === '--keep-event-rate-limit'),
  provision: (dir, n) => provision(dir, Number(n)),
});
