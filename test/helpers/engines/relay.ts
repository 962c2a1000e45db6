/**
 * A TCP relay: when the program calls hal.net.open, Node opens a real loopback
 * socket and relays bytes both ways (socket data -> netData, onSend -> write,
 * socket close -> netClosed, program close -> end, flushing what it sent). Optionally pumps the
 * virtual clock in real time. close() leaves no socket, timer or listener.
 */
import { connect, type Socket } from 'node:net';
import { startClockPump, type ClockPump } from './pump.js';
import type { EngineHost } from './types.js';

export interface RelayTarget {
  host: string;
  port: number;
}

export interface RelayOptions {
  /** Advance the virtual clock by real elapsed time every ~10 ms (default false). */
  realTime?: boolean;
  pumpIntervalMs?: number;
}

export interface Relay {
  /** Sockets opened so far (each hal.net.open). */
  readonly connections: number;
  /** Errors from sockets or from feeding the engine (e.g. ECONNREFUSED), for assertions. */
  readonly errors: readonly Error[];
  readonly connected: boolean;
  /** The real-time pump, when running. */
  readonly pump: ClockPump | null;
  /** Stops the real-time pump (then drive the clock with engine.tick). */
  stopClock(): Promise<void>;
  /** Destroys the socket, stops the pump, detaches from the engine; awaits in-flight engine calls. */
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

export function startRelay(engine: EngineHost, target: RelayTarget, opts: RelayOptions = {}): Relay {
  if (!LOOPBACK.has(target.host)) throw new Error(`relay: loopback only, not ${target.host}`);
  let socket: Socket | null = null;
  let connections = 0;
  let closed = false;
  let pump: ClockPump | null = opts.realTime ? startClockPump(engine, opts.pumpIntervalMs) : null;
  const errors: Error[] = [];
  const inFlight = new Set<Promise<void>>();

  // Engine calls are queued in the host; keep their promises so close() can await them.
  const feed = (p: Promise<void>): void => {
    const q = p.catch((e: unknown) => void errors.push(e as Error)).finally(() => inFlight.delete(q));
    inFlight.add(q);
  };

  const drop = (s: Socket): void => {
    s.removeAllListeners();
    s.on('error', () => undefined);
    s.destroy();
  };

  const open = (): void => {
    if (closed) return;
    if (socket) drop(socket); // a second open replaces the link silently
    const s = connect({ host: target.host, port: target.port });
    socket = s;
    connections++;
    s.setNoDelay(true);
    s.on('connect', () => feed(engine.netOpened()));
    s.on('data', (chunk: Buffer) => feed(engine.netData(new Uint8Array(chunk))));
    s.on('error', (e) => errors.push(e));
    s.on('close', () => {
      if (socket !== s) return;
      socket = null;
      feed(engine.netClosed()); // onClose alone when the connect failed
    });
  };

  const unlisten = engine.listen({
    onOpen: open,
    onSend: (bytes) => {
      if (socket && !socket.destroyed) socket.write(bytes);
    },
    // As the HAL contract says: what the program sent (a DISCONNECT) goes out before the close.
    onNetClose: () => {
      const s = socket;
      if (!s || s.destroyed) return;
      s.end();
      const t = setTimeout(() => s.destroy(), 1000);
      s.once('close', () => clearTimeout(t));
    },
  });

  return {
    get connections() { return connections; },
    get errors() { return errors; },
    get connected() { return socket !== null && !socket.connecting && !socket.destroyed; },
    get pump() { return pump; },
    async stopClock() {
      const p = pump;
      pump = null;
      await p?.stop();
    },
    async close() {
      if (closed) return;
      closed = true;
      unlisten();
      await this.stopClock();
      const s = socket;
      socket = null;
      if (s) {
        s.removeAllListeners();
        s.on('error', () => undefined);
        const gone = new Promise<void>((r) => (s.closed ? r() : s.once('close', () => r())));
        s.destroy();
        await gone;
      }
      await Promise.allSettled([...inFlight]);
    },
  };
}
