/**
 * The boot record and the decisions around it, A/B with a trial, as MCUboot
 * and Mender do it:
 *
 *   - the agent writes a new image into the slot that is not running, checks
 *     its SHA-256, then marks it as the trial slot with one boot attempt;
 *   - the bootloader (the host: `bootSelect`) boots a trial slot while it has
 *     attempts left, taking one each time; with none left it goes back to the
 *     active slot and records the rollback;
 *   - the new image confirms itself (`confirmed`) once it reaches the cloud,
 *     which makes the trial slot the active one.
 *
 * The running slot is never written, and every change is one atomic record
 * write, so a power cut at any point leaves a complete image to boot.
 * The record also holds the OTA job in progress, so a transfer resumes after
 * a power cut from the offset last persisted.
 */

export const NO_SLOT = 255;
const MAGIC = 0x46; // 'F'
const FORMAT = 1;
const SIZE = 72;

export interface OtaJobRecord {
  job: number;
  version: number;
  size: number;
  chunkSize: number;
  /** Bytes written and persisted, contiguous from the start of the slot. */
  offset: number;
  sha256: Uint8Array;
}

export interface BootRecord {
  /** The slot known good. */
  active: number;
  /** Slot of an image on trial, or NO_SLOT. */
  trial: number;
  trialVersion: number;
  /** Boots the trial image still has before the bootloader rolls back. */
  tries: number;
  /** Version that failed its trial, not yet reported to the cloud; -1 when none. */
  rolledBackFrom: number;
  /** The transfer in progress into the inactive slot, or null. */
  job: OtaJobRecord | null;
}

export function freshRecord(): BootRecord {
  return { active: 0, trial: NO_SLOT, trialVersion: 0, tries: 0, rolledBackFrom: -1, job: null };
}

/** The slot the bootloader will run (or is running) given this record. */
export function runningSlot(r: BootRecord): number {
  return r.trial !== NO_SLOT ? r.trial : r.active;
}

export function encodeBoot(r: BootRecord): Uint8Array {
  const b = new Uint8Array(SIZE);
  const d = new DataView(b.buffer);
  b[0] = MAGIC;
  b[1] = FORMAT;
  b[2] = r.active;
  b[3] = r.trial;
  d.setUint32(4, r.trialVersion);
  b[8] = r.tries;
  d.setUint32(9, r.rolledBackFrom < 0 ? 0xffffffff : r.rolledBackFrom);
  const j = r.job;
  b[13] = j ? 1 : 0;
  if (j) {
    d.setUint32(14, j.job);
    d.setUint32(18, j.version);
    d.setUint32(22, j.size);
    d.setUint32(26, j.chunkSize);
    d.setUint32(30, j.offset);
    b.set(j.sha256, 34);
  }
  return b;
}

/** Reads a record; a missing or unreadable one is a fresh device's (slot 0). */
export function decodeBoot(b: Uint8Array | null): BootRecord {
  if (!b || b.length < SIZE || b[0] !== MAGIC || b[1] !== FORMAT) return freshRecord();
  const d = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const rb = d.getUint32(9);
  const r: BootRecord = {
    active: b[2] === 1 ? 1 : 0,
    trial: b[3] === 0 || b[3] === 1 ? b[3] : NO_SLOT,
    trialVersion: d.getUint32(4),
    tries: b[8],
    rolledBackFrom: rb === 0xffffffff ? -1 : rb,
    job: null,
  };
  if (b[13] === 1) {
    const sha = new Uint8Array(32);
    sha.set(b.subarray(34, 66));
    r.job = { job: d.getUint32(14), version: d.getUint32(18), size: d.getUint32(22), chunkSize: d.getUint32(26), offset: d.getUint32(30), sha256: sha };
  }
  return r;
}

export interface BootChoice {
  slot: number;
  trial: boolean;
  /** The record to persist before booting, or null when it does not change. */
  write: BootRecord | null;
}

/** The bootloader: which slot to boot, and the record to persist first. */
export function bootSelect(r: BootRecord): BootChoice {
  if (r.trial === NO_SLOT) return { slot: r.active, trial: false, write: null };
  if (r.tries > 0) {
    const next = copy(r);
    next.tries = r.tries - 1;
    return { slot: r.trial, trial: true, write: next };
  }
  // The trial image used its attempts without confirming: back to the known-good slot.
  const back = copy(r);
  back.rolledBackFrom = r.trialVersion;
  back.trial = NO_SLOT;
  back.trialVersion = 0;
  return { slot: r.active, trial: false, write: back };
}

/** The record after a verified image in `slot` is marked for one trial boot. */
export function pending(r: BootRecord, slot: number, version: number): BootRecord {
  const next = copy(r);
  next.trial = slot;
  next.trialVersion = version;
  next.tries = 1;
  next.job = null;
  return next;
}

/** The record after the running trial image reached the cloud. */
export function confirmed(r: BootRecord): BootRecord {
  const next = copy(r);
  if (r.trial !== NO_SLOT) next.active = r.trial;
  next.trial = NO_SLOT;
  next.trialVersion = 0;
  next.tries = 0;
  return next;
}

export function copy(r: BootRecord): BootRecord {
  return {
    active: r.active,
    trial: r.trial,
    trialVersion: r.trialVersion,
    tries: r.tries,
    rolledBackFrom: r.rolledBackFrom,
    job: r.job
      ? { job: r.job.job, version: r.job.version, size: r.job.size, chunkSize: r.job.chunkSize, offset: r.job.offset, sha256: r.job.sha256 }
      : null,
  };
}
