/**
 * Event streams: /v1/events/:prefix, /v1/devices/events[/:prefix],
 * /v1/devices/:id/events[/:prefix], /v1/products/:p/events[/:prefix],
 * /v1/orgs/:org/events[/:prefix]. Opening one checks who may watch what
 * (404 for a device or product the actor has no role on); each event is then
 * decided per device by the hub.
 */
import { decide } from '../../policy/decide.js';
import { STREAMING, type ApiContext, type Request, type Route } from '../app.js';
import { ApiError } from '../errors.js';
import type { StreamScope } from '../events.js';

async function open(req: Request, ctx: ApiContext, scope: StreamScope): Promise<typeof STREAMING> {
  const actor = await req.actor();
  if (scope.kind === 'device') {
    const access = await ctx.store.deviceAccess(scope.deviceId);
    if (!access || !decide(actor, 'device.events', { kind: 'device', deviceId: scope.deviceId, product: access.product, customerId: access.customerId }).allow)
      throw ApiError.of(404, 'Device not found');
  } else if (scope.kind === 'product') {
    const product = await ctx.store.productRef(scope.productId);
    if (!product || !decide(actor, 'device.events', { kind: 'product', product }).allow) throw ApiError.of(404, 'Product not found');
    scope = { kind: 'product', productId: product.productId }; // a slug becomes the id events carry
  } else if (scope.kind === 'org') {
    if (actor.kind !== 'user' || !Object.prototype.hasOwnProperty.call(actor.memberships.orgs, scope.orgId)) throw ApiError.of(404, 'Organization not found');
  }
  ctx.events.open(actor, scope, req.params.prefix ?? '', req.res);
  return STREAMING;
}

export const eventRoutes: Route[] = [
  ['GET', '/v1/events', () => { throw ApiError.of(400, 'An event name prefix is required: /v1/events/:prefix'); }],
  ['GET', '/v1/events/*prefix', (req, ctx) => open(req, ctx, { kind: 'all' })],
  ['GET', '/v1/devices/events', (req, ctx) => open(req, ctx, { kind: 'all' })],
  ['GET', '/v1/devices/events/*prefix', (req, ctx) => open(req, ctx, { kind: 'all' })],
  ['GET', '/v1/devices/:id/events', (req, ctx) => open(req, ctx, { kind: 'device', deviceId: req.params.id })],
  ['GET', '/v1/devices/:id/events/*prefix', (req, ctx) => open(req, ctx, { kind: 'device', deviceId: req.params.id })],
  ['GET', '/v1/products/:product/events', (req, ctx) => open(req, ctx, { kind: 'product', productId: req.params.product })],
  ['GET', '/v1/products/:product/events/*prefix', (req, ctx) => open(req, ctx, { kind: 'product', productId: req.params.product })],
  ['GET', '/v1/orgs/:org/events', (req, ctx) => open(req, ctx, { kind: 'org', orgId: req.params.org })],
  ['GET', '/v1/orgs/:org/events/*prefix', (req, ctx) => open(req, ctx, { kind: 'org', orgId: req.params.org })],
];
