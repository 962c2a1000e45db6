/**
 * One image to one connected device, over the protocol: begin → the device
 * says which offset it holds (a resume starts there) → chunks, `window` ahead
 * of the last acknowledged offset → verified or failed. A device that repeats
 * an offset behind what was sent, or goes back, lost a chunk: the window is
 * resent from it, once per offset and begin (a device that keeps going back is
 * left to go silent and be sent begin again: what it sends costs the bridge
 * a window at most once per offset). A device that takes no chunk for
 * `ackTimeoutMs` (silent, or answering without going past the highest offset
 * it reported) is sent begin again (it answers with its offset); after
 * `maxSilences` in a row the transfer ends as silent. Chunks are read (from memory or disk) as they are sent.
 *
 * The wait is the link's: `ackTimeoutMs`, or four smoothed round trips when
 * the device's answers take longer (TCP's estimator, with Karn's rule: only
 * answers to what was sent once are timed), doubled on each timeout until an
 * answer times the link again; and after a begin sent again, the answers
 * still to come of what went before it are not taken as losses. A cellular
 * link with a 5 s round trip was sent begin and the window again every 5 s,
 * five times the image, each late answer sending the next window again.
 */
import type { Messages, OtaFailure } from '@flotilla/protocol';

export type TransferOutcome = { kind: 'verified' } | { kind: 'failed'; reason: OtaFailure } | { kind: 'silent' } | { kind: 'error'; message: string };

export interface TransferImage {
  job: number;
  product: number;
  version: number;
  size: number;
  sha256: Uint8Array;
}

export interface TransferIo {
  begin(m: Messages['otaBegin']): void;
  chunk(m: Messages['otaChunk']): void;
  /** At once when the image is in memory. */
  read(offset: number, length: number): Uint8Array | Promise<Uint8Array>;
  /** The device holds `offset` bytes (progress; called on every acknowledgement). */
  progress(offset: number): void;
  /** Called once. */
  end(outcome: TransferOutcome): void;
}

export interface TransferOptions {
  chunkSize: number;
  /** Chunks in flight ahead of the device's offset. */
  window: number;
  ackTimeoutMs: number;
  maxSilences: number;
}

/** The longest the bridge waits for a device's answer, however slow its link looks. */
const MAX_WAIT_MS = 120_000;

export class Transfer {
  /** Everything before this has been sent at least once since the last resend point. */
  private sentUpTo = 0;
  /** The device's last reported offset; -1 before its first answer. */
  private held = -1;
  /** Offsets the window was resent from since the last begin (once per offset). */
  private readonly resent = new Set<number>();
  private silences = 0;
  /** Timeouts since the link was last timed: each doubles the wait (TCP's backoff), until an answer times it. */
  private backoff = 0;
  /** The highest offset the device has reported in this transfer: only going past it counts as being heard. */
  private best = -1;
  private timer: NodeJS.Timeout | null = null;
  /** Smoothed round trip, ms; null before the first sample. */
  private srtt: number | null = null;
  /** When the transfer's first begin went out, until its answer times the link; 0 once answered, or sent again (Karn). */
  private beganAt = 0;
  /** Frames sent and not answered yet (the device answers each frame once; a lost one never). */
  private outstanding = 0;
  /**
   * Answers still to come, after a begin sent again, of what was sent before it: each says an offset the
   * transfer has moved on from, and taken as a loss it would send the window again, whose own answers
   * would then do the same, window after window (a slow link was sent every window twice).
   */
  private spare = 0;
  /** End offset of each chunk sent once since the last resend point → when: the acknowledgement of that offset times the link. */
  private readonly sentAt = new Map<number, number>();
  /** The furthest byte ever sent in this transfer. */
  private maxSent = 0;
  private filling = false;
  private ended = false;

  constructor(
    readonly image: TransferImage,
    private readonly io: TransferIo,
    private readonly o: TransferOptions,
  ) {}

  get offset(): number {
    return Math.max(0, this.held);
  }

  start(): void {
    this.sendBegin();
  }

