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
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { Aedes } from 'aedes';
import { benchDeviceId, benchSecret, type Reply, type Request } from './broker-common.js';

/** The benchmark loads the plain MQTT listener only: no TLS or WebSocket listeners (their default ports may be taken). */
const PLAIN_MQTT_ONLY = { httpPort: null, mqttsPort: null, wsPort: null, wssPort: null };

const send = (r: Reply): void => {
  process.send?.(r);
};
const storeCalls: Record<string, number> = {};
let profiler: Session | undefined;

async function forcedGc(): Promise<boolean> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return false;
  // Twice, with a turn of the event loop between: weak callbacks and finalizers run after the first.
  gc();
  await new Promise((r) => setImmediate(r));
  gc();
  return true;
}

function serve(exit: () => void): void {
  process.on('message', async (m: Request) => {
    switch (m.op) {
      case 'mem': {
        const gc = await forcedGc();
        const u = process.memoryUsage();
        return send({ id: m.id, op: 'mem', rss: u.rss, heapUsed: u.heapUsed, gc });
      }
      case 'cpu': {
        const c = process.cpuUsage();
        return send({ id: m.id, op: 'cpu', userMs: c.user / 1000, systemMs: c.system / 1000 });
      }
      case 'profileStart':
        // V8's sampling profiler for one phase (bench/broker.ts --cpu-prof DIR).
        profiler ??= new Session();
        profiler.connect();
        await profiler.post('Profiler.enable');
        await profiler.post('Profiler.setSamplingInterval', { interval: 200 });
        await profiler.post('Profiler.start');
        return send({ id: m.id, op: 'profileStart' });
      case 'profileStop': {
        const file = join(m.dir, `${m.label}.cpuprofile`);
        if (profiler) {
          const { profile } = await profiler.post('Profiler.stop');
          writeFileSync(file, JSON.stringify(profile));
          profiler.disconnect();
        }
        return send({ id: m.id, op: 'profileStop', file });
      }
      case 'storeCalls':
        return send({ id: m.id, op: 'storeCalls', calls: { ...storeCalls } });
      case 'exit':
        send({ id: m.id, op: 'exit' });
        // No graceful close: the bridge would write 10,000 "offline"s first. The parent deletes the data dir.
        return exit();
    }
  });
  // The parent went away (crash, Ctrl-C): do not outlive it.
  process.on('disconnect', () => process.exit(0));
}

async function bare(): Promise<void> {
  const t0 = performance.now();
  // maxClientsIdLength as the bridge's: device ids are 24 characters, aedes' default allows 23. No hooks.
  const aedes = await Aedes.createBroker({ maxClientsIdLength: 64 });
  const server = createServer({ noDelay: true }, (s) => aedes.handle(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  serve(() => setImmediate(() => process.exit(0)));
  send({ op: 'ready', port: (server.address() as AddressInfo).port, startupMs: performance.now() - t0 });
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
  serve(() => setImmediate(() => process.exit(0)));
  send({ op: 'ready', port: b.ports.mqtt, startupMs: performance.now() - t0 });
}

async function provision(dataDir: string, n: number): Promise<void> {
  // Imported here, not at the top: the bare broker's process loads none of the bridge.
  const { createBridge } = await import('@flotilla/bridge');
  const b = await createBridge({ dataDir, host: '127.0.0.1', mqttPort: 0, ...PLAIN_MQTT_ONLY, logLevel: 'silent', ownerPassword: 'bench-owner-password' });
  const s = b.store;
  const t0 = performance.now();
  const user = await s.createUser('bench-operator', 'bench-operator-password');
  const product = await s.createProduct({ name: 'Bench', slug: 'bench', ownerUserId: user.id });
  let next = 0;
  // scrypt runs on libuv's pool (4 threads): keep it busy while the SQLite inserts run here.
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      await s.createDevice({ id: benchDeviceId(i), productId: product.id });
      await s.setDeviceSecret(benchDeviceId(i), benchSecret(i));
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  const { token } = await s.issueToken({ subject: { kind: 'user', id: user.id }, clientId: 'bench', scopes: [], ttlSeconds: null });
  const ms = performance.now() - t0;
  await b.close();
  process.send?.({ op: 'provisioned', devices: n, ms, token, productId: String(product.id) } satisfies Reply, () => process.exit(0));
}

const [mode, dir, arg] = process.argv.slice(2);
const main =
  mode === 'bare' ? bare() : mode === 'bridge' ? bridge(dir, arg === '--keep-event-rate-limit') : mode === 'provision' ? provision(dir, Number(arg)) : Promise.reject(new Error('unknown mode ' + mode));
main.catch((e: Error) => {
  send({ op: 'error', message: e.stack ?? String(e) });
  setImmediate(() => process.exit(1));
});
