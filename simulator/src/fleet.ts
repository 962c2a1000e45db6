/**
 * A fleet: many simulated devices, each the real agent image booted from its
 * own flash on a Node HAL with a real socket to the bridge, started on a
 * ramp, with the scenario's world (network faults, power cuts, crashes,
 * battery, signal, images that fail their trial) played around them.
 *
 * Devices share one realm and, until an update reaches them, one copy of
 * the factory image, so a device costs its agent's objects and its socket.
 * What the fleet counts it sees on the wire (LinkWatch), not from inside the
 * image, so any image an operator flashes is counted the same way.
 */
import { connect as tcpConnect } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { RESET_REASONS } from '@flotilla/protocol';
import { MemoryFlash } from './hal/memory-flash.js';
import { LinkWatch } from './link-watch.js';
import { sharedRealm } from './realm.js';
import { fleetImage } from './app.js';
import { VmDevice } from './vm-device.js';
import type { DeviceCredentials } from './provision.js';
import type { Scenario } from './scenario.js';

export interface FleetOptions {
  /** The bridge's MQTT listener: mqtt://host:port or mqtts://host:port. */
  bridge: string;
  /** For mqtts: what to trust (e.g. `{ ca }`); devices also present no certificate and log in with their secret. */
  tls?: ConnectionOptions;
  /** The product's numeric id, written into the fleet's image. */
  product: number;
  devices: DeviceCredentials[];
  scenario: Scenario;
  /** Devices powered on per second while ramping up; each also waits a random part of its second. */
  rampPerSecond: number;
  /** Keep each device's flash in DIR/<device id>/ so a restarted simulator finds its slots (null: in memory). */
  flashDir: string | null;
  /** Capacity of one flash slot, bytes. */
  slotSize: number;
  /** Power on one device first and wait for the bridge's answer, so a wrong secret or address fails at once. */
  probe: boolean;
  /** Start devices with this image instead of the scenario's (tests). */
  image?: Uint8Array;
  onLog?: (line: string) => void;
}

/** The most devices one simulator process runs (the 10,000 it is built for, with room to spare; memory is the limit, about 0.3 MB a device). */
export const MAX_FLEET = 100_000;

export const defaultFleetOptions: Omit<FleetOptions, 'bridge' | 'product' | 'devices' | 'scenario'> = {
  // A bridge spends about 5.5 ms of one core per device login (scrypt, aedes, the hello's writes): ~180/s. Faster,
  // logins queue past the agent's 10 s CONNACK timeout and devices retry (bench/simulator, 10,000 devices).
  rampPerSecond: 150,
  flashDir: null,
  // A Photon's application slot is 128 KB; room for the OTA issue's 256 KB test images too.
  slotSize: 512 * 1024,
  probe: true,
};

export class FleetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FleetError';
  }
}

/** Publishes by the protocol channel of their topic. */
export type Counts = Record<string, number>;

export interface FleetStats {
  devices: number;
  /** Powered on so far (the ramp's progress). */
  started: number;
  /** Holding a session the bridge accepted, now. */
  connected: number;
  /** Sessions accepted, refused (CONNACK ≠ 0) and ended, since the start. */
  connects: number;
  refused: number;
  disconnects: number;
  /** Device → cloud publishes, and cloud → device, by channel (evt, vitals, err, reply, hello, ota; req, ota, evt). */
  sent: Counts;
  received: Counts;
  /** Images that crashed (at start, or an exception escaping the agent). */
  crashes: number;
  boots: number;
  /** Faults the world injected. */
  injected: { drop: number; flap: number; powerCut: number; crash: number };
  ota: {
    /** Devices that received OTA messages in the last 15 s. */
    receiving: number;
    /** Trial boots of a new image that then reached the bridge. */
    updated: number;
    /** Trial images the bootloader gave up on. */
    rolledBack: number;
  };
  /** Devices by the image version they run. */
  versions: Record<number, number>;
}

const CONNACK_TEXT: Record<number, string> = {
  1: 'unacceptable protocol version',
  2: 'client identifier rejected',
  3: 'server unavailable',
  4: 'bad user name or password',
  5: 'not authorized',
};

