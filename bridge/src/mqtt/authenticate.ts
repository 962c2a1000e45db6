/**
 * CONNECT: who is this? A device (client id = username = its device id, the
 * device secret as password) or an operator app (any other client id, an
 * access token as password). The answer becomes the client's Session.
 */
import { decode, isClientId, isDeviceId, topics } from '@flotilla/protocol';
import { actorId, actorOf, sameSubject, tokenProblem } from '../identity/actor.js';
import { sha256Hex } from '../store/secrets.js';
import { LoginLockout, type LockoutLimit } from '../identity/lockout.js';
import type { Actor } from '../policy/types.js';
import type { BrokerContext } from './context.js';
import type { Session } from './session.js';
import { bucket, deviceBudget, resume } from './budget.js';

/** CONNACK return codes of MQTT 3.1.1. */
export const BAD_CREDENTIALS = 4;
export const NOT_AUTHORIZED = 5;
/** MQTT 3.1.1's "server unavailable": try again later. */
export const SERVER_UNAVAILABLE = 3;
export const BAD_CLIENT_ID = 2;

export type AuthResult = { ok: true; session: Session } | { ok: false; code: 2 | 3 | 4 | 5; reason: string };

/** The will in a CONNECT, as aedes hands it over. */
export interface Will {
  topic: string;
  payload: Buffer | Uint8Array;
  retain?: boolean;
  qos?: number;
}

/** Whose audit budget an app session spends: its account's (a user, an API user, a customer), whatever token it holds. */
export function auditKey(a: Actor): string {
  return a.kind + ':' + actorId(a);
}

export async function authenticate(
  ctx: BrokerContext, clientId: string, username: string | undefined, password: Buffer | undefined, will: Will | null,
): Promise<AuthResult> {
  // MQTT-3.1.2-22: no password flag without the user name flag (the parser lets it through).
  if (username === undefined && password !== undefined) return { ok: false, code: BAD_CREDENTIALS, reason: 'a password without a user name' };
  const secret = password ? password.toString('utf8') : '';
  if (isDeviceId(clientId)) {
    // A device: the client id is its identity, and the username must say the same.
    if (username !== clientId) return { ok: false, code: BAD_CREDENTIALS, reason: 'username must equal the device id' };
    if (will && !deviceWillOk(clientId, will)) return { ok: false, code: NOT_AUTHORIZED, reason: 'a device\'s will must be a status message on its own status topic' };
    if (!secret || !(await ctx.store.verifyDeviceSecret(clientId, secret))) return { ok: false, code: BAD_CREDENTIALS, reason: 'wrong device secret' };
    const access = await ctx.store.deviceAccess(clientId);
    if (!access) return { ok: false, code: NOT_AUTHORIZED, reason: 'device has no product' };
    const actor: Actor = { kind: 'device', deviceId: clientId, productId: access.product.productId };
    const now = Date.now();
    let budget = ctx.budgets.get(clientId);
    if (budget) resume(budget, ctx.rates.events, now);
    else ctx.budgets.set(clientId, (budget = deviceBudget(ctx.rates, now)));
    return {
      ok: true,
      session: { kind: 'device', deviceId: clientId, ref: access, actor, inbox: topics.filter.deviceInbox(clientId), budget, service: { since: ctx.now().getTime(), events: 0, roundTrip: null } },
    };
  }
  // An operator app: a token, and a client id that can be a topic level (replies go to app/<clientId>/reply).
  if (!isClientId(clientId)) return { ok: false, code: BAD_CLIENT_ID, reason: 'client id must be 1 to 64 of [A-Za-z0-9_-]' };
  if (!secret) return { ok: false, code: BAD_CREDENTIALS, reason: 'an access token is required as the password' };
  if (will) return { ok: false, code: NOT_AUTHORIZED, reason: 'apps may not set a will' };
  const token = await ctx.store.findToken(secret);
  const problem = tokenProblem(token, ctx.now());
  if (problem || !token) return { ok: false, code: BAD_CREDENTIALS, reason: (problem ?? 'unknown') + ' token' };
  const actor = await actorOf(ctx.store, token.subject);
  if (!actor) return { ok: false, code: BAD_CREDENTIALS, reason: 'the token\'s ' + token.subject.kind + ' is gone' };
  const key = auditKey(actor);
  let audits = ctx.auditBudgets.get(key);
  if (!audits) ctx.auditBudgets.set(key, (audits = bucket(ctx.rates.audits, Date.now())));
  return {
    ok: true,
    session: {
      kind: 'operator', clientId, tokenHash: sha256Hex(secret), expiresAt: token.expiresAt ? token.expiresAt.getTime() : null, actor,
      watch: new Map(), packets: bucket(ctx.rates.packets, Date.now()), audits, filters: new Set(),
    },
  };
}


