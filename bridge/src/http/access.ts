/**
 * Every route declares its guard; the app runs it before the handler, here
 * and only here: the route's resource is looked up from its path (`:id` a
 * device, `:product` a product by id or slug, `:org` an org by id or slug, or
 * every product of that org at once: its usage, billing, integrations),
 * decide() is asked, the decision goes to the audit log, and a refusal becomes
 * 401, 403 or 404 (no role on the resource, or no such resource: the same
 * answer, so existence does not leak).
 *
 * A path that names both a device and its product or org (the product and org
 * forms of the device paths) finds the device only when it is that product's
 * or that org's.
 */
import { isDeviceId, type Action } from '@flotilla/protocol';
import { decide } from '../policy/decide.js';
import type { Actor, Decision, ProductRef, Resource } from '../policy/types.js';
import type { DeviceRef, Org, Store } from '../store/store.js';
import { ApiError } from './errors.js';
import { auditEntry } from '../identity/actor.js';

export type Guard =
  /** No token needed (the token endpoint, health). `why` says so in the route table. */
  | { kind: 'public'; why: string }
  /**
   * Any valid token; the handler answers only with what decide() lets this
   * actor see (listings, the all-devices event stream) or about the actor itself.
   */
  | { kind: 'signedIn'; why: string }
  /**
   * decide(actor, action, the path's device / product / org). The action may
   * depend on the body (Particle's multiplexed PUTs); a device may be named by
   * the body's `id` instead of the path (claiming).
   */
  | { kind: ResourceGuardKind; action: GuardAction; idFrom?: 'body' };

/**
 * What a resource guard decides on. 'orgProducts': a product action on every
 * product of the path's org at once (decide() on 'orgProducts': the org role,
 * cascaded to its products).
 */
export type ResourceGuardKind = 'device' | 'product' | 'org' | 'orgProducts';

/** A guard on the path's (or body's) device, product or org: what authorize() runs. */
export type ResourceGuard = Extract<Guard, { kind: ResourceGuardKind }>;

export type GuardAction = Action | ((body: () => Promise<Record<string, unknown>>) => Promise<Action>);

export const guard = {
  public: (why: string): Guard => ({ kind: 'public', why }),
  signedIn: (why: string): Guard => ({ kind: 'signedIn', why }),
  device: (action: GuardAction, idFrom?: 'body'): ResourceGuard => ({ kind: 'device', action, idFrom }),
  product: (action: GuardAction): ResourceGuard => ({ kind: 'product', action }),
  org: (action: GuardAction): ResourceGuard => ({ kind: 'org', action }),
  orgProducts: (action: GuardAction): ResourceGuard => ({ kind: 'orgProducts', action }),
};

/** What a guarded handler is given: who asks, and the resource the guard found and allowed. */
export interface Access {
  actor: Actor;
  /** The path's product, or the device's product. */
  product: ProductRef | null;
  /** The path's device. */
  device: ({ id: string } & DeviceRef) | null;
  /** The path's org. */
  org: Org | null;
  /** The guard's decision; null for a public or signed-in route. */
  decision: Extract<Decision, { allow: true }> | null;
  /** The action it decided (a body-dependent one decided unread may differ from the body's: the handler decides that too). */
  action?: Action;
}

const NOT_FOUND = { device: 'Device not found', product: 'Product not found', org: 'Organization not found', orgProducts: 'Organization not found' } as const;

export function refused(d: Extract<Decision, { allow: false }>, kind: keyof typeof NOT_FOUND, actor: Actor): ApiError {
  if (d.status === 401 && actor.kind === 'invalid' && actor.reason === 'client') return ApiError.oauth(401, 'invalid_client', 'Client authentication failed');
  if (d.status === 401 && actor.kind === 'invalid' && actor.reason === 'misplaced') {
    const where = 'Send the access token in the Authorization header (Authorization: Bearer <token>); one in the query string or the body is not taken (Particle deprecated both: URLs end up in logs)';
    return new ApiError(401, { error: 'invalid_request', error_description: where }, { 'www-authenticate': 'Bearer' });
  }
  if (d.status === 401 && actor.kind === 'invalid' && actor.reason === 'password') {
    return new ApiError(401, { error: 'invalid_grant', error_description: 'User credentials are invalid' }, { 'www-authenticate': 'Basic realm="flotilla"' });
  }
  if (d.status === 401) return new ApiError(401, { error: 'invalid_token', error_description: 'The access token was not found, has expired or was revoked' }, { 'www-authenticate': 'Bearer' });
  return d.status === 403 ? ApiError.of(403, 'Permission denied') : ApiError.of(404, NOT_FOUND[kind]);
}

