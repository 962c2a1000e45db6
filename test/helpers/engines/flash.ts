/** Flash state values and the journal that mirrors a device's persisted writes. */
import { applyFlashOp, cloneFlash, cloneOp, emptyFlash } from '@flotilla/simulator';
import type { FlashOp, FlashState } from './types.js';

// One definition of flash state and its operations: the simulator's.
export { applyFlashOp, cloneFlash, cloneOp, emptyFlash };

/** Checks a preload fits what a device could hold; throws otherwise. */
export function checkFlash(f: FlashState, bootMax: number): void {
  if (!Number.isInteger(f.slotSize) || f.slotSize < 0) throw new RangeError(`bad slotSize ${f.slotSize}`);
  for (const s of f.slots) if (s.length !== f.slotSize) throw new RangeError('a slot is not slotSize bytes long');
  if (f.boot && f.boot.length > bootMax) throw new RangeError(`boot record over ${bootMax} bytes`);
}

/**
 * The initial state plus every op in order: the current mirror, and the state
 * after any prefix of ops (what survives a power cut after the k-th write).
 */
export class FlashJournal {
  readonly ops: FlashOp[] = [];
  private readonly initial: FlashState;
  private readonly mirror: FlashState;

  constructor(initial: FlashState) {
    this.initial = cloneFlash(initial);
    this.mirror = cloneFlash(initial);
  }

  /** Records an op; returns its 1-based index. */
  record(op: FlashOp): number {
    const own = cloneOp(op);
    this.ops.push(own);
    applyFlashOp(this.mirror, own);
    return this.ops.length;
  }

  current(): FlashState {
    return cloneFlash(this.mirror);
  }

  after(k: number): FlashState {
    if (!Number.isInteger(k) || k < 0 || k > this.ops.length) throw new RangeError(`flashAfter(${k}): ${this.ops.length} ops recorded`);
    const f = cloneFlash(this.initial);
    for (let i = 0; i < k; i++) applyFlashOp(f, this.ops[i]!);
    return f;
  }
}