/** One device of the fleet and what the host keeps about it. */
interface Member {
  creds: DeviceCredentials;
  vm: VmDevice;
  connected: boolean;
  /** A trial boot waiting to reach the bridge. */
  trial: boolean;
  version: number;
  otaAt: number;
  /** The network is unreachable until then (performance.now()). */
  downUntil: number;
  poweredAt: number;
  timers: Set<NodeJS.Timeout>;
  battery: number;
}

export class Fleet {
  readonly options: FleetOptions;
  private readonly members: Member[] = [];
  private readonly host: string;
  private readonly port: number;
  private readonly secure: boolean;
  private ramp: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly counters = {
    started: 0,
    connects: 0,
    refused: 0,
    disconnects: 0,
    crashes: 0,
    boots: 0,
    updated: 0,
    rolledBack: 0,
    lastRefusal: -1,
  };
  private readonly sent: Counts = {};
  private readonly received: Counts = {};
  private readonly injected = { drop: 0, flap: 0, powerCut: 0, crash: 0 };
  private readonly t0 = performance.now();

  constructor(options: Partial<FleetOptions> & Pick<FleetOptions, 'bridge' | 'product' | 'devices' | 'scenario'>) {
    const o = (this.options = { ...defaultFleetOptions, ...options });
    const url = parseBridgeUrl(o.bridge);
    this.host = url.host;
    this.port = url.port;
    this.secure = url.secure;
    const image = o.image ?? fleetImage(o.scenario, o.product);
    const factory = MemoryFlash.factorySlot(image, o.slotSize);
    const runner = sharedRealm();
    const s = o.scenario;
    for (const creds of o.devices) {
      const m: Member = {
        creds,
        vm: null as unknown as VmDevice,
        connected: false,
        trial: false,
        version: 0,
        otaAt: -Infinity,
        downUntil: 0,
        poweredAt: 0,
        timers: new Set(),
        battery: s.battery ? s.battery.start * (0.7 + 0.3 * Math.random()) : -1,
      };
      const watch = new LinkWatch({
        connack: (code) => this.connack(m, code),
        publish: (dir, channel) => {
          const counts = dir === 'out' ? this.sent : this.received;
          counts[channel] = (counts[channel] ?? 0) + 1;
          if (dir === 'in' && channel === 'ota') m.otaAt = performance.now();
        },
      });
      m.vm = new VmDevice({
        flash: o.flashDir ? MemoryFlash.open(join(o.flashDir, creds.id), o.slotSize, undefined, factory) : MemoryFlash.factory(factory),
        host: this.host,
        port: this.port,
        tls: this.secure ? { ...o.tls } : undefined,
        runner,
        memoryTotal: s.memory.total,
        // Within 0..total whatever the jitter: a heap cannot be negative or larger than itself.
        memoryUsed: () => Math.min(s.memory.total, Math.max(0, Math.round(s.memory.used + (Math.random() * 2 - 1) * s.memory.jitter))),
        battery: s.battery ? () => this.battery(m) : undefined,
        signalStrength: s.signal ? () => jitter(s.signal!.mean, s.signal!.jitter) : undefined,
        failTrial: s.ota.failTrial > 0 ? () => Math.random() < s.ota.failTrial : undefined,
        onBoot: (b) => {
          this.counters.boots++;
          m.version = b.version;
          m.trial = b.trial;
          if (b.rolledBack) this.counters.rolledBack++;
        },
        onCrash: (e) => {
          this.counters.crashes++;
          o.onLog?.(`${creds.id}: crashed: ${(e as Error)?.message ?? e}`);
        },
        onLog: (line) => o.onLog?.(`${creds.id}: ${line}`),
        // A device in the field reboots after a crash within a second or two.
        rebootDelay: 1000,
        hal: {
          device: creds,
          onSend: (b) => watch.sent(b),
          onReceive: (b) => watch.received(b),
          onLink: (up) => {
            watch.reset();
            if (!up) this.down(m);
          },
          latency: s.faults.latency ? () => s.faults.latency!.ms + Math.random() * s.faults.latency!.jitter : undefined,
          reachable: s.faults.flap ? () => performance.now() >= m.downUntil : undefined,
        },
      });
      this.members.push(m);
    }
  }