interface Found {
  resource: Resource | null;
  product: ProductRef | null;
  device: ({ id: string } & DeviceRef) | null;
  org: Org | null;
}

async function find(store: Store, kind: ResourceGuardKind, params: Record<string, string>): Promise<Found> {
  const none: Found = { resource: null, product: null, device: null, org: null };
  const org = params.org !== undefined ? await store.getOrg(params.org) : null;
  if (params.org !== undefined && !org) return none;
  if (kind === 'org' || kind === 'orgProducts') return org ? { resource: { kind, orgId: org.id, ownerUserId: org.ownerUserId }, product: null, device: null, org } : none;
  let product = params.product !== undefined ? await store.productRef(params.product) : null;
  if (params.product !== undefined && !product) return none;
  if (kind === 'device') {
    const access = await store.deviceAccess(params.id);
    if (!access || (product && access.product.productId !== product.productId)) return none;
    product = access.product;
    if (org && product.orgId !== org.id) return none;
    const device = { id: params.id, ...access };
    return { resource: { kind: 'device', deviceId: params.id, product, customerId: access.customerId }, product, device, org };
  }
  if (!product || (org && product.orgId !== org.id)) return none;
  return { resource: { kind: 'product', product }, product, device: null, org };
}

/** The user making a request that only a person may make (not a customer, not an API user); 403 for anyone else. */
export function person(actor: Actor, what = 'has this'): Extract<Actor, { kind: 'user' }> {
  if (actor.kind !== 'user') throw ApiError.of(403, 'Only a user ' + what);
  return actor;
}

/**
 * Whether a product is in the actor's personal space: for a user, the products
 * of no org (an org's are its own space, as the Console's space switcher);
 * customers and API users have one space, their scope.
 */
export function inPersonalSpace(actor: Actor, product: ProductRef): boolean {
  return actor.kind !== 'user' || product.orgId === null;
}

/** Whether a user claimed the device (`ownerUserId`, its claimer): theirs in their personal space, as on Particle, whatever product it is of. */
export function claimedBy(actor: Actor, ownerUserId: string | null): boolean {
  return actor.kind === 'user' && ownerUserId !== null && ownerUserId === actor.userId;
}

/** The products whose devices an actor may list. */
export async function visibleProducts(actor: Actor, store: Store): Promise<ProductRef[]> {
  let ids: string[] = [];
  if (actor.kind === 'user') {
    const set = new Set(Object.keys(actor.memberships.products));
    for (const org of Object.keys(actor.memberships.orgs)) for (const p of await store.orgProductIds(org)) set.add(String(p));
    ids = [...set];
  } else if (actor.kind === 'customer') ids = [actor.productId];
  else if (actor.kind === 'apiUser') ids = 'productId' in actor.scope ? [actor.scope.productId] : (await store.orgProductIds(actor.scope.orgId)).map(String);
  const refs: ProductRef[] = [];
  for (const id of ids) {
    const ref = await store.productRef(id);
    if (ref) refs.push(ref);
  }
  return refs;
}

/** Whether the actor may see this device (of this product, held by this customer, if any). */
export function seesDevice(actor: Actor, deviceId: string, product: ProductRef, customerId: string | null): boolean {
  return decide(actor, 'device.view', { kind: 'device', deviceId, product, customerId }).allow;
}

/**
 * A device named by its name instead of its id (Particle's API and particle-cli
 * accept both): the IDs of the devices of that name the actor may view (one
 * is the answer; more, and the ID is needed); only among the products
 * `within` keeps, when given.
 */
export async function devicesNamed(store: Store, actor: Actor, name: string, within?: (product: ProductRef) => boolean): Promise<string[]> {
  const found: string[] = [];
  for (const product of await visibleProducts(actor, store)) {
    if (within && !within(product)) continue;
    for (const d of await store.listDevices(product.productId)) {
      if (d.name === name && seesDevice(actor, d.id, product, d.customerId)) found.push(d.id);
    }
  }
  return found;
}

