/**
 * The OTA receiver: begin → the offset already held (resume) → chunks written
 * to the slot that is not running, each persisted and acknowledged → SHA-256
 * of the slot read back → the slot marked for one trial boot → reset.
 * Duplicates are acknowledged and ignored; a chunk past the held offset
 * (out of order, or one missing before it) is not written, and the ack of the
 * held offset makes the cloud resend from there. Out-of-range or oversize
 * chunks and a bad SHA-256 end the job without touching the running image.
 */
import { IMAGE_HEADER_SIZE, parseImageHeader } from '@flotilla/protocol/core';
import type { ImageHeader, OtaAbort, OtaBegin, OtaChunk, OtaFailure, OtaStatus } from '@flotilla/protocol/core';
import type { Hal } from './hal.js';
import { BootRecord, copy, NO_SLOT, pending, runningSlot } from './boot.js';
import { sha256Finish, sha256Start, sha256Update } from './sha256.js';

export interface OtaEvent {
  type: 'begin' | 'progress' | 'done' | 'failed';
  version: number;
  size: number;
  offset: number;
  reason?: OtaFailure;
}

/** What the receiver needs from the agent. */
export interface OtaHost {
  readonly hal: Hal;
  readonly product: number;
  readonly firmware: number;
  record(): BootRecord;
  /** Persists the boot record (atomic) and makes it current. */
  persist(r: BootRecord): void;
  /** Sends a status; `done` runs once it is acknowledged or given up. */
  send(s: OtaStatus, done: ((err: Error | null) => void) | null): void;
  /** The app's onOta handler; false from a 'begin' refuses the update. */
  notify(e: OtaEvent): boolean;
  /** A HAL failure worth an error report. */
  report(message: string): void;
  /** The verified image is marked; reset into it. */
  restart(): void;
}

/** Bytes read back per step while hashing the received image. */
const VERIFY_STEP = 256;

export class OtaReceiver {
  /** A verified image waits for the reset; nothing else is accepted. */
  private finishing = false;
  private readonly restartB: () => void;

  constructor(private readonly host: OtaHost) {
    this.restartB = this.restart.bind(this);
  }

  private status(state: OtaStatus['state'], job: number, offset: number, reason: OtaFailure | null): void {
    this.host.send({ job: job, state: state, offset: offset, reason: reason }, state === 'verified' ? this.restartB : null);
  }

  private fail(job: number, offset: number, reason: OtaFailure, version: number, size: number): void {
    const r = this.host.record();
    if (r.job && r.job.job === job) {
      const next = copy(r);
      next.job = null;
      this.host.persist(next);
    }
    this.status('failed', job, offset, reason);
    this.host.notify({ type: 'failed', version: version, size: size, offset: offset, reason: reason });
  }

  begin(m: OtaBegin): void {
    const r = this.host.record();
    const hal = this.host.hal;
    if (this.finishing || r.trial !== NO_SLOT) return this.fail(m.job, 0, 'busy', m.version, m.size);
    if (m.product !== this.host.product) return this.fail(m.job, 0, 'wrong_product', m.version, m.size);
    if (m.version === this.host.firmware) return this.fail(m.job, 0, 'bad_version', m.version, m.size);
    if (m.size > hal.flash.slotSize()) return this.fail(m.job, 0, 'too_large', m.version, m.size);
    const j = r.job;
    if (j && j.job === m.job && j.size === m.size && j.version === m.version && sameBytes(j.sha256, m.sha256) && j.chunkSize === m.chunkSize) {
      // The same job again (link drop, or power cut): resume from what is persisted.
      // All of it held already (power lost before the check): check it now.
      if (j.offset === j.size) return this.verify(r);
      this.status('offset', m.job, j.offset, null);
      return;
    }
    if (!this.host.notify({ type: 'begin', version: m.version, size: m.size, offset: 0 })) return this.fail(m.job, 0, 'busy', m.version, m.size);
    const next = copy(r);
    next.job = { job: m.job, version: m.version, size: m.size, chunkSize: m.chunkSize, offset: 0, sha256: m.sha256 };
    try {
      hal.flash.erase(1 - runningSlot(r));
    } catch (e) {
      this.host.report('erase: ' + String((e as Error).message || e));
      return this.fail(m.job, 0, 'flash_error', m.version, m.size);
    }
    this.host.persist(next);
    this.status('offset', m.job, 0, null);
  }