  /**
   * Powers the fleet on, on the ramp. With `probe`, the first device must
   * reach the bridge and be accepted first: a wrong address, certificate or
   * secret fails here, with the reason, before the others start.
   * `signal` ends the ramp early: the devices started so far keep running
   * (stop() stops them); before the first answer, it fails with FleetError.
   */
  async start(signal?: AbortSignal): Promise<void> {
    if (this.members.length === 0) return;
    let next = 0;
    if (this.options.probe) {
      await this.reach();
      if (signal?.aborted) throw new FleetError('stopped before the first device started');
      this.powerOn(this.members[next++]);
      await this.firstAnswer(this.members[0], signal);
    }
    // Devices due by the clock, not per tick: a busy event loop runs late ticks, which must not slow the ramp.
    const t0 = performance.now();
    const first = next;
    await new Promise<void>((resolve) => {
      const tick = (): void => {
        if (this.stopped || signal?.aborted) return resolve();
        const due = Math.min(this.members.length, first + Math.floor(((performance.now() - t0) / 1000) * this.options.rampPerSecond) + 1);
        for (; next < due; next++) {
          const m = this.members[next];
          // A random part of the tick, so connections do not arrive in bursts.
          this.after(m, Math.random() * 50, () => this.powerOn(m));
        }
        if (next >= this.members.length) {
          this.ramp = null;
          return resolve();
        }
        this.ramp = setTimeout(tick, 50);
      };
      tick();
    });
  }

  /** Waits until `test(stats)` holds, checking every 50 ms; false after `ms`, once the fleet is stopped, or `signal` aborted. */
  async until(test: (s: FleetStats) => boolean, ms: number, signal?: AbortSignal): Promise<boolean> {
    const end = performance.now() + ms;
    for (;;) {
      if (test(this.stats())) return true;
      if (performance.now() >= end || this.stopped || signal?.aborted) return false;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  stats(): FleetStats {
    let connected = 0;
    let receiving = 0;
    const versions: Record<number, number> = {};
    const recent = performance.now() - 15_000;
    for (const m of this.members) {
      if (m.connected) connected++;
      if (m.otaAt > recent) receiving++;
      if (m.version) versions[m.version] = (versions[m.version] ?? 0) + 1;
    }
    const c = this.counters;
    return {
      devices: this.members.length,
      started: c.started,
      connected,
      connects: c.connects,
      refused: c.refused,
      disconnects: c.disconnects,
      sent: { ...this.sent },
      received: { ...this.received },
      crashes: c.crashes,
      boots: c.boots,
      injected: { ...this.injected },
      ota: { receiving, updated: c.updated, rolledBack: c.rolledBack },
      versions,
    };
  }

  /** A device by id, for tests and fault injection by hand. */
  device(id: string): VmDevice | null {
    return this.members.find((m) => m.creds.id === id)?.vm ?? null;
  }

  /** Cuts the network of every device for `seconds` (a flap across the fleet: an access point rebooting). */
  flapAll(seconds: number): void {
    for (const m of this.members) this.flap(m, seconds);
  }

  /** Powers every device off. */
  stop(): void {
    this.stopped = true;
    if (this.ramp) clearTimeout(this.ramp);
    for (const m of this.members) {
      for (const t of m.timers) clearTimeout(t);
      m.timers.clear();
      m.vm.stop();
    }
  }

  private powerOn(m: Member): void {
    if (this.stopped) return;
    this.counters.started++;
    m.poweredAt = performance.now();
    m.vm.start();
    const f = this.options.scenario.faults;
    if (f.drop) this.occasionally(m, f.drop.every, () => {
      this.injected.drop++;
      m.vm.cut();
    });
    if (f.flap) this.occasionally(m, f.flap.every, () => this.flap(m, f.flap!.down));
    if (f.crash) this.occasionally(m, f.crash.every, () => {
      this.injected.crash++;
      m.vm.crash();
    });
    if (f.powerCut) this.occasionally(m, f.powerCut.every, () => {
      if (!m.vm.on) return; // still dark from the last cut
      this.injected.powerCut++;
      m.vm.stop();
      this.after(m, f.powerCut!.off * 1000, () => m.vm.start(RESET_REASONS.code('power_down')));
    });
  }

  private flap(m: Member, seconds: number): void {
    this.injected.flap++;
    m.downUntil = performance.now() + seconds * 1000;
    m.vm.cut();
  }

  private down(m: Member): void {
    if (!m.connected) return;
    m.connected = false;
    this.counters.disconnects++;
  }

  private connack(m: Member, code: number): void {
    if (code !== 0) {
      this.counters.refused++;
      this.counters.lastRefusal = code;
      return;
    }
    this.counters.connects++;
    m.connected = true;
    if (m.trial) {
      m.trial = false;
      this.counters.updated++;
    }
  }

  private battery(m: Member): number {
    const b = this.options.scenario.battery!;
    const hours = (performance.now() - this.t0) / 3_600_000;
    return Math.max(0, Math.round(m.battery - b.drainPerHour * hours));
  }

  /** Runs `fn` again and again, at exponential intervals of mean `seconds`. */
  private occasionally(m: Member, seconds: number, fn: () => void): void {
    this.after(m, -Math.log(1 - Math.random()) * seconds * 1000, () => {
      this.occasionally(m, seconds, fn);
      fn();
    });
  }

  private after(m: Member, ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      m.timers.delete(t);
      if (!this.stopped) fn();
    }, ms);
    m.timers.add(t);
  }

