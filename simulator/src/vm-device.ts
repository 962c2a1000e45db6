/**
 * One simulated device on Node: the bootloader (bootSelect on the boot
 * record), then the image in the chosen slot run in a fresh `node:vm` realm
 * whose only global beyond the language's builtins is `hal`. A reset, a crash
 * at start or an exception escaping into the HAL reboots the device, as a
 * watchdog would; a trial image that crashes is rolled back by the
 * bootloader on the next boot.
 */
import { createHash } from 'node:crypto';
import vm from 'node:vm';
import { encodeImageHeader, IMAGE_HEADER_SIZE, parseImageHeader, RESET_REASONS } from '@flotilla/protocol';
import { bootSelect, decodeBoot, encodeBoot } from '@flotilla/firmware/boot';
import type { ConnectionOptions } from 'node:tls';
import { createNodeHal, NodeHal } from './hal/node-hal.js';
import type { MemoryFlash } from './hal/memory-flash.js';

export interface VmDeviceOptions {
  flash: MemoryFlash;
  host: string;
  port: number;
  tls?: ConnectionOptions;
  memoryTotal?: number;
  battery?: () => number;
  signalStrength?: () => number;
  /** Each boot: which slot, whether on trial, and why. */
  onBoot?: (boot: { slot: number; trial: boolean; reason: number; version: number }) => void;
  /** A crash (exception at start or escaping into the HAL). */
  onCrash?: (err: unknown) => void;
  onLog?: (line: string) => void;
  /** Delay before a reboot, ms (default 0): how long the device is dark. */
  rebootDelay?: number;
  /** Reboots allowed in a row without reaching `bootOk`, to stop a crash loop in tests (default 20). */
  maxBoots?: number;
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
  private stopped = false;
  private rebootTimer: NodeJS.Timeout | null = null;

  constructor(private readonly o: VmDeviceOptions) {}

  /** Powers the device on (reason: Particle's power_down by default). */
  start(reason = RESET_REASONS.code('power_down')): void {
    this.stopped = false;
    this.boot(reason);
  }

  /** Powers off: no more callbacks, no socket. */
  stop(): void {
    this.stopped = true;
    if (this.rebootTimer) clearTimeout(this.rebootTimer);
    this.rebootTimer = null;
    this.hal?.dispose();
    this.hal = null;
  }

  /** Power cut and power on, as a device losing power would. */
  powerCycle(): void {
    this.stop();
    this.start(RESET_REASONS.code('power_down'));
  }

  private reboot(reason: number): void {
    if (this.stopped || this.rebootTimer) return;
    this.hal?.dispose();
    this.hal = null;
    this.rebootTimer = setTimeout(() => {
      this.rebootTimer = null;
      if (!this.stopped) this.boot(reason);
    }, this.o.rebootDelay ?? 0);
  }

  private boot(reason: number): void {
    this.boots++;
    if (this.boots > (this.o.maxBoots ?? 20)) {
      this.o.onLog?.('vm-device: too many boots in a row, staying off');
      return;
    }
    const flash = this.o.flash;
    const choice = bootSelect(decodeBoot(flash.readBoot()));
    if (choice.write) flash.writeBoot(encodeBoot(choice.write));
    let source: string;
    let image: BootedImage;
    try {
      const header = parseImageHeader(flash.read(choice.slot, 0, IMAGE_HEADER_SIZE));
      if (header.bodySize + IMAGE_HEADER_SIZE > flash.slotSize()) throw new Error('image larger than its slot');
      const body = flash.read(choice.slot, IMAGE_HEADER_SIZE, header.bodySize);
      if (!createHash('sha256').update(body).digest().equals(Buffer.from(header.bodySha256))) throw new Error('image body does not match its SHA-256');
      source = Buffer.from(body).toString('utf8');
      image = { slot: choice.slot, trial: choice.trial, product: header.product, version: header.version };
    } catch (e) {
      // Nothing bootable here: a crash. A trial slot is rolled back on the next boot.
      this.o.onCrash?.(e);
      return this.reboot(RESET_REASONS.code('panic'));
    }
    this.current = image;
    this.o.onBoot?.({ slot: image.slot, trial: image.trial, reason, version: image.version });
    const hal = createNodeHal({
      host: this.o.host,
      port: this.o.port,
      tls: this.o.tls,
      flash,
      resetReason: reason,
      memoryUsed: () => process.memoryUsage().heapUsed,
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
      vm.runInContext(source, vm.createContext({ hal }), { filename: 'slot' + image.slot + '.js', timeout: 5000 });
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
