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
 * answers to what was sent once are timed). A cellular link with a 5 s round
 * trip was sent begin and the window again every 5 s, five times the image.
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

export class Transfer {
  /** Everything before this has been sent at least once since the last resend point. */
  private sentUpTo = 0;
  /** The device's last reported offset; -1 before its first answer. */
  private held = -1;
  /** Offsets the window was resent from since the last begin (once per offset). */
  private readonly resent = new Set<number>();
  private silences = 0;
  /** The highest offset the device has reported in this transfer: only going past it counts as being heard. */
  private best = -1;
  private timer: NodeJS.Timeout | null = null;
  /** Smoothed round trip, ms; null before the first sample. */
  private srtt: number | null = null;
  /** When the begin now unanswered went out (the first of a series: a later one's answer may be the first's); 0 when answered. */
  private beganAt = 0;
  /** End offset of each chunk sent once since the last resend point → when: the acknowledgement of that offset times the link. */
  private readonly sentAt = new Map<number, number>();
  /** The furthest byte ever sent in this transfer. */
  private maxSent = 0;
  /** Until then a repeated offset is taken as an answer to what was sent twice, not as a loss. */
  private quietUntil = 0;
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
    } else if (o <= this.held && o < this.sentUpTo && !this.resent.has(o) && performance.now() >= this.quietUntil) {
      // The same offset again with more sent, or an offset behind it: a chunk was lost (or refused out of order).
      // Not within a round trip of the last resend or begin: those answer what was sent twice, and taken
      // as losses each would send the window again (on a slow link, every window went twice).
      this.resent.add(o);
      this.sentUpTo = o;
      this.quiet();
      // Karn's rule: what is sent again is not timed (its acknowledgement may be the first sending's).
      this.sentAt.clear();
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
    const sample = now - at;
    this.srtt = this.srtt === null ? sample : 0.875 * this.srtt + 0.125 * sample;
  }

  /** After sending something again: its answers, and the earlier sending's, come within about a round trip. */
  private quiet(): void {
    this.quietUntil = performance.now() + 1.5 * (this.srtt ?? this.o.ackTimeoutMs);
  }

  /** How long to wait for the device: ackTimeoutMs, or four round trips of a slower link (at most 2 minutes). */
  private get waitMs(): number {
    return Math.min(120_000, Math.max(this.o.ackTimeoutMs, Math.ceil(4 * (this.srtt ?? 0))));
  }

  private sendBegin(): void {
    const m = this.image;
    if (this.beganAt === 0) this.beganAt = performance.now();
    this.sentAt.clear();
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
      // Begin again: the device answers with the offset it holds, and sending resumes there.
      this.held = -1;
      this.resent.clear();
      this.sendBegin();
      this.quiet();
    }, this.waitMs);
    this.timer.unref();
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
