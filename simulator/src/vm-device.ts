/**
 * One simulated device on Node: the bootloader (bootSelect on the boot
 * record, then the image's SHA-256), then the image in the chosen slot run by
 * an ImageRunner with `hal` as its only global beyond the language's
 * builtins. A reset, a crash at start or an exception escaping into the HAL
 * reboots the device, as a watchdog would; a trial image that crashes is
 * rolled back by the bootloader on the next boot.
 */
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { encodeImageHeader, IMAGE_HEADER_SIZE, parseImageHeader, RESET_REASONS } from '@flotilla/protocol';
import { bootSelect, decodeBoot, encodeBoot } from '@flotilla/firmware/boot';
import type { ConnectionOptions } from 'node:tls';
import { createNodeHal, NodeHal, NodeHalOptions } from './hal/node-hal.js';
import type { MemoryFlash } from './hal/memory-flash.js';
import { ImageRunner, ownRealm } from './realm.js';

export interface BootInfo {
  slot: number;
  trial: boolean;
  /** The reset reason this boot reports. */
  reason: number;
  version: number;
  /** The bootloader just gave up on a trial image and went back to the known-good slot. */
  rolledBack: boolean;
}

export interface VmDeviceOptions {
  flash: MemoryFlash;
  host: string;
  port: number;
  tls?: ConnectionOptions;
  memoryTotal?: number;
  /** Heap in use as the agent's vitals report it (default: this process's, which says little of one device). */
  memoryUsed?: () => number;
  battery?: () => number;
  signalStrength?: () => number;
  /** Where images run (default: a fresh realm per boot). */
  runner?: ImageRunner;
  /** The rest of the HAL: identity, link observers, network faults. */
  hal?: Pick<NodeHalOptions, 'device' | 'onSend' | 'onReceive' | 'onLink' | 'onSignal' | 'latency' | 'reachable'>;
  /** Fault injection: this trial image crashes at start (as a broken build would). */
  failTrial?: (version: number) => boolean;
  /** Each boot: which slot, whether on trial, and why. */
  onBoot?: (boot: BootInfo) => void;
  /** A crash (exception at start or escaping into the HAL). */
  onCrash?: (err: unknown) => void;
  onLog?: (line: string) => void;
  /** Delay before a reboot, ms (default 0): how long the device is dark. */
  rebootDelay?: number;
  /** Boots allowed in a row, each within 10 s of the one before, before the device stays off: a crash loop (default 20). */
  maxBoots?: number;
  /**
   * The board's watchdog over a trial image, ms (default 120,000: twice the agent's own trial window): a
   * trial image that has not confirmed itself by then is reset, and the bootloader rolls it back. The
   * agent resets itself sooner; this catches an image that never starts it (a bundle with no app).
   */
  trialWatchdogMs?: number;
}

export interface BootedImage {
  slot: number;
  trial: boolean;
  product: number;
  version: number;
}

export class VmDevice {
  hal: NodeHal | null = null;
  current: BootedImage | null = null;
  boots = 0;
  private loop = 0;
  private lastBoot = -Infinity;
  private stopped = false;
  /** Powered on (booted, rebooting, or staying off after a crash loop) until stop(). */
  private powered = false;
  private rebootTimer: NodeJS.Timeout | null = null;
  private watchdog: NodeJS.Timeout | null = null;

  constructor(private readonly o: VmDeviceOptions) {}

  /** Powers the device on (reason: Particle's power_down by default); a device already on stays as it is. */
  start(reason = RESET_REASONS.code('power_down')): void {
    // Booting again under a running agent left two agents on one identity, and the first one's
    // socket and timers beyond stop(): overlapping power cuts each scheduled a power-on.
    if (this.powered) return;
    this.powered = true;
    this.stopped = false;
    this.boot(reason);
  }

  get on(): boolean {
    return this.powered;
  }

  /** Powers off: no more callbacks, no socket. */
  stop(): void {
    this.stopped = true;
    this.powered = false;
    if (this.rebootTimer) clearTimeout(this.rebootTimer);
    this.rebootTimer = null;
    this.disarm();
    this.hal?.dispose();
    this.hal = null;
  }

  /** Power cut and power on, as a device losing power would. */
  powerCycle(): void {
    this.stop();
    this.start(RESET_REASONS.code('power_down'));
  }

  /** A hard fault: the watchdog reboots the device, which reports a panic. */
  crash(): void {
    if (this.hal) this.reboot(RESET_REASONS.code('panic'));
  }

