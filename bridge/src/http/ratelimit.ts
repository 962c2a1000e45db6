/**
 * The HTTP API's limits, with Particle's figures: requests per window (per
 * access token, or per client address for requests without a valid one:
 * app.ts picks the key), token requests per window with a lock-out after
 * repeated failed logins, event stream opens per window and streams open at
 * once (per address). Fixed windows; the table is swept each window and
 * capped, so a flood of keys cannot grow it without bound.
 */
import { LoginLockout, type LockoutLimit } from '../identity/lockout.js';
import { Window } from '../fixed-window.js';

export interface RateLimits {
  /** Any request: at most `limit` per `windowMs` per key (a valid token, else the address). */
  requests: { limit: number; windowMs: number };
  /** POST /oauth/token. */
  token: { limit: number; windowMs: number };
  /**
   * Wrong passwords for one username from one address (a good login for that username clears
   * them): they lock that username's password logins from that address for `lockMs`.
   */
  tokenFailures: LockoutLimit;
  /**
   * Wrong passwords from one address, whatever the usernames: they lock every password login from
   * it. No login clears these, so one valid account cannot reset them between guesses at others.
   */
  tokenFailuresPerAddress: LockoutLimit;
  /** Event streams: opens per window, and open at once. */
  streams: { opens: number; windowMs: number; concurrent: number };
  /**
   * Refusals of requests with no valid credentials written to the audit log, per address and
   * window; past it they are answered all the same, unaudited (an anonymous flood filled the disk
   * at 300 MB in 6 s through a year-long log).
   */
  unauthenticatedAudits: { limit: number; windowMs: number };
}

/** Particle's published limits. */
export const defaultRateLimits: RateLimits = {
  requests: { limit: 10000, windowMs: 5 * 60000 },
  token: { limit: 100, windowMs: 5 * 60000 },
  tokenFailures: { limit: 10, lockMs: 30 * 60000 },
  tokenFailuresPerAddress: { limit: 100, lockMs: 30 * 60000 },
  streams: { opens: 100, windowMs: 5 * 60000, concurrent: 100 },
  unauthenticatedAudits: { limit: 100, windowMs: 5 * 60000 },
};

export class RateLimiter {
  private readonly requests: Window;
  private readonly token: Window;
  private readonly opens: Window;
  private readonly audits: Window;
  private readonly logins: LoginLockout;
  private readonly open = new Map<string, number>();

  constructor(
    private readonly limits: RateLimits,
    private readonly now: () => number = Date.now,
  ) {
    const t = now();
    this.requests = new Window(limits.requests.windowMs, t);
    this.token = new Window(limits.token.windowMs, t);
    this.opens = new Window(limits.streams.windowMs, t);
    this.audits = new Window(limits.unauthenticatedAudits.windowMs, t);
    this.logins = new LoginLockout({ perName: limits.tokenFailures, perAddress: limits.tokenFailuresPerAddress }, now);
  }

  /** Counts a request of `key` (a token or an address); null when it may go on, otherwise the seconds to wait. */
  request(key: string): number | null {
    const r = this.requests.take(key, this.limits.requests.limit, this.now());
    return r.ok ? null : r.retryAfter;
  }

  /** Counts an audited refusal of a request without valid credentials from `address`; false once past the window's budget. */
  unauthenticatedAudit(address: string): boolean {
    return this.audits.take(address, this.limits.unauthenticatedAudits.limit, this.now()).ok;
  }

  /** Counts a token request from `address`; null when it may go on, otherwise the seconds to wait. */
  tokenRequest(address: string): number | null {
    const r = this.token.take(address, this.limits.token.limit, this.now());
    return r.ok ? null : r.retryAfter;
  }

  /**
   * A password login for `username` from `address`, as the token endpoint and the consent page run it:
   * the seconds to wait while the username there, or the address, is locked out (logins still being
   * checked count as failures would); otherwise the function that counts its outcome, to be called
   * once whatever happens: true a good password (clears that username's count there, not the
   * address's), false a wrong one (counted for both locks), null no verdict. Usernames are one in
   * any case and with any spaces around them, as the store looks them up (' owner' was a lock of
   * its own).
   */
  passwordLogin(address: string, username: string): number | ((good: boolean | null) => void) {
    return this.logins.attempt(address, username.trim().toLowerCase());
  }

  /** A password login around `verify` (the store's check: the user, or null for a wrong password): the seconds to wait, or what it found, counted. */
  async passwordCheck<T>(address: string, username: string, verify: () => Promise<T | null>): Promise<{ wait: number } | { found: T | null }> {
    const login = this.passwordLogin(address, username);
    if (typeof login === 'number') return { wait: login };
    let found: T | null;
    try {
      found = await verify();
    } catch (e) {
      login(null);
      throw e;
    }
    login(found !== null);
    return { found };
  }

  /** A stream opening: null and a `close` to call when it ends, or the seconds to wait. */
  stream(address: string): { close(): void } | number {
    const open = this.open.get(address) ?? 0;
    if (open >= this.limits.streams.concurrent) return 60;
    const r = this.opens.take(address, this.limits.streams.opens, this.now());
    if (!r.ok) return r.retryAfter;
    this.open.set(address, open + 1);
    let closed = false;
    return {
      close: () => {
        if (closed) return;
        closed = true;
        const n = (this.open.get(address) ?? 1) - 1;
        if (n <= 0) this.open.delete(address);
        else this.open.set(address, n);
      },
    };
  }
}
