/**
 * The OTA receiver: begin → the offset already held (resume) → chunks written
 * to the slot that is not running, each persisted and acknowledged → SHA-256
 * of the slot read back, and the image header checked → the slot marked for
 * one trial boot → reset. Duplicates are acknowledged and ignored; a chunk
 * past the held offset (out of order, or one missing before it) is not
 * written, and the ack of the held offset makes the cloud resend from there.
 * Out-of-range or oversize chunks and a bad SHA-256 end the job without
 * touching the running image.
 */
import { IMAGE_HEADER_SIZE, parseImageHeader, RESET_REASON } from '@flotilla/protocol/core';
import type { OtaAbort, OtaBegin, OtaChunk, OtaFailure, OtaState } from '@flotilla/protocol/core';
import type { Hal } from './hal.js';
import { BootRecord, copy, NO_SLOT, OtaJobRecord, pending, runningSlot } from './boot.js';
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
  readonly boot: BootRecord;
  persist(r: BootRecord): void;
  sendOta(job: number, state: OtaState, offset: number, reason: OtaFailure | null, done: ((err: Error | null) => void) | null): void;
  /** The app's onOta handler; false from a 'begin' refuses the update. */
  notifyOta(e: OtaEvent): boolean;
  reportOta(message: string): void;
  restart(reason: number): void;
  connected(): boolean;
}

/**
 * Seconds a verified image waits for the cloud to acknowledge "verified"
 * while the link is up: the MQTT client's ack timeout. On a loaded link the
 * statuses ahead of it drain slowly; resetting sooner loses them.
 */
const RESET_GRACE_S = 10;

export class OtaReceiver {
  /** A verified image waits for the reset; nothing else is accepted. */
  private finishing_ = false;
  private graceLeft_ = 0;
  private readonly restartB_: () => void;
  private readonly waitB_: () => void;

  constructor(private readonly host_: OtaHost) {
    this.restartB_ = host_.restart.bind(host_, RESET_REASON.update);
    this.waitB_ = this.wait_.bind(this);
  }

  /** Once a second after "verified": reset when the link is down or the grace is spent (its acknowledgement resets at once). */
  private wait_(): void {
    if (!this.host_.connected() || --this.graceLeft_ <= 0) this.host_.restart(RESET_REASON.update);
    else this.host_.hal.clock.setTimer(this.waitB_, 1000);
  }

  /** Ends a job: forgets it, tells the cloud why, and the app. */
  private fail_(job: number, offset: number, reason: OtaFailure, version: number, size: number): void {
    const r = this.host_.boot;
    if (r.job && r.job.job === job) {
      const next = copy(r);
      next.job = null;
      this.host_.persist(next);
    }
    this.host_.sendOta(job, 'failed', offset, reason, null);
    this.host_.notifyOta({ type: 'failed', version: version, size: size, offset: offset, reason: reason });
  }

  begin(m: OtaBegin): void {
    const r = this.host_.boot;
    const j = r.job;
    const refuse: OtaFailure | '' =
      this.finishing_ || r.trial !== NO_SLOT ? 'busy'
      : m.product !== this.host_.product ? 'wrong_product'
      : m.version === this.host_.firmware ? 'bad_version'
      : m.size > this.host_.hal.flash.slotSize() ? 'too_large' : '';
    if (refuse) return this.fail_(m.job, 0, refuse, m.version, m.size);
    if (j && j.job === m.job && j.size === m.size && j.version === m.version && j.chunkSize === m.chunkSize && same(j.sha256, m.sha256)) {
      // The same job again (link drop, or power cut): resume from what is persisted;
      // all of it held already (power lost before the check): check it now.
      if (j.offset === j.size) return this.verify_(r, j);
      return this.host_.sendOta(m.job, 'offset', j.offset, null, null);
    }
    if (!this.host_.notifyOta({ type: 'begin', version: m.version, size: m.size, offset: 0 })) return this.fail_(m.job, 0, 'busy', m.version, m.size);
    const next = copy(r);
    next.job = { job: m.job, version: m.version, size: m.size, chunkSize: m.chunkSize, offset: 0, sha256: m.sha256 };
    if (!this.flash_('erase', 1 - runningSlot(r), 0, null)) return this.fail_(m.job, 0, 'flash_error', m.version, m.size);
    this.host_.persist(next);
    this.host_.sendOta(m.job, 'offset', 0, null, null);
  }

