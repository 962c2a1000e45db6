/**
 * The bridge's authorization policy: who may take which action on which
 * resource. Pure and synchronous: no I/O, no clock, no mutable state; the same
 * inputs always give the same Decision, and the inputs are only read. It runs
 * on every MQTT publish, so the hot path allocates nothing but the returned
 * Decision and its reason string.
 *
 * The role × action matrix is protocol's data (PRODUCT_ACTIONS, ORG_ACTIONS,
 * ORG_ROLE_CASCADE, roleAllows); nothing here restates it.
 *
 * Order of the checks, for every actor:
 *   1. anonymous, invalid or malformed credentials → 401;
 *   2. an action the matrix does not know, or one that does not apply to the
 *      kind of resource (an org action on a product or device, a product action
 *      on an org) → 403. That is a programming error in the caller, answered by
 *      a refusal rather than a throw: a throw inside an aedes hook would tear
 *      down the client's connection, and a refusal is logged with its reason;
 *   3. no role / out of reach → 404, so a resource's existence does not leak;
 *   4. a role (or customer, API user, device) that does not allow the action → 403.
 *
 * Choices where the design is silent:
 *   - A device resource takes every product action, decided by the role on its
 *     product (not only the Devices rows: a device's SIM, group or firmware).
 *   - A user's org role wins over their product-team role on that org's products,
 *     even when the product role is higher (DESIGN's order of the rules).
 *   - Customers and devices are matched on both their id and their product: the
 *     same customer or device id under another product is someone else (404).
 *   - An API user is refused (403) every action whose lowest role is 'owner'
 *     (billing.manage) even when it is in its scopes: those belong to one person.
 *     An org-scoped API user reaches the org and every product whose orgId is
 *     its org; a product-scoped one reaches that product and its devices, never
 *     the org (404).
 *   - An org's products as a whole (resource 'orgProducts': the org's usage and
 *     billing account) take product actions, decided by the org role cascaded
 *     to the org's products, as on any one of them: the matrix's Billing rows
 *     say who sees the org's usage and who manages its billing information.
 *     Product-team members of one org product have no role there (404).
 *   - Empty ids, memberships holding a non-role, and prototype keys
 *     ('__proto__', 'constructor') never match: malformed actors get 401.
 */
import { isRole, minRoleFor, ORG_ACTIONS, ORG_ROLE_CASCADE, PRODUCT_ACTIONS, roleAllows } from '@flotilla/protocol';
import type { Action, Role } from '@flotilla/protocol';
import type { Actor, Decision, Memberships, ProductRef, Resource } from './types.js';

/** What an action applies to; built once from protocol's tables. */
const PRODUCT = 1;
const ORG = 2;
const ACTION_KIND: { readonly [action: string]: number } = (() => {
  const kinds: { [action: string]: number } = Object.create(null);
  for (let i = 0; i < PRODUCT_ACTIONS.length; i++) kinds[PRODUCT_ACTIONS[i].action] = PRODUCT;
  for (let i = 0; i < ORG_ACTIONS.length; i++) kinds[ORG_ACTIONS[i].action] = ORG;
  return kinds;
})();

/** What a customer may do to a device they own (DESIGN: "read variables, call functions, subscribe to their events"). */
const CUSTOMER_ACTIONS: readonly Action[] = ['device.view', 'device.variable', 'device.function', 'device.events'];
/** What a device may do to itself: see itself, see and publish its own events. */
const DEVICE_ACTIONS: readonly Action[] = ['device.view', 'device.events', 'event.publish'];

const hasOwn = Object.prototype.hasOwnProperty;

/** Where a user's role on a product comes from (for the audit reason). */
const VIA_NONE = 0;
const VIA_PERSONAL_OWNER = 1;
const VIA_ORG_OWNER = 2;
const VIA_ORG_TEAM = 3;
const VIA_PRODUCT_TEAM = 4;

/** A non-empty string id: an empty or missing id never matches anything. */
function isId(s: unknown): s is string {
  return typeof s === 'string' && s.length > 0;
}

/** `map[key]` if it is an own property holding a valid role: no prototype keys, no junk values. */
function roleIn(map: { readonly [id: string]: Role } | null | undefined, key: string | null): Role | null {
  if (map == null || key === null || !hasOwn.call(map, key)) return null;
  const role = map[key];
  return isRole(role) ? role : null;
}

