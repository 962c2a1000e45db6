/**
 * Failed logins per key (an address, or an address and a name): `limit` of
 * them within `lockMs` lock the key out for `lockMs`; older failures are
 * forgotten. Only the caller knows whether a success speaks for the key: a
 * device's own good CONNECT does for its address and client id, but nobody's
 * success speaks for a whole address (an attacker holding one valid login
 * could otherwise clear the address's count between guesses), so `clear` is
 * called for the first kind only. Used by the HTTP password logins (per
 * address, and per address and username) and by MQTT CONNECT (per address,
 * and per address and client id).
 * The table is capped, so a flood of keys cannot grow it without bound.
 */
export interface LockoutLimit {
  /** Failures within `lockMs` that lock the key. */
  limit: number;
  /** How long a lock lasts, ms; also how long a failure counts. */
  lockMs: number;
}

/** Keys tracked at most; past it the table starts again (every count forgotten, as a window would). */
const MAX_KEYS = 100000;

export class Lockout {
  /** Per key: failures counted since `since`, and the end of its lock. */
  private readonly failures = new Map<string, { n: number; since: number; lockedUntil: number }>();

  constructor(
    private readonly limits: LockoutLimit,
    private readonly now: () => number = Date.now,
  ) {}

  /** Seconds `key` stays locked, or null when it may try. */
  locked(key: string): number | null {
    const f = this.failures.get(key);
    const now = this.now();
    return f && f.lockedUntil > now ? Math.ceil((f.lockedUntil - now) / 1000) : null;
  }

  /** Counts a failure of `key`; true when it locked the key. */
  failed(key: string): boolean {
    const now = this.now();
    const f = this.failures.get(key) ?? { n: 0, since: now, lockedUntil: 0 };
    if (now - f.since >= this.limits.lockMs) {
      f.n = 0;
      f.since = now;
    }
    f.n++;
    const locks = f.n >= this.limits.limit;
    if (locks) {
      f.lockedUntil = now + this.limits.lockMs;
      f.n = 0;
      f.since = now;
    }
    if (this.failures.size >= MAX_KEYS && !this.failures.has(key)) this.failures.clear();
    this.failures.set(key, f);
    return locks;
  }

  /** Forgets `key`'s failures (a locked key never gets this far: `locked` is asked first). */
  clear(key: string): void {
    this.failures.delete(key);
  }
}
