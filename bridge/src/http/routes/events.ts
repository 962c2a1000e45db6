/**
 * Event streams: /v1/events/:prefix, /v1/devices/events[/:prefix],
 * /v1/devices/:id/events[/:prefix] (and its product and org forms),
 * /v1/products/:p/events[/:prefix], /v1/orgs/:org/events[/:prefix], and the
 * other forms particle-api-js builds (streams() below). Opening
 * one is guarded like any route; each event is then decided per device by the
 * hub. Publishing: POST /v1/devices/events and /v1/products/:p/events.
 */
import { eventNameProblem, isReservedEventName, LIMITS, utf8Length } from '@flotilla/protocol';
import { decide } from '../../policy/decide.js';
import type { ProductRef } from '../../policy/types.js';
import { guard, inPersonalSpace, visibleProducts, type Access } from '../access.js';
import { route, STREAMING, type ApiContext, type Request, type Route } from '../app.js';
import { ApiError } from '../errors.js';
import { flag, text } from '../body.js';
import type { StreamScope } from '../events.js';
import { sha256Hex } from '../../store/secrets.js';

/** A stream for the token's holder: it ends when the token is revoked or expires (EventHub). */
function open(req: Request, ctx: ApiContext, a: Access, scope: StreamScope): typeof STREAMING {
  const holder = { actor: a.actor, tokenHash: req.token ? sha256Hex(req.token) : '', expiresAt: req.tokenExpiresAt };
  ctx.events.open(holder, scope, req.params.prefix ?? '', req.res);
  return STREAMING;
}

const ALL = guard.signedIn('streams only the events of devices decide() lets the actor watch');
const MINE = guard.signedIn('streams only the events of devices decide() lets the actor watch, in the personal space for a user');
// The org rows of the matrix have no events row: every org role may watch (as org.team.view, whose minimum is View-only);
// each event is then decided per device.
const ORG_EVENTS = guard.org('org.team.view');

/**
 * Every path particle-api-js's getEventStream builds from its options (org, product, deviceId
 * with "mine", name): "mine" within a product or an org is that product's or org's stream, and a
 * product named within an org must be that org's (404 otherwise, as for devices).
 */
function streams(suffix: string): Route[] {
  const product = guard.product('device.events');
  const ofProduct = (req: Request, ctx: ApiContext, a: Access) => open(req, ctx, a, { kind: 'product', productId: a.product!.productId });
  const ofOrg = (req: Request, ctx: ApiContext, a: Access) => open(req, ctx, a, { kind: 'org', orgId: a.org!.id });
  return [
    // /v1/events itself needs a prefix (below).
    ...(suffix ? [route('GET', '/v1/events' + suffix, ALL, (req, ctx, a) => open(req, ctx, a, { kind: 'all' }))] : []),
    route('GET', '/v1/devices/events' + suffix, MINE, (req, ctx, a) => open(req, ctx, a, { kind: 'mine' })),
    ...['/v1/products/:product', '/v1/orgs/:org/products/:product'].flatMap((p) => [
      route('GET', p + '/events' + suffix, product, ofProduct),
      route('GET', p + '/devices/events' + suffix, product, ofProduct),
    ]),
    route('GET', '/v1/orgs/:org/events' + suffix, ORG_EVENTS, ofOrg),
    route('GET', '/v1/orgs/:org/devices/events' + suffix, ORG_EVENTS, ofOrg),
    // A device's stream under a product or an org carries the product's fields, as that product's stream does.
    ...['/v1', '/v1/products/:product', '/v1/orgs/:org', '/v1/orgs/:org/products/:product'].map((p) =>
      route('GET', p + '/devices/:id/events' + suffix, guard.device('device.events'), (req, ctx, a) => open(req, ctx, a, { kind: 'device', deviceId: a.device!.id, productFields: p !== '/v1' })),
    ),
  ];
}

/** Particle's publish body: {name, data, private, ttl}. */
async function event(req: Request): Promise<{ name: string; data: string | null; ttl: number }> {
  const b = await req.body();
  const name = b.name;
  if (typeof name !== 'string' || name === '') throw ApiError.of(400, 'The name field is required');
  const problem = eventNameProblem(name, false);
  if (problem) throw ApiError.of(400, 'Event name ' + problem);
  if (isReservedEventName(name)) throw ApiError.of(400, 'Event names starting with "spark" are reserved');
  const data = b.data === undefined || b.data === null ? null : text(b.data, 'data');
  if (data !== null && utf8Length(data) > LIMITS.eventDataMaxBytes) throw ApiError.of(400, 'Event data is over ' + LIMITS.eventDataMaxBytes + ' bytes');
  // Every event is private to its product here (Particle made all events private in 2020): the field is checked, then has no effect.
  flag(b.private, 'private');
  const ttl = b.ttl === undefined || b.ttl === '' ? LIMITS.eventTtlDefault : Number(b.ttl);
  if (!Number.isInteger(ttl) || ttl < 0 || ttl > LIMITS.eventTtlMax) throw ApiError.of(400, 'ttl must be 0 to ' + LIMITS.eventTtlMax + ' seconds');
  return { name, data, ttl };
}

/** Sends one event to the subscribed devices of each product, and once to each stream and webhook that may see it. */
function publish(ctx: ApiContext, products: readonly ProductRef[], e: { name: string; data: string | null; ttl: number }): void {
  for (const product of products) ctx.fleet.sendEvent(product.productId, e.name, e.data);
  const at = new Date().toISOString();
  ctx.events.deliverApi(products, e.name, e.data, e.ttl, at);
  ctx.webhooks.onApiEvent(products, e.name, e.data, at);
}

export const eventRoutes: Route[] = [
  route('GET', '/v1/events', guard.public('answers only that a prefix is required'), () => {
    throw ApiError.of(400, 'An event name prefix is required: /v1/events/:prefix');
  }),
  ...streams(''),
  ...streams('/*prefix'),
  // Particle's "publish to your devices": the personal space, as GET /v1/devices; an org product's events go to /v1/products/:p/events.
  route('POST', '/v1/devices/events', guard.signedIn('publishes into each product of the personal space where decide() allows event.publish'), async (req, ctx, a) => {
    const e = await event(req);
    const into = (await visibleProducts(a.actor, ctx.store)).filter((product) => inPersonalSpace(a.actor, product) && decide(a.actor, 'event.publish', { kind: 'product', product }).allow);
    if (into.length > 0) publish(ctx, into, e);
    if (into.length === 0) throw ApiError.of(403, 'Permission denied: this publishes to the products of your personal space, and you may publish to none; publish to a product with POST /v1/products/:product/events (particle publish --product)');
    return { ok: true };
  }),
  route('POST', '/v1/products/:product/events', guard.product('event.publish'), async (req, ctx, a) => {
    publish(ctx, [a.product!], await event(req));
    return { ok: true };
  }),
];
