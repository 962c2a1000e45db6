/**
 * The servers' side of the harness, shared by bench/broker-server.ts,
 * bench/api-server.ts and bench/ota-server.ts (each started by its load
 * generator with an IPC channel, bench/harness.ts's startChildServer): the
 * messages to the parent, the requests every server answers (CPU time,
 * exit), bare aedes, the benchmark's user, product and devices, the mode
 * dispatch, and V8's CPU profiler.
 *
 * Loads nothing the servers did not load already (the bridge is imported
 * only where a mode needs it): the bare broker's RSS is measured.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { createServer, type AddressInfo } from 'node:net';
import { Aedes } from 'aedes';
import type { Bridge } from '@flotilla/bridge';
import { benchDeviceId, benchSecret } from './broker-common.js';

/** The benchmark loads the plain MQTT listener only: no TLS or WebSocket listeners (their default ports may be taken). */
export const PLAIN_MQTT_ONLY = { httpPort: null, mqttsPort: null, wsPort: null, wssPort: null };

/** To the parent (a no-op without an IPC channel). */
export function send(message: object): void {
  process.send?.(message);
}

/**
 * Answers the parent's requests: CPU time used ('cpu'), 'exit' (at once, no
 * graceful close), any other with what `handle` returns (a throw is sent as
 * { op: 'error' }). Exits when the parent goes away.
 */
export function serve<Req extends { id: number; op: string }, Rep extends { op: string }>(handle: (m: Exclude<Req, { op: 'cpu' | 'exit' }>) => Promise<Rep> | Rep): void {
  process.on('message', async (m: Req) => {
    try {
      switch (m.op) {
        case 'cpu': {
          const c = process.cpuUsage();
          return send({ id: m.id, op: 'cpu', userMs: c.user / 1000, systemMs: c.system / 1000 });
        }
        case 'exit':
          // No graceful close: the bridge would write every device's "offline" first. The parent deletes the data dir.
          return process.send?.({ id: m.id, op: 'exit' }, () => process.exit(0));
        default:
          return send(await handle(m as Exclude<Req, { op: 'cpu' | 'exit' }>));
      }
    } catch (e) {
      send({ op: 'error', message: (e as Error).stack ?? String(e) });
    }
  });
  // The parent went away (crash, Ctrl-C): do not outlive it.
  process.on('disconnect', () => process.exit(0));
}

/** Bare aedes 1.2 (no hooks) on a NODELAY net server on 127.0.0.1; resolves with its port. */
export async function listenBareAedes(): Promise<number> {
  // maxClientsIdLength as the bridge's: device ids are 24 characters, aedes' default allows 23.
  const aedes = await Aedes.createBroker({ maxClientsIdLength: 64 });
  const server = createServer({ noDelay: true }, (s) => aedes.handle(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/**
 * The benchmark's operator, a product it owns, devices 0..n-1 of it with their
 * secrets (`workers` at a time: scrypt runs on libuv's pool while the SQLite
 * inserts run here) and a bearer token of the operator.
 */
export async function provisionBench(s: Bridge['store'], n: number, workers: number, ttlSeconds: number | null): Promise<{ token: string; productId: string }> {
  const user = await s.createUser('bench-operator', 'bench-operator-password');
  const product = await s.createProduct({ name: 'Bench', slug: 'bench', ownerUserId: user.id });
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      await s.createDevice({ id: benchDeviceId(i), productId: product.id });
      await s.setDeviceSecret(benchDeviceId(i), benchSecret(i));
    }
  };
  await Promise.all(Array.from({ length: workers }, worker));
  const { token } = await s.issueToken({ subject: { kind: 'user', id: user.id }, clientId: 'bench', scopes: [], ttlSeconds });
  return { token, productId: String(product.id) };
}

/** Runs the mode named by the first argument with the others; a failure is sent as { op: 'error' }, then exit 1. */
export function runMode(modes: Record<string, (...args: string[]) => Promise<void>>): void {
  const [mode, ...args] = process.argv.slice(2);
  const main = Object.hasOwn(modes, mode) ? modes[mode](...args) : Promise.reject(new Error('unknown mode ' + mode));
  main.catch((e: Error) => {
    send({ op: 'error', message: e.stack ?? String(e) });
    setImmediate(() => process.exit(1));
  });
}

/** A full collection when the process runs with --expose-gc (false otherwise). */
export async function forcedGc(): Promise<boolean> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return false;
  // Twice, with a turn of the event loop between: weak callbacks and finalizers run after the first.
  gc();
  await new Promise((r) => setImmediate(r));
  gc();
  return true;
}

/** V8's sampling profiler for one phase of a run (the benchmarks' --cpu-prof DIR): start, then stop into a .cpuprofile file. */
export function cpuProfiler(): { start(): Promise<void>; stop(file: string): Promise<void> } {
  let session: Session | undefined;
  return {
    async start() {
      session ??= new Session();
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.setSamplingInterval', { interval: 200 });
      await session.post('Profiler.start');
    },
    async stop(file) {
      if (!session) return;
      const { profile } = await session.post('Profiler.stop');
      writeFileSync(file, JSON.stringify(profile));
      session.disconnect();
    },
  };
}
