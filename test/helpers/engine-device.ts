/**
 * One device on a real embedded engine (QuickJS or Duktape): the bootloader
 * (bootSelect on the boot record), the image in the chosen slot run by the
 * engine host, its link relayed to a real broker on loopback, and its clock
 * pumped in real time. A reset or a crash reboots it into a fresh engine with
 * the flash the last one left, as the hardware would.
 *
 * Every persisted flash operation of every boot (the agent's and the
 * bootloader's) goes into one journal, so a test can cut the power after any
 * k-th write and boot from exactly what would survive: `journal.after(k)`.
 */
import { createHash } from 'node:crypto';
import { IMAGE_HEADER_SIZE, parseImageHeader, RESET_REASONS } from '@flotilla/protocol';
import { bootSelect, decodeBoot, encodeBoot } from '@flotilla/firmware/boot';
import { cloneFlash, EngineHost, EngineName, FlashJournal, FlashState, startEngine } from './engines/index.js';
import { Relay, startRelay } from './engines/relay.js';

export interface EngineDeviceOptions {
  port: number;
  heapCap?: number;
  battery?: number;
  signalStrength?: number;
  /** Duktape only: which build of the engine (see engines/duktape-build.ts). */
  duktapeConfig?: 'debian' | 'low-memory';
  /** Reboots allowed before the device stays off (a crash loop in a broken test). */
  maxBoots?: number;
}

export interface BootInfo {
  slot: number;
  trial: boolean;
  reason: number;
  version: number;
}

export class EngineDevice {
  engine: EngineHost | null = null;
  relay: Relay | null = null;
  readonly boots: BootInfo[] = [];
  readonly crashes: string[] = [];
  readonly journal: FlashJournal;
  private flash: FlashState;
  private chain: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(readonly name: EngineName, initial: FlashState, private readonly o: EngineDeviceOptions) {
    this.flash = cloneFlash(initial);
    this.journal = new FlashJournal(initial);
  }

  /** Powers on. Resolves once the image's program has been evaluated. */
  start(reason = RESET_REASONS.code('power_down')): Promise<void> {
    this.stopped = false;
    return this.enqueue(() => this.boot(reason));
  }

  /** Powers off (no more callbacks); the flash stays as it is. */
  stop(): Promise<void> {
    this.stopped = true;
    return this.enqueue(() => this.shutdown());
  }

  /** The flash now, as the last engine left it. */
  state(): FlashState {
    return cloneFlash(this.engine ? this.engine.flash() : this.flash);
  }

  private enqueue(step: () => Promise<void>): Promise<void> {
    this.chain = this.chain.then(step, step);
    return this.chain;
  }

  private async shutdown(): Promise<void> {
    const engine = this.engine;
    this.engine = null;
    await this.relay?.close();
    this.relay = null;
    if (engine) {
      this.flash = engine.flash();
      await engine.close();
    }
  }

  private rebootSoon(reason: number): void {
    void this.enqueue(async () => {
      await this.shutdown();
      if (!this.stopped) await this.boot(reason);
    });
  }

  private async boot(reason: number): Promise<void> {
    if (this.boots.length >= (this.o.maxBoots ?? 20)) return;
    const choice = bootSelect(decodeBoot(this.flash.boot));
    if (choice.write) {
      const record = encodeBoot(choice.write);
      this.flash.boot = record;
      this.journal.record({ kind: 'boot', record });
    }
    let source: string;
    try {
      const slot = this.flash.slots[choice.slot];
      const header = parseImageHeader(slot.subarray(0, IMAGE_HEADER_SIZE));
      const body = slot.subarray(IMAGE_HEADER_SIZE, IMAGE_HEADER_SIZE + header.bodySize);
      if (IMAGE_HEADER_SIZE + header.bodySize > slot.length || !createHash('sha256').update(body).digest().equals(header.bodySha256))
        throw new Error('slot ' + choice.slot + ' holds no intact image');
      source = Buffer.from(body).toString('utf8');
      this.boots.push({ slot: choice.slot, trial: choice.trial, reason, version: header.version });
    } catch (e) {
      this.crashes.push(String(e));
      this.boots.push({ slot: choice.slot, trial: choice.trial, reason, version: -1 });
      return this.rebootSoon(RESET_REASONS.code('panic'));
    }
    const engine = await startEngine(this.name, {
      flash: this.flash,
      resetReason: reason,
      heapCap: this.o.heapCap,
      duktapeConfig: this.o.duktapeConfig,
      battery: this.o.battery,
      signalStrength: this.o.signalStrength,
      onFlashOp: (op) => this.journal.record(op),
      onReset: (r) => this.rebootSoon(r),
      onUncaught: (m) => {
        // The agent guards the app; anything escaping to the host is a crash.
        this.crashes.push(m);
        this.rebootSoon(RESET_REASONS.code('panic'));
      },
    });
    this.engine = engine;
    this.relay = startRelay(engine, { host: '127.0.0.1', port: this.o.port }, { realTime: true });
    try {
      await engine.run(source, 'slot' + choice.slot + '.js');
    } catch (e) {
      this.crashes.push(String(e));
      this.rebootSoon(RESET_REASONS.code('panic'));
    }
  }
}
