/**
 * Flash for simulated devices: two slots and a boot record in memory,
 * optionally mirrored to a directory so a restarted simulator finds them
 * again. Every persisted operation is reported, in order, to `onOp`, which is
 * how power-cut tests stop "after the k-th write".
 */
import { mkdirSync, readFileSync, writeFileSync, existsSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import type { HalFlash } from '@flotilla/firmware/hal';

export type FlashOp =
  | { kind: 'write'; slot: number; offset: number; bytes: Uint8Array }
  | { kind: 'erase'; slot: number }
  | { kind: 'boot'; record: Uint8Array };

export interface FlashState {
  slotSize: number;
  slots: [Uint8Array, Uint8Array];
  boot: Uint8Array | null;
}

export function emptyFlash(slotSize: number): FlashState {
  return { slotSize, slots: [new Uint8Array(slotSize).fill(0xff), new Uint8Array(slotSize).fill(0xff)], boot: null };
}

export function cloneFlash(s: FlashState): FlashState {
  return { slotSize: s.slotSize, slots: [s.slots[0].slice(), s.slots[1].slice()], boot: s.boot ? s.boot.slice() : null };
}

/** Applies one operation to a state, as the device's flash would. */
export function applyFlashOp(s: FlashState, op: FlashOp): void {
  if (op.kind === 'write') s.slots[op.slot].set(op.bytes, op.offset);
  else if (op.kind === 'erase') s.slots[op.slot].fill(0xff);
  else s.boot = op.record.slice();
}

/** A copy of an operation that shares no bytes with it. */
export function cloneOp(op: FlashOp): FlashOp {
  if (op.kind === 'write') return { kind: 'write', slot: op.slot, offset: op.offset, bytes: op.bytes.slice() };
  if (op.kind === 'erase') return { kind: 'erase', slot: op.slot };
  return { kind: 'boot', record: op.record.slice() };
}

export class MemoryFlash implements HalFlash {
  constructor(
    readonly state: FlashState,
    private readonly onOp?: (op: FlashOp) => void,
    /** Mirror directory: slot0.bin, slot1.bin, boot.bin, each replaced atomically. */
    private readonly dir?: string,
  ) {}

  static open(dir: string, slotSize: number, onOp?: (op: FlashOp) => void): MemoryFlash {
    mkdirSync(dir, { recursive: true });
    const state = emptyFlash(slotSize);
    for (const slot of [0, 1] as const) {
      const f = join(dir, 'slot' + slot + '.bin');
      if (existsSync(f)) state.slots[slot].set(readFileSync(f).subarray(0, slotSize));
    }
    const b = join(dir, 'boot.bin');
    if (existsSync(b)) state.boot = new Uint8Array(readFileSync(b));
    return new MemoryFlash(state, onOp, dir);
  }

  slotSize(): number {
    return this.state.slotSize;
  }

  read(slot: number, offset: number, length: number): Uint8Array {
    this.check(slot, offset, length);
    return this.state.slots[slot].slice(offset, offset + length);
  }

  write(slot: number, offset: number, bytes: Uint8Array): void {
    this.check(slot, offset, bytes.length);
    this.apply({ kind: 'write', slot, offset, bytes: Uint8Array.from(bytes) });
  }

  erase(slot: number): void {
    this.check(slot, 0, 0);
    this.apply({ kind: 'erase', slot });
  }

  readBoot(): Uint8Array | null {
    return this.state.boot ? this.state.boot.slice() : null;
  }

  writeBoot(record: Uint8Array): void {
    this.apply({ kind: 'boot', record: Uint8Array.from(record) });
  }

  private check(slot: number, offset: number, length: number): void {
    if ((slot !== 0 && slot !== 1) || offset < 0 || length < 0 || offset + length > this.state.slotSize)
      throw new RangeError('flash: slot ' + slot + ' [' + offset + ', ' + (offset + length) + ') is outside the slots');
  }

  private apply(op: FlashOp): void {
    applyFlashOp(this.state, op);
    if (this.dir) this.mirror(op);
    this.onOp?.(op);
  }

  private mirror(op: FlashOp): void {
    const dir = this.dir as string;
    const [file, bytes] = op.kind === 'boot' ? ['boot.bin', this.state.boot as Uint8Array] : ['slot' + op.slot + '.bin', this.state.slots[op.slot]];
    writeFileSync(join(dir, file + '.tmp'), bytes);
    renameSync(join(dir, file + '.tmp'), join(dir, file));
  }
}
