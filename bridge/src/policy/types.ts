/**
 * Who is asking, about what: the inputs of the pure policy (decide.ts). Hooks
 * and routes load these from the store and call decide(); decide does no I/O.
 */
import type { Action, Role } from '@flotilla/protocol';

/** A team member's roles, as loaded for one request. */
export interface Memberships {
  /** Org id → the member's role on that org's team ('owner' for the org's Owner). */
  orgs: { readonly [orgId: string]: Role };
  /** Product id → the member's role on that product's own team. */
  products: { readonly [productId: string]: Role };
}

export type Actor =
  /** No credentials. */
  | { kind: 'anonymous' }
  /** Credentials that were presented but do not hold: refused whatever they ask. */
  /** 'client': OAuth client credentials that are wrong (answered as OAuth's invalid_client). */
  /** 'misplaced': an access_token in the query string or body, which this API does not take (Particle deprecated both). */
  /** 'password': a username and password in Basic auth that do not match, where a route takes them. */
  | { kind: 'invalid'; reason: 'expired' | 'revoked' | 'unknown' | 'client' | 'misplaced' | 'password' }
  /** An operator (a person) with a valid token. */
  | { kind: 'user'; userId: string; memberships: Memberships }
  /** A product's end user: reaches only the devices they own. */
  | { kind: 'customer'; customerId: string; productId: string }
  /** A program acting for an org or a product, limited to its scopes. */
  | { kind: 'apiUser'; apiUserId: string; scope: { orgId: string } | { productId: string }; scopes: readonly Action[] }
  /** A device, authenticated by secret or certificate. */
  | { kind: 'device'; deviceId: string; productId: string };

/** A product, with what decides who holds a role on it. */
export interface ProductRef {
  productId: string;
  /** Set for a product in a user's personal space. */
  ownerUserId: string | null;
  /** Set for a product owned by an organization. */
  orgId: string | null;
  /** The Owner of that org, when orgId is set. */
  orgOwnerUserId: string | null;
}

export type Resource =
  /** The product itself, or anything of it that is not one device (team, firmware, groups, SIMs, ...). */
  | { kind: 'product'; product: ProductRef }
  /** One device of a product; `customerId` is the customer that claimed it, if any. */
  | { kind: 'device'; deviceId: string; product: ProductRef; customerId: string | null }
  /** An organization (its team, its API users, creating products in it). */
  | { kind: 'org'; orgId: string; ownerUserId: string }
  /**
   * Every product of an org at once (the org's usage and billing account):
   * takes product actions, decided by the role the org's team gives on each of
   * its products (ORG_ROLE_CASCADE; the org's Owner is their Owner).
   */
  | { kind: 'orgProducts'; orgId: string; ownerUserId: string };

export type Decision =
  | { allow: true; role: Role | 'customer' | 'apiUser' | 'device'; reason: string }
  /**
   * `status`: 401 for anonymous or invalid credentials; 404 when the actor has
   * no role at all on the resource (its existence does not leak); 403 when it
   * has a role that does not allow the action.
   */
  | { allow: false; status: 401 | 403 | 404; reason: string };