/** Failed CONNECTs (wrong secret or token) that, within a lock's time, lock a client out for that long. */
export interface ConnectFailureLimits {
  /** From one address with one client id: a device with a wrong secret, or someone guessing one device's. */
  perClient: LockoutLimit;
  /** From one address whatever the client id (someone trying many); no success clears this count. */
  perAddress: LockoutLimit;
}

/**
 * Locks out an address, or a client id at an address, after failed CONNECTs:
 * a locked one is refused at once, before any secret is hashed, so
 * guessing is slow and a flood of wrong secrets cannot spend the bridge's CPU
 * on hashing. Keyed by address too, so nobody elsewhere can lock a device out.
 * The counting is the logins' (identity/lockout.ts); this says it in MQTT's terms.
 */
export class ConnectLockout {
  private readonly logins: LoginLockout;
  constructor(limits: ConnectFailureLimits, now?: () => number) {
    this.logins = new LoginLockout({ perName: limits.perClient, perAddress: limits.perAddress }, now);
  }

  /**
   * A CONNECT about to be checked: the refusal while `address` (or `clientId`
   * there) is locked out, CONNECTs still being checked counted as the
   * failures they may be; otherwise the function that counts its outcome
   * (only wrong credentials fail it; null: no outcome) and says the lock it
   * started, if any, in words.
   */
  begin(address: string, clientId: string): AuthResult | ((r: AuthResult | null) => string | null) {
    if (!address) return () => null;
    const attempt = this.logins.attempt(address, clientId);
    if (typeof attempt === 'number') {
      if (this.logins.lockedOut(address, clientId)) return { ok: false, code: NOT_AUTHORIZED, reason: 'too many failed connects from ' + address + '; retry in ' + attempt + ' s' };
      // Held back while other CONNECTs from there are checked (they count as the failures they may be), not
      // locked out by failures: not "not authorized" (a fleet behind one NAT reconnecting at once), but try again.
      return { ok: false, code: SERVER_UNAVAILABLE, reason: 'too many connects from ' + address + ' being checked at once; retry in ' + attempt + ' s' };
    }
    return (r) => {
      const locks = attempt(r === null || (!r.ok && r.code !== BAD_CREDENTIALS) ? null : r.ok);
      return locks === 'address' ? address + ' locked out' : locks === 'name' ? clientId + ' locked out at ' + address : null;
    };
  }
}

/**
 * No persistent sessions (clean session unset): aedes would keep, for a client
 * gone, every message its subscriptions match (whether or not it may see them)
 * and its unfinished QoS 2 packets, in memory and without bound.
 */
export const PERSISTENT_SESSION: AuthResult = { ok: false, code: NOT_AUTHORIZED, reason: 'this broker keeps no sessions: connect with clean session set' };

/**
 * A new session against the one connected now under its client id: an app's
 * client id is its reply address (app/<clientId>/reply), so another account
 * may not take it over; the same account may (a reconnect).
 */
export function takeOver(held: Session | undefined, next: AuthResult): AuthResult {
  if (!next.ok || next.session.kind !== 'operator' || !held) return next;
  return held.kind === 'operator' && sameSubject(held.actor, next.session.actor) ? next : { ok: false, code: BAD_CLIENT_ID, reason: 'client id in use by another account' };
}

/** dev/<id>/status carrying { online: false }, not retained: the only will a device may leave. */
function deviceWillOk(deviceId: string, will: Will): boolean {
  // QoS 3 is no QoS (MQTT-3.1.2-14); the parser lets it through.
  if (will.retain || (will.qos ?? 0) > 2 || will.topic !== topics.device.status(deviceId)) return false;
  try {
    const m = decode(will.payload);
    return m.kind === 'status' && !m.online;
  } catch {
    return false;
  }
}
