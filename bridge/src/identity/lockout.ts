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
  /**
   * Per key: attempts begun and not yet ended (a secret being hashed), and
   * when the last began. They count as the failures they may turn out to be,
   * so attempts sent at once cannot all be checked before the first failure
   * is counted. One never ended stops counting after `lockMs`.
   */
  private readonly inFlight = new Map<string, { n: number; at: number }>();

  constructor(
    private readonly limits: LockoutLimit,
    private readonly now: () => number = Date.now,
  ) {}

  /** Seconds `key` stays locked, or null when it may try (1 while the attempts being checked could lock it). */
  locked(key: string): number | null {
    const f = this.failures.get(key);
    const now = this.now();
    if (f && f.lockedUntil > now) return Math.ceil((f.lockedUntil - now) / 1000);
    const p = this.inFlight.get(key);
    if (!p || now - p.at >= this.limits.lockMs) return null;
    const counted = f && now - f.since < this.limits.lockMs ? f.n : 0;
    return counted + p.n >= this.limits.limit ? 1 : null;
  }

  /** Whether `key` is locked by failures counted, not only held back while attempts are being checked. */
  lockedOut(key: string): boolean {
    const f = this.failures.get(key);
    return f !== undefined && f.lockedUntil > this.now();
  }

  /** An attempt of `key` is being checked; `end` when it is decided (then `failed` or `clear`, as it turned out). */
  begin(key: string): void {
    const now = this.now();
    const p = this.inFlight.get(key);
    if (p && now - p.at < this.limits.lockMs) {
      p.n++;
      p.at = now;
      return;
    }
    if (this.inFlight.size >= MAX_KEYS && !p) this.inFlight.clear();
    this.inFlight.set(key, { n: 1, at: now });
  }

  end(key: string): void {
    const p = this.inFlight.get(key);
    if (p && --p.n <= 0) this.inFlight.delete(key);
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

  /** Whether a refusal of attempt() is a lock-out by failures (else: attempts still being checked hold it back). */
  lockedOut(address: string, name: string): boolean {
    return this.byAddress.lockedOut(address) || this.byName.lockedOut(address + ' ' + name);
  }

  /**
   * A login of `name` from `address` about to be checked: the seconds to wait
   * while the name there, or the address, is locked out (logins being checked
   * count as failures would); otherwise the function that ends it, once:
   * true a good secret (clears the name's count there, never the address's),
   * false a wrong one (counted at both levels; says which lock it started),
   * null neither (the check did not finish: nothing counted).
   */
  attempt(address: string, name: string): number | ((good: boolean | null) => 'address' | 'name' | null) {
    const named = address + ' ' + name;
    const wait = this.byAddress.locked(address) ?? this.byName.locked(named);
    if (wait !== null) return wait;
    this.byAddress.begin(address);
    this.byName.begin(named);
    let ended = false;
    return (good) => {
      if (ended) return null;
      ended = true;
      this.byAddress.end(address);
      this.byName.end(named);
      if (good === true) this.byName.clear(named);
      if (good !== false) return null;
      const byName = this.byName.failed(named);
      return this.byAddress.failed(address) ? 'address' : byName ? 'name' : null;
    };
  }
}
