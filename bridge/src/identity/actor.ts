/**
 * Who a token stands for, as the policy reads it. One answer for MQTT and
 * HTTP: a user with their memberships, a product's customer, or an API user
 * with its scope and actions; null when the token's subject no longer exists.
 */
import type { Action } from '@flotilla/protocol';
import type { Actor, Memberships } from '../policy/types.js';
import type { AuditEntry, TokenSubject } from '../store/store.js';

/** What actorOf reads from the store. */
export interface ActorStore {
  memberships(userId: string): Promise<Memberships>;
  getCustomer(id: string): Promise<{ productId: number } | null>;
  getApiUser(id: string): Promise<{ orgId: string | null; productId: number | null; scopes: string[] } | null>;
}

/** Why a token found (or not) by its value is no credential at `now`, or null when it is live. One rule for HTTP and MQTT. */
export function tokenProblem(t: { revokedAt: Date | null; expiresAt: Date | null } | null, now: Date): 'unknown' | 'revoked' | 'expired' | null {
  if (!t) return 'unknown';
  if (t.revokedAt) return 'revoked';
  return t.expiresAt && t.expiresAt <= now ? 'expired' : null;
}

export async function actorOf(store: ActorStore, subject: TokenSubject): Promise<Actor | null> {
  switch (subject.kind) {
    case 'user':
      return { kind: 'user', userId: subject.id, memberships: await store.memberships(subject.id) };
    case 'customer': {
      const c = await store.getCustomer(subject.id);
      return c ? { kind: 'customer', customerId: subject.id, productId: String(c.productId) } : null;
    }
    case 'apiUser': {
      const u = await store.getApiUser(subject.id);
      if (!u) return null;
      return { kind: 'apiUser', apiUserId: subject.id, scope: u.orgId ? { orgId: u.orgId } : { productId: String(u.productId) }, scopes: u.scopes as Action[] };
    }
  }
}

/** actorOf's inverse: the token subject an actor stands for; null for a device, anonymous or invalid credentials. */
export function subjectOf(a: Actor): TokenSubject | null {
  switch (a.kind) {
    case 'user':
      return { kind: 'user', id: a.userId };
    case 'customer':
      return { kind: 'customer', id: a.customerId };
    case 'apiUser':
      return { kind: 'apiUser', id: a.apiUserId };
    default:
      return null;
  }
}

/** Whether two actors stand for the same token subject (the same user, customer or API user). */
export function sameSubject(a: Actor, b: Actor): boolean {
  const x = subjectOf(a);
  const y = subjectOf(b);
  return x !== null && y !== null && x.kind === y.kind && x.id === y.id;
}

/** The id of whoever an actor is, for the audit log ('' for anonymous or invalid credentials). */
export function actorId(a: Actor): string {
  switch (a.kind) {
    case 'user':
      return a.userId;
    case 'customer':
      return a.customerId;
    case 'apiUser':
      return a.apiUserId;
    case 'device':
      return a.deviceId;
    default:
      return '';
  }
}

/** A decision as the audit log keeps it: the policy's, or a refusal before the policy (status 400, 401). */
export type Verdict = { allow: true; reason: string } | { allow: false; status: number; reason: string };

/** An actor's verdict on a resource as an audit log entry: one shape for the HTTP routes and the MQTT hooks. */
export function auditEntry(actor: Actor, action: string, resourceKind: string, resourceId: string, v: Verdict, at: Date): AuditEntry {
  return { at, actorKind: actor.kind, actorId: actorId(actor), action, resourceKind, resourceId, allowed: v.allow, status: v.allow ? 200 : v.status, reason: v.reason };
}