  /** A status from the device about this job. */
  status(s: Messages['otaStatus']): void {
    if (this.ended || s.job !== this.image.job) return;
    this.outstanding = Math.max(0, this.outstanding - 1);
    if (s.state === 'offset') this.timeAnswer(s.offset);
    if (s.state === 'offset' && s.offset > this.best) {
      // Progress: the device is heard. A status that moves nothing (an answer to begin at the same offset,
      // a repeated offset) leaves the clock running, or a device that never takes a chunk would be sent begin for ever.
      this.best = s.offset;
      this.silences = 0;
      this.arm();
    }
    // Verified means the whole image is held and checked: any other offset is a device in error.
    if (s.state === 'verified') return this.end(s.offset === this.image.size ? { kind: 'verified' } : { kind: 'failed', reason: 'bad_chunk' });
    if (s.state === 'failed') return this.end({ kind: 'failed', reason: s.reason ?? 'aborted' });
    const o = s.offset;
    if (o > this.image.size) return this.end({ kind: 'failed', reason: 'bad_chunk' });
    if (this.held < 0 || o > this.sentUpTo) {
      // First answer (a resume point): send from what it holds.
      this.sentUpTo = o;
    } else if (o <= this.held && o < this.sentUpTo) {
      if (this.spare > 0) {
        // An answer to what was sent before the last begin: nothing lost.
        this.spare--;
      } else if (!this.resent.has(o)) {
        // The same offset again with more sent, or an offset behind it: a chunk was lost (or refused out of order).
        this.resent.add(o);
        this.sentUpTo = o;
        // Karn's rule: what is sent again is not timed (its acknowledgement may be the first sending's).
        this.sentAt.clear();
      }
    }
    if (o !== this.held) this.io.progress(o);
    this.held = o;
    void this.fill();
  }

  /** The device went away: stop without an outcome (a reconnect starts a new transfer that resumes). */
  stop(): void {
    this.ended = true;
    this.disarm();
  }

  /** Ends the transfer with an outcome the bridge decided (abort, error). */
  end(outcome: TransferOutcome): void {
    if (this.ended) return;
    this.ended = true;
    this.disarm();
    this.io.end(outcome);
  }

  /** A round-trip sample from an answer: to the begin awaited, or to the chunk ending at `offset`. */
  private timeAnswer(offset: number): void {
    const now = performance.now();
    const at = this.beganAt > 0 ? this.beganAt : this.sentAt.get(offset);
    this.beganAt = 0;
    for (const end of this.sentAt.keys()) if (end <= offset) this.sentAt.delete(end);
    if (at === undefined) return;
    const sample = Math.min(MAX_WAIT_MS, now - at);
    this.srtt = this.srtt === null ? sample : 0.875 * this.srtt + 0.125 * sample;
    this.backoff = 0;
  }

  /**
   * How long to wait for the device: ackTimeoutMs, or four round trips of a slower link; doubled for each
   * timeout since the link was last timed (TCP's backoff: a link slower than the wait is otherwise never
   * timed, each answer coming after the next begin); at most 2 minutes.
   */
  private get waitMs(): number {
    return Math.min(MAX_WAIT_MS, Math.max(this.o.ackTimeoutMs, Math.ceil(4 * (this.srtt ?? 0))) * 2 ** this.backoff);
  }

  private sendBegin(again = false): void {
    const m = this.image;
    // Only the first begin is timed: the answer to a begin sent again may be an earlier one's (Karn's rule).
    // (Chunks sent once before stay timed: their answers still say how long the link takes.)
    this.beganAt = again ? 0 : performance.now();
    // What is still unanswered may yet be (a slow link, not a dead one): at most a window and a begin of it.
    if (again) this.spare = Math.min(this.outstanding, this.o.window + 1);
    this.outstanding++;
    this.io.begin({ job: m.job, product: m.product, version: m.version, size: m.size, sha256: m.sha256, chunkSize: this.o.chunkSize });
    this.arm();
  }

  private async fill(): Promise<void> {
    if (this.filling) return;
    this.filling = true;
    try {
      for (;;) {
        if (this.ended) return;
        const limit = Math.min(this.image.size, this.held + this.o.window * this.o.chunkSize);
        if (this.sentUpTo >= limit) return;
        const at = this.sentUpTo;
        const length = Math.min(this.o.chunkSize, this.image.size - at);
        const piece = this.io.read(at, length);
        const data = piece instanceof Uint8Array ? piece : await piece;
        // A status may have moved the send point while reading: send only what is still wanted.
        if (this.ended || this.sentUpTo !== at) continue;
        this.io.chunk({ job: this.image.job, offset: at, data });
        this.sentUpTo = at + length;
        this.outstanding++;
        // Only a first sending is timed (Karn's rule): its acknowledgement cannot be an earlier one's.
        if (at >= this.maxSent) this.sentAt.set(at + length, performance.now());
        this.maxSent = Math.max(this.maxSent, at + length);
      }
    } catch (e) {
      this.end({ kind: 'error', message: (e as Error).message });
    } finally {
      this.filling = false;
    }
  }

  private arm(): void {
    this.disarm();
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.ended) return;
      if (++this.silences > this.o.maxSilences) return this.end({ kind: 'silent' });
      this.backoff = Math.min(this.backoff + 1, 10);
      // Begin again: the device answers with the offset it holds, and sending resumes there.
      this.held = -1;
      this.resent.clear();
      this.sendBegin(true);
    }, this.waitMs);
    this.timer.unref();
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
