/**
 * Failed logins in a row per key (an address, or an address and a name): the
 * limit-th locks the key out for a while; a success clears its count. Used
 * by the HTTP token endpoint (per address) and by MQTT CONNECT (per address,
 * and per address and client id). The table is capped, so a flood of keys
 * cannot grow it without bound.
 */
export interface LockoutLimit {
  /** Failures in a row that lock the key. */
  limit: number;
  /** How long a lock lasts, ms. */
  lockMs: number;
}

/** Keys tracked at most; past it the table starts again (every count forgotten, as a window would). */
const MAX_KEYS = 100000;

export class Lockout {
  private readonly failures = new Map<string, { n: number; lockedUntil: number }>();

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

  /** Records an attempt of `key`; true when this failure locked it. */
  outcome(key: string, ok: boolean): boolean {
    if (ok) return this.failures.delete(key), false;
    const f = this.failures.get(key) ?? { n: 0, lockedUntil: 0 };
    f.n++;
    const locks = f.n >= this.limits.limit;
    if (locks) {
      f.lockedUntil = this.now() + this.limits.lockMs;
      f.n = 0;
    }
    if (this.failures.size >= MAX_KEYS && !this.failures.has(key)) this.failures.clear();
    this.failures.set(key, f);
    return locks;
  }
}