  /** Opens and closes one connection to the bridge, to name an unreachable address or a bad certificate plainly. */
  private reach(): Promise<void> {
    const where = (this.secure ? 'mqtts://' : 'mqtt://') + this.host + ':' + this.port;
    return new Promise((resolve, reject) => {
      const s = this.secure ? tlsConnect({ host: this.host, port: this.port, ...this.options.tls }) : tcpConnect({ host: this.host, port: this.port });
      const t = setTimeout(() => {
        s.destroy();
        reject(new FleetError(`no answer from the bridge at ${where} within 10 s`));
      }, 10_000);
      s.once(this.secure ? 'secureConnect' : 'connect', () => {
        clearTimeout(t);
        s.destroy();
        resolve();
      });
      s.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(t);
        // A certificate refused: say which CA a Flotilla bridge's certificate comes from.
        const hint = !this.secure || !/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/.test(e.code ?? '') ? ''
          : this.options.tls?.ca ? '; the CA given (--ca) did not sign the bridge\'s certificate: a bridge\'s own CA is <its data dir>/tls/bridge-ca.crt'
          : '; trust the bridge\'s CA with --ca <its data dir>/tls/bridge-ca.crt';
        reject(new FleetError(`cannot reach the bridge at ${where}: ${e.code ?? ''} ${e.message}`.replace(/ +/g, ' ') + hint));
      });
    });
  }

  private async firstAnswer(m: Member, signal?: AbortSignal): Promise<void> {
    const answered = await this.until(() => m.connected || this.counters.refused > 0 || this.counters.crashes > 0, 15_000, signal);
    if (m.connected) return;
    const stopped = this.stopped || signal?.aborted;
    this.stop();
    if (this.counters.refused > 0) {
      const code = this.counters.lastRefusal;
      throw new FleetError(`the bridge refused device ${m.creds.id}: ${CONNACK_TEXT[code] ?? 'CONNACK ' + code} (CONNACK ${code}); check its id and secret (credentials file or provisioning)`);
    }
    if (this.counters.crashes > 0) throw new FleetError(`device ${m.creds.id}'s image crashed at start; see the log`);
    throw new FleetError(stopped || answered ? 'stopped before the first device was answered' : `device ${m.creds.id} connected to the bridge but got no answer to its login within 15 s`);
  }
}

function jitter(mean: number, j: number): number {
  return Math.max(0, Math.min(100, Math.round(mean + (Math.random() * 2 - 1) * j)));
}

/** `mqtt://host:port`, `mqtts://host:port` or `host:port` (TCP). */
export function parseBridgeUrl(s: string): { host: string; port: number; secure: boolean } {
  const m = /^(?:(mqtts?):\/\/)?([^:/]+|\[[^\]]+\])(?::(\d+))?\/?$/.exec(s);
  if (!m) throw new FleetError(`the bridge address "${s}" is not mqtt://host:port or mqtts://host:port`);
  const secure = m[1] === 'mqtts';
  const port = m[3] ? Number(m[3]) : secure ? 8883 : 1883;
  if (port < 1 || port > 65535) throw new FleetError(`the bridge address "${s}" has no valid port`);
  return { host: m[2].replace(/^\[|\]$/g, ''), port, secure };
}
