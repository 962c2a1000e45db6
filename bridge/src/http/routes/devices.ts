/**
 * Devices, as Particle's /v1/devices: list, get, read a variable, call a
 * function. Every route goes through decide(); no role on the device's
 * product is 404, so a device's existence does not leak. Variables and
 * functions are answered by the live device through the broker's request
 * router: 404 when it is offline, 408 when it does not answer in time.
 */
import type { Action } from '@flotilla/protocol';
import { decide } from '../../policy/decide.js';
import type { Actor, ProductRef } from '../../policy/types.js';
import { StoreError, type Device } from '../../store/store.js';
import { RequestTimeout } from '../../mqtt/requests.js';
import type { ApiContext, Request, Route } from '../app.js';
import { ApiError } from '../errors.js';

/** Particle's device object. */
export function deviceObject(d: Device) {
  return {
    id: d.id,
    name: d.name,
    last_app: null,
    last_ip_address: null,
    last_heard: d.lastHeard ? d.lastHeard.toISOString() : null,
    last_handshake_at: d.lastHandshakeAt ? d.lastHandshakeAt.toISOString() : null,
    product_id: d.productId,
    online: d.online,
    connected: d.online,
    platform_id: 6, // Photon
    cellular: false,
    notes: d.notes,
    functions: d.functions,
    variables: d.variables,
    status: 'normal',
    firmware_version: d.firmwareVersion,
    desired_firmware_version: d.lockedFirmware,
    development: d.development,
    quarantined: d.quarantined,
    groups: [] as string[],
  };
}

/** The device, if the actor may take `action` on it: 404 when it has no role there, 403 when the role is too low. */
async function authorized(req: Request, ctx: ApiContext, action: Action): Promise<{ device: Device; actor: Actor }> {
  const actor = await req.actor();
  const id = req.params.id;
  let access = await ctx.store.deviceAccess(id);
  // The product form (/v1/products/:product/devices/:id): the device must be that product's.
  if (access && req.params.product !== undefined) {
    const product = await ctx.store.productRef(req.params.product);
    if (!product || product.productId !== access.product.productId) access = null;
  }
  const decision = access
    ? decide(actor, action, { kind: 'device', deviceId: id, product: access.product, customerId: access.customerId })
    : ({ allow: false, status: 404, reason: 'no such device' } as const);
  await ctx.store.audit({
    at: new Date(), actorKind: actor.kind, actorId: actorIdOf(actor), action, resourceKind: 'device', resourceId: id,
    allowed: decision.allow, status: decision.allow ? 200 : decision.status, reason: decision.reason,
  });
  if (!decision.allow) throw decision.status === 403 ? ApiError.of(403, 'Permission denied') : ApiError.of(404, 'Device not found');
  const device = await ctx.store.getDevice(id);
  if (!device) throw ApiError.of(404, 'Device not found');
  return { device, actor };
}

function actorIdOf(a: Actor): string {
  return a.kind === 'user' ? a.userId : a.kind === 'customer' ? a.customerId : a.kind === 'apiUser' ? a.apiUserId : a.kind === 'device' ? a.deviceId : '';
}

/** The products whose devices an actor may list. */
async function visibleProducts(actor: Actor, ctx: ApiContext): Promise<string[]> {
  if (actor.kind === 'user') {
    const ids = new Set(Object.keys(actor.memberships.products));
    for (const org of Object.keys(actor.memberships.orgs)) for (const p of await ctx.store.orgProductIds(org)) ids.add(String(p));
    return [...ids];
  }
  if (actor.kind === 'customer') return [actor.productId];
  if (actor.kind === 'apiUser') return 'productId' in actor.scope ? [actor.scope.productId] : (await ctx.store.orgProductIds(actor.scope.orgId)).map(String);
  return [];
}

async function ask(ctx: ApiContext, device: Device, body: Parameters<ApiContext['requests']['ask']>[1]) {
  if (!device.online) throw ApiError.of(404, 'Device is not connected');
  try {
    return await ctx.requests.ask(device.id, body, ctx.callTimeoutMs);
  } catch (e) {
    if (e instanceof RequestTimeout) throw ApiError.of(408, 'Timed out.');
    throw e;
  }
}

/** A StoreError of kind 'invalid' is the caller's mistake: 400 with its message. */
function invalid(e: unknown): never {
  if (e instanceof StoreError && e.code === 'invalid') throw ApiError.of(400, e.message);
  throw e;
}