  chunk(m: OtaChunk): void {
    const r = this.host.record();
    const j = r.job;
    if (!j || j.job !== m.job || this.finishing) return; // a stale job's chunk
    const len = m.data.length;
    if (len > j.chunkSize || m.offset + len > j.size) return this.fail(j.job, j.offset, 'bad_chunk', j.version, j.size);
    if (m.offset !== j.offset) {
      // Duplicate (behind) or out of order (ahead): keep what we hold, say where we are.
      this.status('offset', j.job, j.offset, null);
      return;
    }
    try {
      this.host.hal.flash.write(1 - runningSlot(r), m.offset, m.data);
    } catch (e) {
      this.host.report('write: ' + String((e as Error).message || e));
      return this.fail(j.job, j.offset, 'flash_error', j.version, j.size);
    }
    const next = copy(r);
    (next.job as NonNullable<BootRecord['job']>).offset = m.offset + len;
    this.host.persist(next);
    if (m.offset + len < j.size) {
      this.status('offset', j.job, m.offset + len, null);
      this.host.notify({ type: 'progress', version: j.version, size: j.size, offset: m.offset + len });
      return;
    }
    this.verify(next);
  }

  abort(m: OtaAbort): void {
    const r = this.host.record();
    if (r.job && r.job.job === m.job) return this.fail(m.job, r.job.offset, 'aborted', r.job.version, r.job.size);
    this.status('failed', m.job, 0, 'aborted');
  }

  private verify(r: BootRecord): void {
    const j = r.job as NonNullable<BootRecord['job']>;
    const slot = 1 - runningSlot(r);
    let digest: Uint8Array;
    try {
      sha256Start();
      for (let at = 0; at < j.size; at += VERIFY_STEP) sha256Update(this.host.hal.flash.read(slot, at, Math.min(VERIFY_STEP, j.size - at)));
      digest = sha256Finish();
    } catch (e) {
      this.host.report('read: ' + String((e as Error).message || e));
      return this.fail(j.job, j.offset, 'flash_error', j.version, j.size);
    }
    if (!sameBytes(digest, j.sha256)) return this.fail(j.job, j.size, 'bad_sha', j.version, j.size);
    // The bytes are what the cloud meant to send; are they an image for this device?
    let header: ImageHeader;
    try {
      header = parseImageHeader(this.host.hal.flash.read(slot, 0, Math.min(IMAGE_HEADER_SIZE, j.size)));
    } catch (e) {
      return this.fail(j.job, j.size, 'bad_chunk', j.version, j.size);
    }
    if (header.product !== this.host.product) return this.fail(j.job, j.size, 'wrong_product', j.version, j.size);
    if (header.version !== j.version) return this.fail(j.job, j.size, 'bad_version', j.version, j.size);
    if (header.bodySize + IMAGE_HEADER_SIZE !== j.size) return this.fail(j.job, j.size, 'bad_chunk', j.version, j.size);
    this.finishing = true;
    this.host.persist(pending(r, slot, j.version));
    this.status('verified', j.job, j.size, null);
    this.host.notify({ type: 'done', version: j.version, size: j.size, offset: j.size });
    // Reset once the cloud has the status, or after 2 s without it.
    this.host.hal.clock.setTimer(this.restartB, 2000);
  }

  private restart(): void {
    if (this.finishing) {
      this.finishing = false;
      this.host.restart();
    }
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