/** Which of the VIA_* rules gives `userId` a role on `product`. */
function productRoleSource(userId: string, memberships: Memberships, product: ProductRef): number {
  if (product.ownerUserId === userId) return VIA_PERSONAL_OWNER;
  if (isId(product.orgId)) {
    if (product.orgOwnerUserId === userId) return VIA_ORG_OWNER;
    if (roleIn(memberships.orgs, product.orgId) !== null) return VIA_ORG_TEAM;
  }
  if (roleIn(memberships.products, product.productId) !== null) return VIA_PRODUCT_TEAM;
  return VIA_NONE;
}

function roleFromSource(source: number, memberships: Memberships, product: ProductRef): Role | null {
  switch (source) {
    case VIA_PERSONAL_OWNER:
    case VIA_ORG_OWNER:
      return 'owner';
    case VIA_ORG_TEAM:
      return ORG_ROLE_CASCADE[roleIn(memberships.orgs, product.orgId) as Role];
    case VIA_PRODUCT_TEAM:
      return roleIn(memberships.products, product.productId);
    default:
      return null;
  }
}

/**
 * A user's role on a product, or null for none: the product's Owner or its
 * org's Owner → 'owner'; else their org team role, cascaded, when the product
 * belongs to an org they are on; else their product team role.
 *
 * The org role wins over a product team role even when the product role is
 * higher (DESIGN's order; the two do not normally coexist, since inviting
 * someone to an org removes their product memberships on its products).
 */
export function userProductRole(userId: string, memberships: Memberships, product: ProductRef): Role | null {
  if (!isId(userId) || memberships == null || product == null || !isId(product.productId)) return null;
  return roleFromSource(productRoleSource(userId, memberships, product), memberships, product);
}

/** A user's role on an org, or null for none: its Owner → 'owner'; else their org team role. */
export function userOrgRole(userId: string, memberships: Memberships, orgId: string, orgOwnerUserId: string): Role | null {
  if (!isId(userId) || memberships == null || !isId(orgId)) return null;
  if (orgOwnerUserId === userId) return 'owner';
  return roleIn(memberships.orgs, orgId);
}

function deny(status: 401 | 403 | 404, reason: string): Decision {
  return { allow: false, status, reason };
}

function describeResource(resource: Resource): string {
  switch (resource.kind) {
    case 'product':
      return 'product ' + resource.product.productId;
    case 'device':
      return 'device ' + resource.deviceId + ' of product ' + resource.product.productId;
    case 'orgProducts':
      return 'every product of org ' + resource.orgId;
    default:
      return 'org ' + resource.orgId;
  }
}

function viaText(source: number, product: ProductRef): string {
  switch (source) {
    case VIA_PERSONAL_OWNER:
      return ' (its owner)';
    case VIA_ORG_OWNER:
      return ' via ownership of org ' + product.orgId;
    case VIA_ORG_TEAM:
      return ' via org ' + product.orgId;
    default:
      return ' via its product team';
  }
}

/** The role's verdict on an action it holds. */
function byRole(role: Role, action: Action, who: string): Decision {
  if (roleAllows(role, action)) return { allow: true, role, reason: who + ' may ' + action };
  return deny(403, who + ' may not ' + action + ' (needs ' + minRoleFor(action) + ')');
}

function decideUser(userId: string, memberships: Memberships, action: Action, resource: Resource): Decision {
  if (resource.kind === 'org') {
    const role = userOrgRole(userId, memberships, resource.orgId, resource.ownerUserId);
    if (role === null) return deny(404, 'user ' + userId + ' has no role on org ' + resource.orgId);
    return byRole(role, action, role + ' on org ' + resource.orgId);
  }
  if (resource.kind === 'orgProducts') {
    const role = userOrgRole(userId, memberships, resource.orgId, resource.ownerUserId);
    if (role === null) return deny(404, 'user ' + userId + ' has no role on org ' + resource.orgId);
    return byRole(ORG_ROLE_CASCADE[role], action, ORG_ROLE_CASCADE[role] + ' on ' + describeResource(resource) + ' via org ' + resource.orgId);
  }
  const product = resource.product;
  const source = isId(product.productId) ? productRoleSource(userId, memberships, product) : VIA_NONE;
  const role = roleFromSource(source, memberships, product);
  if (role === null) return deny(404, 'user ' + userId + ' has no role on ' + describeResource(resource));
  return byRole(role, action, role + ' on ' + describeResource(resource) + viaText(source, product));
}

function decideCustomer(customerId: string, productId: string, action: Action, resource: Resource): Decision {
  if (
    resource.kind !== 'device' ||
    resource.customerId !== customerId ||
    !isId(productId) ||
    resource.product.productId !== productId
  ) {
    return deny(404, 'customer ' + customerId + ' does not own ' + describeResource(resource));
  }
  if (CUSTOMER_ACTIONS.indexOf(action) >= 0) {
    return { allow: true, role: 'customer', reason: 'customer ' + customerId + ' owns ' + describeResource(resource) + ' and may ' + action };
  }
  return deny(403, 'customer ' + customerId + ' may not ' + action + ' on ' + describeResource(resource));
}