export const deviceRoutes: Route[] = [
  [
    'GET', '/v1/devices',
    async (req, ctx) => {
      const actor = await req.actor();
      const out: ReturnType<typeof deviceObject>[] = [];
      for (const productId of await visibleProducts(actor, ctx)) {
        const product = (await ctx.store.productRef(productId)) as ProductRef;
        for (const d of await ctx.store.listDevices(productId)) {
          if (decide(actor, 'device.view', { kind: 'device', deviceId: d.id, product, customerId: d.customerId }).allow) out.push(deviceObject(d));
        }
      }
      // Particle sorts by last handshake, newest first.
      return out.sort((a, b) => (b.last_handshake_at ?? '').localeCompare(a.last_handshake_at ?? ''));
    },
  ],
  ['GET', '/v1/devices/:id', async (req, ctx) => deviceObject((await authorized(req, ctx, 'device.view')).device)],
  [
    'GET', '/v1/devices/:id/:name',
    async (req, ctx) => {
      const { device } = await authorized(req, ctx, 'device.variable');
      const name = req.params.name;
      if (!(name in device.variables)) throw ApiError.of(404, 'Variable not found');
      const r = await ask(ctx, device, { op: 'var', name });
      if (r.status !== 'ok') throw ApiError.of(r.status === 'not_found' ? 404 : 400, r.status === 'not_found' ? 'Variable not found' : String(r.value ?? r.status));
      if (req.url.searchParams.get('format') === 'raw') return { status: 200, body: r.value };
      return {
        cmd: 'VarReturn', name, result: r.value,
        coreInfo: { name: device.name, deviceID: device.id, connected: true, last_handshake_at: device.lastHandshakeAt?.toISOString() ?? null, last_app: '' },
      };
    },
  ],
  [
    'POST', '/v1/devices/:id/:name',
    async (req, ctx) => {
      const { device } = await authorized(req, ctx, 'device.function');
      const name = req.params.name;
      if (!device.functions.includes(name)) throw ApiError.of(404, 'Function not found');
      const body = await req.body();
      // Particle's API takes `arg`; particle-api-js sends `args`.
      const arg = typeof body.arg === 'string' ? body.arg : typeof body.args === 'string' ? body.args : '';
      const r = await ask(ctx, device, { op: 'call', name, arg });
      if (r.status !== 'ok') throw ApiError.of(r.status === 'not_found' ? 404 : 400, r.status === 'not_found' ? 'Function not found' : String(r.value ?? r.status));
      return { id: device.id, name: device.name, connected: true, return_value: r.value };
    },
  ],
  [
    'PUT', '/v1/devices/:id/ping',
    async (req, ctx) => {
      const { device } = await authorized(req, ctx, 'device.ping');
      if (!device.online) return { online: false, ok: true };
      try {
        const r = await ctx.requests.ask(device.id, { op: 'ping' }, ctx.callTimeoutMs);
        return { online: r.status === 'ok', ok: true };
      } catch (e) {
        if (e instanceof RequestTimeout) return { online: false, ok: true };
        throw e;
      }
    },
  ],
  [
    // Particle's multiplexed update: one field per call (name, notes or signal).
    'PUT', '/v1/devices/:id',
    async (req, ctx) => {
      const body = await req.body();
      if ('signal' in body) {
        const { device } = await authorized(req, ctx, 'device.ping');
        const on = String(body.signal) === '1' || body.signal === true;
        const r = await ask(ctx, device, { op: 'signal', on });
        return { id: device.id, connected: true, signaling: r.status === 'ok' ? on : false };
      }
      if ('name' in body || 'notes' in body) {
        const { device } = await authorized(req, ctx, 'device.edit');
        const updated = await ctx.store
          .updateDevice(device.id, { name: 'name' in body ? (body.name as string | null) : undefined, notes: 'notes' in body ? (body.notes as string | null) : undefined })
          .catch(invalid);
        return 'name' in body ? { id: updated.id, name: updated.name, updated_at: new Date().toISOString() } : { id: updated.id, notes: updated.notes, updated_at: new Date().toISOString() };
      }
      throw ApiError.of(400, 'Nothing to update: send name, notes or signal');
    },
  ],
  [
    // Particle's product listing: filters, sorting and pages of 25.
    'GET', '/v1/products/:product/devices',
    async (req, ctx) => {
      const actor = await req.actor();
      const product = await ctx.store.productRef(req.params.product);
      if (!product || !decide(actor, 'device.view', { kind: 'product', product }).allow) throw ApiError.of(404, 'Product not found');
      const q = req.url.searchParams;
      const idPart = (q.get('deviceId') ?? '').toLowerCase();
      const namePart = (q.get('deviceName') ?? '').toLowerCase();
      let list = (await ctx.store.listDevices(product.productId)).filter(
        (d) => d.id.includes(idPart) && (namePart === '' || (d.name ?? '').toLowerCase().includes(namePart)),
      );
      const attr = q.get('sortAttr') ?? 'lastConnection';
      const key = (d: Device): string | number =>
        attr === 'deviceName' ? d.name ?? '' : attr === 'deviceId' ? d.id : attr === 'firmwareVersion' ? d.firmwareVersion ?? -1 : d.lastHandshakeAt?.getTime() ?? 0;
      const dir = (q.get('sortDir') ?? (attr === 'lastConnection' ? 'desc' : 'asc')) === 'desc' ? -1 : 1;
      list = list.sort((a, b) => (key(a) < key(b) ? -dir : key(a) > key(b) ? dir : 0));
      const perPage = Math.min(100, Math.max(1, Number(q.get('per_page') ?? 25) || 25));
      const page = Math.max(1, Number(q.get('page') ?? 1) || 1);
      return {
        devices: list.slice((page - 1) * perPage, page * perPage).map(deviceObject),
        customers: [],
        meta: { total_pages: Math.max(1, Math.ceil(list.length / perPage)) },
      };
    },
  ],
  ['GET', '/v1/products/:product/devices/:id', async (req, ctx) => deviceObject((await authorized(req, ctx, 'device.view')).device)],
];
