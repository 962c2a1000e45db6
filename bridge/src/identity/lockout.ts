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

/** The two levels of a login lock-out. */
export interface LoginLockoutLimits {
  /** Failures of one name (a username, a client id) at one address: someone guessing one account's secret, or a device with a wrong one. */
  perName: LockoutLimit;
  /** Failures from one address, whatever the names (someone trying many); no success clears this count. */
  perAddress: LockoutLimit;
}

/**
 * Logins locked out at two levels, keyed by address so nobody elsewhere can
 * lock an account out: a name at an address (its own success clears it) and
 * the whole address (nothing clears it). The HTTP password logins and MQTT
 * CONNECT both count through one of these.
 */
export class LoginLockout {
  private readonly byAddress: Lockout;
  private readonly byName: Lockout;
  constructor(limits: LoginLockoutLimits, now?: () => number) {
    this.byAddress = new Lockout(limits.perAddress, now);
    this.byName = new Lockout(limits.perName, now);
  }

  /** Seconds `name` at `address` (or the whole address) stays locked out, or null when it may try. */
  locked(address: string, name: string): number | null {
    return this.byAddress.locked(address) ?? this.byName.locked(address + ' ' + name);
  }

  /** Counts a failure at both levels: which lock it started, if any. */
  failed(address: string, name: string): 'address' | 'name' | null {
    const named = this.byName.failed(address + ' ' + name);
    return this.byAddress.failed(address) ? 'address' : named ? 'name' : null;
  }

  /** A success speaks for its own name at that address, never for the whole address. */
  succeeded(address: string, name: string): void {
    this.byName.clear(address + ' ' + name);
  }
}