function decideApiUser(
  apiUserId: string,
  scope: { orgId: string } | { productId: string },
  scopes: readonly Action[],
  action: Action,
  resource: Resource,
): Decision {
  let inScope = false;
  if (scope != null && typeof scope === 'object') {
    if ('orgId' in scope) {
      if (isId(scope.orgId)) {
        inScope = resource.kind === 'org' || resource.kind === 'orgProducts' ? resource.orgId === scope.orgId : resource.product.orgId === scope.orgId;
      }
    } else if ('productId' in scope) {
      if (isId(scope.productId)) inScope = resource.kind !== 'org' && resource.kind !== 'orgProducts' && resource.product.productId === scope.productId;
    }
  }
  if (!inScope) return deny(404, 'API user ' + apiUserId + ' is not scoped to ' + describeResource(resource));
  // Owner-only actions (billing.manage) belong to one person, the Owner: never to a program, whatever its scopes say.
  if (minRoleFor(action) === 'owner') {
    return deny(403, 'API user ' + apiUserId + ' may never ' + action + ' (Owner only)');
  }
  if (!Array.isArray(scopes) || scopes.indexOf(action) < 0) {
    return deny(403, 'API user ' + apiUserId + ' has no scope ' + action + ' on ' + describeResource(resource));
  }
  return { allow: true, role: 'apiUser', reason: 'API user ' + apiUserId + ' has scope ' + action + ' on ' + describeResource(resource) };
}

function decideDevice(deviceId: string, productId: string, action: Action, resource: Resource): Decision {
  if (resource.kind !== 'device' || resource.deviceId !== deviceId || !isId(productId) || resource.product.productId !== productId) {
    return deny(404, 'device ' + deviceId + ' may act only on itself, not ' + describeResource(resource));
  }
  if (DEVICE_ACTIONS.indexOf(action) >= 0) {
    return { allow: true, role: 'device', reason: 'device ' + deviceId + ' may ' + action + ' on itself' };
  }
  return deny(403, 'device ' + deviceId + ' may not ' + action + ' on itself');
}

/**
 * May `actor` take `action` on `resource`? See the file's comment for the
 * order of the checks and the status of each refusal.
 */
export function decide(actor: Actor, action: Action, resource: Resource): Decision {
  if (actor == null || typeof actor !== 'object') return deny(401, 'no credentials');
  switch (actor.kind) {
    case 'anonymous':
      return deny(401, 'anonymous: no credentials');
    case 'invalid':
      return deny(401, 'invalid credentials (' + actor.reason + ')');
    case 'user':
      if (!isId(actor.userId) || actor.memberships == null) return deny(401, 'malformed user credentials');
      break;
    case 'customer':
      if (!isId(actor.customerId)) return deny(401, 'malformed customer credentials');
      break;
    case 'apiUser':
      if (!isId(actor.apiUserId)) return deny(401, 'malformed API user credentials');
      break;
    case 'device':
      if (!isId(actor.deviceId)) return deny(401, 'malformed device credentials');
      break;
    default:
      return deny(401, 'unknown kind of credentials');
  }

  const kind = typeof action === 'string' && hasOwn.call(ACTION_KIND, action) ? ACTION_KIND[action] : 0;
  if (kind === 0) return deny(403, 'unknown action ' + String(action));
  if (resource == null || typeof resource !== 'object') return deny(403, 'no resource given for ' + action);
  switch (resource.kind) {
    case 'product':
    case 'device':
      if (resource.product == null) return deny(403, 'resource has no product for ' + action);
      if (kind !== PRODUCT) return deny(403, 'action ' + action + ' does not apply to ' + describeResource(resource));
      break;
    case 'org':
      if (kind !== ORG) return deny(403, 'action ' + action + ' does not apply to ' + describeResource(resource));
      break;
    case 'orgProducts':
      if (kind !== PRODUCT) return deny(403, 'action ' + action + ' does not apply to ' + describeResource(resource));
      break;
    default:
      return deny(403, 'action ' + action + ' does not apply to an unknown kind of resource');
  }

  switch (actor.kind) {
    case 'user':
      return decideUser(actor.userId, actor.memberships, action, resource);
    case 'customer':
      return decideCustomer(actor.customerId, actor.productId, action, resource);
    case 'apiUser':
      return decideApiUser(actor.apiUserId, actor.scope, actor.scopes, action, resource);
    default:
      return decideDevice(actor.deviceId, actor.productId, action, resource);
  }
}
