/**
 * Counts per key in fixed windows: at most `limit` per `windowMs`, all keys
 * starting over together when a window ends. The table is cleared each window
 * and capped, so a flood of keys (addresses) cannot grow it without bound.
 */

/** Keys tracked at most; past it, the window's entries go. */
const MAX_KEYS = 100000;

export class Window {
  private counts = new Map<string, number>();
  private started: number;
  constructor(
    private readonly windowMs: number,
    now: number,
  ) {
    this.started = now;
  }

  /** Counts one for `key`; false when that passes `limit`. Seconds until the window ends in `retryAfter`. */
  take(key: string, limit: number, now: number): { ok: boolean; retryAfter: number } {
    if (now - this.started >= this.windowMs) {
      this.counts.clear();
      this.started = now;
    }
    const n = (this.counts.get(key) ?? 0) + 1;
    if (this.counts.size >= MAX_KEYS && !this.counts.has(key)) this.counts.clear();
    this.counts.set(key, n);
    return { ok: n <= limit, retryAfter: Math.ceil((this.windowMs - (now - this.started)) / 1000) };
  }
}