/** The refusal of a name that more than one device the actor sees goes by. */
export function ambiguousName(name: string, ids: readonly string[], field = ''): ApiError {
  return ApiError.of(400, `${field}${ids.length} devices you can see are named ${JSON.stringify(name)} (${ids.join(', ')}): give the device ID`);
}

/**
 * A request on a device that takes more actions than its guard's (Particle's multiplexed PUT: a
 * rename and a firmware lock in one body): each is decided and audited as the guard's was, and the
 * first refusal is thrown before anything is done.
 */
export async function authorizeAlso(store: Store, a: Access, actions: readonly Action[]): Promise<void> {
  const device = a.device!;
  for (const action of actions) {
    await settle(store, a.actor, action, 'device', device.id, decide(a.actor, action, { kind: 'device', deviceId: device.id, product: device.product, customerId: device.customerId }));
  }
}

/** authorizeAlso for a request on a product (a batch on its devices): each action decided on the product, audited, the first refusal thrown. */
export async function authorizeProductAlso(store: Store, a: Access, actions: readonly Action[]): Promise<void> {
  const product = a.product!;
  for (const action of actions) await settle(store, a.actor, action, 'product', product.productId, decide(a.actor, action, { kind: 'product', product }));
}

/** A decision goes to the audit log; a refusal is thrown as the API says it (refused()). One place for every guard. */
async function settle(store: Store, actor: Actor, action: Action, kind: keyof typeof NOT_FOUND, resourceId: string, decision: Decision): Promise<Extract<Decision, { allow: true }>> {
  await store.audit(auditEntry(actor, action, kind, resourceId, decision, new Date()));
  if (!decision.allow) throw refused(decision, kind, actor);
  return decision;
}

/** Runs a resource guard: the Access on allow; throws the refusal (audited) otherwise. */
export async function authorize(
  store: Store,
  actor: Actor,
  g: ResourceGuard,
  params: Record<string, string>,
  body: () => Promise<Record<string, unknown>>,
  /** What a body-dependent action is decided from, when not the body itself (an upload's: app.ts). */
  actionBody: () => Promise<Record<string, unknown>> = body,
  /** Actions that will also do when that one is refused (the body unread may ask for any of them). */
  orElse: readonly Action[] = [],
): Promise<Access> {
  // Nobody known: the answer is 401 whatever the body says, so it is not read (an upload's is large):
  // a body-dependent action is the one for an empty body.
  const unknown = actor.kind === 'anonymous' || actor.kind === 'invalid';
  let action = typeof g.action === 'function' ? await g.action(unknown ? () => Promise.resolve({}) : actionBody) : g.action;
  if (g.idFrom === 'body' && !unknown) {
    const id = (await body()).id;
    if (typeof id !== 'string' || id === '') throw ApiError.of(400, 'The id field is required');
    params = { ...params, id: id.toLowerCase() };
  }
  if (g.kind === 'device' && typeof params.id === 'string') {
    // A device ID is hex, whatever the case it is typed in (copied from a label, a spreadsheet): the same device.
    const lower = params.id.toLowerCase();
    if (isDeviceId(lower)) params = { ...params, id: lower };
    else if (actor.kind !== 'anonymous' && actor.kind !== 'invalid') {
      const ids = await devicesNamed(store, actor, params.id);
      if (ids.length > 1) throw ambiguousName(params.id, ids);
      if (ids.length === 1) params = { ...params, id: ids[0] };
    }
  }
  const resourceId = g.kind === 'device' ? params.id : g.kind === 'product' ? params.product : params.org;
  const what = g.kind === 'orgProducts' ? 'org' : g.kind;
  const found = unknown ? null : await find(store, g.kind, params);
  let decision: Decision = found?.resource
    ? decide(actor, action, found.resource)
    : unknown
      ? decide(actor, action, { kind: 'org', orgId: '', ownerUserId: '' }) // 401 whatever the resource
      : { allow: false, status: 404, reason: 'no such ' + what + ' ' + resourceId };
  for (const alt of found?.resource && !decision.allow && decision.status === 403 ? orElse : []) {
    const d = decide(actor, alt, found!.resource!);
    if (d.allow) {
      [action, decision] = [alt, d];
      break;
    }
  }
  const allowed = await settle(store, actor, action, g.kind, resourceId ?? '', decision);
  return { actor, product: found!.product, device: found!.device, org: found!.org, decision: allowed, action };
}
