/**
 * The HAL on Node: a real TCP or TLS socket to the bridge, real timers, flash
 * from MemoryFlash, and a system model (heap, battery, signal, reset reason)
 * set by the caller. One instance per simulated device; `dispose` leaves no
 * timer or socket behind.
 */
import { connect as tcpConnect, Socket } from 'node:net';
import { connect as tlsConnect, ConnectionOptions } from 'node:tls';
import { performance } from 'node:perf_hooks';
import type { Hal, HalFlash } from '@flotilla/firmware/hal';

export interface NodeHalOptions {
  host: string;
  port: number;
  /** Set for mqtts: the CA to trust, and the device's certificate and key for mutual TLS. */
  tls?: ConnectionOptions;
  flash: HalFlash;
  /** Particle reset reason code of this boot. */
  resetReason?: number;
  /** The system model; each is read whenever the agent asks. */
  memoryUsed?: () => number;
  memoryTotal?: () => number;
  battery?: () => number;
  signalStrength?: () => number;
  /** The agent asked for a reset (a RESET_REASONS code); the host reboots the device. */
  onReset?: (reason: number) => void;
  onSignal?: (on: boolean) => void;
  onLog?: (line: string) => void;
  /** The device's identity, kept outside the application slots as a board keeps its keys; the image reads it as `hal.device`. */
  device?: DeviceIdentity;
  /** Observes bytes on the link (tests, traffic counters). */
  onSend?: (bytes: Uint8Array) => void;
  onReceive?: (bytes: Uint8Array) => void;
  /** A new connection was opened (true) or ended (false): closed, or cut by `dispose` (a reset, a power cut). */
  onLink?: (up: boolean) => void;
  /**
   * Network faults: ms of latency added to each direction now, and whether
   * the network is reachable (a connection attempt while it is not fails).
   */
  latency?: () => number;
  reachable?: () => boolean;
  /**
   * An exception escaped the program into the HAL (the agent guards the app's
   * callbacks, so this is a crash of the image itself). Default: rethrow.
   */
  onUncaught?: (err: unknown) => void;
}

export interface DeviceIdentity {
  id: string;
  secret: string;
}

export interface NodeHal extends Hal {
  device: DeviceIdentity | null;
  /** The open socket, for fault injection (destroy it to cut the link). */
  socket(): Socket | null;
  dispose(): void;
}

export function createNodeHal(o: NodeHalOptions): NodeHal {
  const start = performance.now();
  const timers = new Map<number, NodeJS.Timeout>();
  let nextTimer = 1;
  let sock: Socket | null = null;
  let disposed = false;
  /** Runs a callback of the program; what escapes it is a crash, reported once. */
  const run = (fn: () => void): void => {
    if (disposed) return;
    try {
      fn();
    } catch (e) {
      if (!o.onUncaught) throw e;
      o.onUncaught(e);
    }
  };

  // Injected latency: one delay line per direction, so bytes keep their order whatever the jitter.
  const outbound = new DelayLine();
  const inbound = new DelayLine();
  const lag = (): number => (o.latency ? o.latency() : 0);
  let failing: NodeJS.Timeout | null = null;
  /** Reports each change of the link once: a close, or the end of the device (dispose) while a link is up. */
  let up = false;
  const link = (now: boolean): void => {
    if (now === up) return;
    up = now;
    o.onLink?.(now);
  };

  const hal: NodeHal = {
    device: o.device ?? null,
    net: {
      open(onOpen, onData, onClose) {
        if (disposed) return;
        if (o.reachable && !o.reachable()) {
          // No route to the bridge: the attempt fails after a moment, as a connect timeout would.
          failing = setTimeout(() => {
            failing = null;
            run(onClose);
          }, 200);
          return;
        }
        const s = o.tls ? tlsConnect({ host: o.host, port: o.port, ...o.tls }) : tcpConnect({ host: o.host, port: o.port });
        sock = s;
        s.setNoDelay(true); // Nagle + delayed ACK would add 40 ms to every QoS 1 round trip
        let closed = false;
        s.once(o.tls ? 'secureConnect' : 'connect', () => {
          link(true);
          run(onOpen);
        });
        s.on('data', (chunk: Buffer) =>
          inbound.push(lag(), () => {
            if (closed) return;
            o.onReceive?.(chunk);
            run(() => onData(chunk));
          }),
        );
        s.on('error', () => {}); // 'close' follows
        s.once('close', () => {
          if (sock === s) sock = null;
          // After the bytes that arrived before it, however late the injected latency delivers them.
          inbound.push(lag(), () => {
            if (closed) return;
            closed = true;
            link(false);
            run(onClose);
          });
        });
      },
      send(bytes) {
        const s = sock;
        if (s && !s.destroyed) {
          o.onSend?.(bytes);
          outbound.push(lag(), () => {
            if (!s.destroyed) s.write(bytes);
          });
        }
      },
      close() {
        // Flush what was sent (a DISCONNECT), then close; a peer that will not read gets a second.
        const s = sock;
        if (!s || s.destroyed) return;
        outbound.push(lag(), () => {
          s.end();
          const t = setTimeout(() => s.destroy(), 1000);
          s.once('close', () => clearTimeout(t));
        });
      },
    },
    clock: {
      now: () => performance.now() - start,
      setTimer(fn, ms) {
        const id = nextTimer++;
        timers.set(
          id,
          setTimeout(() => {
            timers.delete(id);
            run(fn);
          }, ms),
        );
        return id;
      },
      clearTimer(id) {
        const t = timers.get(id);
        if (t) clearTimeout(t);
        timers.delete(id);
      },
    },
    flash: o.flash,
    system: {
      memoryUsed: () => (o.memoryUsed ? o.memoryUsed() : 0),
      memoryTotal: () => (o.memoryTotal ? o.memoryTotal() : 0),
      resetReason: () => o.resetReason ?? 0,
      reset: (reason) => o.onReset?.(reason),
      signal: (on) => o.onSignal?.(on),
      battery: () => (o.battery ? o.battery() : -1),
      signalStrength: () => (o.signalStrength ? o.signalStrength() : -1),
      log: (line) => o.onLog?.(line),
    },
    socket: () => sock,
    dispose() {
      disposed = true;
      for (const t of timers.values()) clearTimeout(t);
      timers.clear();
      outbound.clear();
      inbound.clear();
      if (failing) clearTimeout(failing);
      sock?.destroy();
      sock = null;
      link(false);
    },
  };
  return hal;
}

/** Runs callbacks after a delay, in the order they were pushed (a later one never overtakes). */
class DelayLine {
  private readonly queue: { due: number; fn: () => void }[] = [];
  private timer: NodeJS.Timeout | null = null;
  private lastDue = 0;

  push(ms: number, fn: () => void): void {
    if (ms <= 0 && this.queue.length === 0) return fn();
    const due = Math.max(performance.now() + ms, this.lastDue);
    this.lastDue = due;
    this.queue.push({ due, fn });
    if (!this.timer) this.arm();
  }

  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.queue.length = 0;
  }

  private arm(): void {
    const head = this.queue[0];
    this.timer = setTimeout(() => {
      this.timer = null;
      const now = performance.now();
      while (this.queue.length > 0 && this.queue[0].due <= now + 1) (this.queue.shift() as { fn: () => void }).fn();
      if (this.queue.length > 0) this.arm();
    }, Math.max(0, head.due - performance.now()));
  }
}