  chunk(m: OtaChunk): void {
    const r = this.host_.boot;
    const j = r.job;
    if (!j || j.job !== m.job || this.finishing_) return; // a stale job's chunk
    const end = m.offset + m.data.length;
    if (m.data.length > j.chunkSize || end > j.size) return this.fail_(j.job, j.offset, 'bad_chunk', j.version, j.size);
    // Duplicate (behind) or out of order (ahead): keep what we hold, say where we are.
    if (m.offset !== j.offset) return this.host_.sendOta(j.job, 'offset', j.offset, null, null);
    if (!this.flash_('write', 1 - runningSlot(r), m.offset, m.data)) return this.fail_(j.job, j.offset, 'flash_error', j.version, j.size);
    const next = copy(r);
    (next.job as OtaJobRecord).offset = end;
    this.host_.persist(next);
    if (end === j.size) return this.verify_(next, next.job as OtaJobRecord);
    this.host_.sendOta(j.job, 'offset', end, null, null);
    this.host_.notifyOta({ type: 'progress', version: j.version, size: j.size, offset: end });
  }

  abort(m: OtaAbort): void {
    const j = this.host_.boot.job;
    if (j && j.job === m.job) return this.fail_(m.job, j.offset, 'aborted', j.version, j.size);
    this.host_.sendOta(m.job, 'failed', 0, 'aborted', null);
  }

  /** A HAL flash call; false (and an error report) when it throws. */
  private flash_(op: 'erase' | 'write' | 'verify', slot: number, offset: number, data: Uint8Array | null): boolean {
    try {
      const f = this.host_.hal.flash;
      if (op === 'erase') f.erase(slot);
      else if (data) f.write(slot, offset, data);
      else {
        // Hash the slot as flash holds it, 256 bytes at a time.
        sha256Start();
        for (let at = 0; at < offset; at += 256) sha256Update(f.read(slot, at, Math.min(256, offset - at)));
      }
      return true;
    } catch (e) {
      this.host_.reportOta(op + ': ' + String((e as Error).message || e));
      return false;
    }
  }

  private verify_(r: BootRecord, j: OtaJobRecord): void {
    const slot = 1 - runningSlot(r);
    if (!this.flash_('verify', slot, j.size, null)) return this.fail_(j.job, j.offset, 'flash_error', j.version, j.size);
    if (!same(sha256Finish(), j.sha256)) return this.fail_(j.job, j.size, 'bad_sha', j.version, j.size);
    // The bytes are what the cloud meant to send; are they an image for this device?
    let failure: OtaFailure | '' = 'bad_chunk';
    try {
      const h = parseImageHeader(this.host_.hal.flash.read(slot, 0, Math.min(IMAGE_HEADER_SIZE, j.size)));
      failure = h.product !== this.host_.product ? 'wrong_product' : h.version !== j.version ? 'bad_version' : h.bodySize + IMAGE_HEADER_SIZE !== j.size ? 'bad_chunk' : '';
    } catch (e) {
      // not an image: bad_chunk
    }
    if (failure) return this.fail_(j.job, j.size, failure, j.version, j.size);
    this.finishing_ = true;
    this.host_.persist(pending(r, slot, j.version));
    // Reset once the cloud has the status; without it, as soon as the link is
    // down, or after RESET_GRACE_S. The image is marked already: a power cut now boots it.
    this.host_.sendOta(j.job, 'verified', j.size, null, this.restartB_);
    this.host_.notifyOta({ type: 'done', version: j.version, size: j.size, offset: j.size });
    this.graceLeft_ = RESET_GRACE_S;
    this.host_.hal.clock.setTimer(this.waitB_, 1000);
  }
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
