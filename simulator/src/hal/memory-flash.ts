/**
 * Flash for simulated devices: two slots and a boot record in memory,
 * optionally mirrored to a directory so a restarted simulator finds them
 * again. Every persisted operation is reported, in order, to `onOp`, which is
 * how power-cut tests stop "after the k-th write".
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
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

/**
 * In a mirror directory: the SHA-256 of the factory image slot 0 holds, while
 * nothing has written slot 0 since. A later run with another factory image
 * (the fleet's scenario changed) puts the new one there; an image an update
 * wrote is the device's own and stays.
 */
const FACTORY_MARK = 'factory.sha256';

/** Factory slots' SHA-256, computed once per shared slot (10,000 devices open the same one). */
const factoryHashes = new WeakMap<Uint8Array, string>();
function factoryHash(slot: Uint8Array): string {
  let h = factoryHashes.get(slot);
  if (h === undefined) factoryHashes.set(slot, (h = createHash('sha256').update(slot).digest('hex')));
  return h;
}

/** One slot of erased flash per size, shared by every device that has not written it. */
const blanks = new Map<number, Uint8Array>();
function blank(slotSize: number): Uint8Array {
  let b = blanks.get(slotSize);
  if (!b) blanks.set(slotSize, (b = new Uint8Array(slotSize).fill(0xff)));
  return b;
}

export class MemoryFlash implements HalFlash {
  /**
   * Slots whose bytes are borrowed from a shared buffer (a blank slot, or the
   * factory image every device of a fleet starts with): copied on first write,
   * so 10,000 devices hold one copy until an update reaches them.
   */
  private readonly borrowed: [boolean, boolean] = [false, false];

  /** The mirror directory says slot 0 is an untouched factory image (FACTORY_MARK), until it is written. */
  private factoryMarked = false;

  constructor(
    readonly state: FlashState,
    private readonly onOp?: (op: FlashOp) => void,
    /** Mirror directory: slot0.bin, slot1.bin, boot.bin, each replaced atomically. */
    private readonly dir?: string,
  ) {}

  /**
   * A fresh device of a fleet: `factory` (a whole slot, shared and never
   * written) in slot 0 and a blank slot 1, both borrowed until written.
   */
  static factory(factory: Uint8Array, onOp?: (op: FlashOp) => void): MemoryFlash {
    const f = new MemoryFlash({ slotSize: factory.length, slots: [factory, blank(factory.length)], boot: null }, onOp);
    f.borrowed[0] = f.borrowed[1] = true;
    return f;
  }

  /** A slot-sized copy of an image padded with erased bytes, to share as a factory slot. */
  static factorySlot(image: Uint8Array, slotSize: number): Uint8Array {
    if (image.length > slotSize) throw new RangeError('flash: an image of ' + image.length + ' bytes does not fit a slot of ' + slotSize);
    const slot = new Uint8Array(slotSize).fill(0xff);
    slot.set(image);
    return slot;
  }

  /**
   * Flash mirrored to `dir`. A slot with no file there yet holds `factory`
   * (slot 0; written to the directory at once, so the next run boots the same
   * image) or is blank; both stay borrowed until written. Slot 0 also takes
   * `factory` when it still holds another factory image that nothing wrote over.
   */
  static open(dir: string, slotSize: number, onOp?: (op: FlashOp) => void, factory?: Uint8Array): MemoryFlash {
    mkdirSync(dir, { recursive: true });
    const slots: Uint8Array[] = [];
    const borrowed: [boolean, boolean] = [false, false];
    const fresh: number[] = [];
    const mark = join(dir, FACTORY_MARK);
    const marked = existsSync(mark) ? readFileSync(mark, 'utf8') : null;
    for (const slot of [0, 1] as const) {
      const f = join(dir, 'slot' + slot + '.bin');
      const oldFactory = slot === 0 && factory !== undefined && marked !== null && marked !== factoryHash(factory);
      if (existsSync(f) && !oldFactory) {
        slots.push(new Uint8Array(slotSize).fill(0xff));
        slots[slot].set(readFileSync(f).subarray(0, slotSize));
      } else {
        borrowed[slot] = true;
        if (slot === 0 && factory) {
          if (factory.length !== slotSize) throw new RangeError('flash: the factory slot is ' + factory.length + ' bytes, not ' + slotSize);
          slots.push(factory);
          fresh.push(0);
        } else slots.push(blank(slotSize));
      }
    }
    const b = join(dir, 'boot.bin');
    const flash = new MemoryFlash({ slotSize, slots: slots as [Uint8Array, Uint8Array], boot: existsSync(b) ? new Uint8Array(readFileSync(b)) : null }, onOp, dir);
    flash.borrowed[0] = borrowed[0];
    flash.borrowed[1] = borrowed[1];
    for (const slot of fresh) flash.mirror({ kind: 'write', slot, offset: 0, bytes: new Uint8Array(0) });
    if (fresh.includes(0)) writeFileSync(mark, factoryHash(factory as Uint8Array));
    flash.factoryMarked = fresh.includes(0) || marked !== null;
    return flash;
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
    if (op.kind !== 'boot' && this.borrowed[op.slot]) {
      this.borrowed[op.slot] = false;
      this.state.slots[op.slot] = op.kind === 'erase' ? new Uint8Array(this.state.slotSize) : this.state.slots[op.slot].slice();
    }
    applyFlashOp(this.state, op);
    if (this.dir) this.mirror(op);
    this.onOp?.(op);
  }

  /**
   * The boot record and erases replace their file atomically; a chunk is
   * written in place at its offset, as flash is, so an OTA of many chunks
   * does not rewrite the slot file for each.
   */
  private mirror(op: FlashOp): void {
    const dir = this.dir as string;
    if (op.kind !== 'boot' && op.slot === 0 && this.factoryMarked) {
      // Slot 0 is written (an update): its image is the device's own now, whatever factory image a later run brings.
      rmSync(join(dir, FACTORY_MARK), { force: true });
      this.factoryMarked = false;
    }
    const path = join(dir, op.kind === 'boot' ? 'boot.bin' : 'slot' + op.slot + '.bin');
    if (op.kind === 'write' && op.bytes.length > 0 && existsSync(path)) {
      const fd = openSync(path, 'r+');
      try {
        // The file ends at its last written byte: a gap before this chunk is erased flash (0xff), not the zeros a sparse write leaves.
        const size = fstatSync(fd).size;
        if (size < op.offset) writeSync(fd, new Uint8Array(op.offset - size).fill(0xff), 0, op.offset - size, size);
        writeSync(fd, op.bytes, 0, op.bytes.length, op.offset);
      } finally {
        closeSync(fd);
      }
      return;
    }
    writeFileSync(path + '.tmp', op.kind === 'boot' ? (this.state.boot as Uint8Array) : erasedTailCut(this.state.slots[op.slot]));
    renameSync(path + '.tmp', path);
  }
}

/** The slot without its erased (0xff) tail: reading a short file back fills the rest with 0xff. */
function erasedTailCut(slot: Uint8Array): Uint8Array {
  let end = slot.length;
  while (end > 0 && slot[end - 1] === 0xff) end--;
  return slot.subarray(0, end);
}