  /** Cuts the link under the agent, as a lost Wi-Fi association would. */
  cut(): void {
    this.hal?.socket()?.destroy();
  }

  private disarm(): void {
    if (this.watchdog) clearTimeout(this.watchdog);
    this.watchdog = null;
  }

  private reboot(reason: number): void {
    if (this.stopped || this.rebootTimer) return;
    this.disarm();
    this.hal?.dispose();
    this.hal = null;
    this.rebootTimer = setTimeout(() => {
      this.rebootTimer = null;
      if (!this.stopped) this.boot(reason);
    }, this.o.rebootDelay ?? 0);
  }

  private boot(reason: number): void {
    this.boots++;
    const now = performance.now();
    this.loop = now - this.lastBoot < 10_000 ? this.loop + 1 : 1;
    this.lastBoot = now;
    if (this.loop > (this.o.maxBoots ?? 20)) {
      this.o.onLog?.('vm-device: too many boots in a row, staying off');
      return;
    }
    const flash = this.o.flash;
    const before = decodeBoot(flash.readBoot());
    const choice = bootSelect(before);
    if (choice.write) flash.writeBoot(encodeBoot(choice.write));
    const rolledBack = choice.write !== null && choice.write.rolledBackFrom !== before.rolledBackFrom;
    let body: Uint8Array | null = null;
    let key: string;
    let image: BootedImage;
    try {
      const header = parseImageHeader(flash.read(choice.slot, 0, IMAGE_HEADER_SIZE));
      if (header.bodySize + IMAGE_HEADER_SIZE > flash.slotSize()) throw new Error('image larger than its slot');
      body = flash.read(choice.slot, IMAGE_HEADER_SIZE, header.bodySize);
      const digest = createHash('sha256').update(body).digest();
      if (!digest.equals(Buffer.from(header.bodySha256))) throw new Error('image body does not match its SHA-256');
      key = digest.toString('hex');
      image = { slot: choice.slot, trial: choice.trial, product: header.product, version: header.version };
    } catch (e) {
      // Nothing bootable here: a crash. A trial slot is rolled back on the next boot.
      this.o.onCrash?.(e);
      return this.reboot(RESET_REASONS.code('panic'));
    }
    this.current = image;
    this.o.onBoot?.({ slot: image.slot, trial: image.trial, reason, version: image.version, rolledBack });
    if (image.trial) {
      // Still on trial when it fires (the record says so: a confirmed image is the active slot): reset.
      this.watchdog = setTimeout(() => {
        this.watchdog = null;
        if (decodeBoot(flash.readBoot()).trial === image.slot) this.reboot(RESET_REASONS.code('watchdog'));
      }, this.o.trialWatchdogMs ?? 120_000);
      this.watchdog.unref?.();
    }
    const hal = createNodeHal({
      ...this.o.hal,
      host: this.o.host,
      port: this.o.port,
      tls: this.o.tls,
      flash,
      resetReason: reason,
      memoryUsed: this.o.memoryUsed ?? (() => process.memoryUsage().heapUsed),
      memoryTotal: () => this.o.memoryTotal ?? 0,
      battery: this.o.battery,
      signalStrength: this.o.signalStrength,
      onReset: (r) => this.reboot(r),
      onUncaught: (e) => {
        this.o.onCrash?.(e);
        this.reboot(RESET_REASONS.code('panic'));
      },
      onLog: this.o.onLog,
    });
    this.hal = hal;
    try {
      if (image.trial && this.o.failTrial?.(image.version)) throw new Error('injected fault: image ' + image.version + ' crashes at start');
      // Only this thunk, in its own block, may capture the image: a closure of the whole call would share its scope with
      // the HAL's callbacks, which live as long as the device, and keep a copy of every image alive (36 KB per device).
      const b = body as Uint8Array;
      (this.o.runner ?? ownRealm).run(() => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8'), key, hal, 'slot' + image.slot + '.js');
    } catch (e) {
      this.o.onCrash?.(e);
      this.reboot(RESET_REASONS.code('panic'));
    }
  }
}

/** Builds an image: header + body, as the bridge and the OTA path expect. */
export function buildImage(product: number, version: number, program: string): Uint8Array {
  const body = Buffer.from(program, 'utf8');
  const bodySha256 = createHash('sha256').update(body).digest();
  return Buffer.concat([encodeImageHeader({ product, version, bodySize: body.length, bodySha256 }), body]);
}
