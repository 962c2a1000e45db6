/**
 * A product and what hangs off it: the product itself (get, settings), org
 * products, device groups (a product's customers and OAuth clients: customers.ts). Every route is
 * guarded by an action of the matrix on the path's product (or org).
 */
import { guard } from '../access.js';
import { route, type Route } from '../app.js';
import { ApiError } from '../errors.js';
import { field } from '../body.js';
import type { DeviceGroup } from '../../store/store.js';
import { newProduct, orgObject, productObject } from './user.js';

function groupObject(g: DeviceGroup) {
  return { name: g.name, description: g.description, color: g.color, fw_version: null, device_count: g.devices };
}

export const productRoutes: Route[] = [
  route('GET', '/v1/products/:product', guard.product('settings.view'), async (req, ctx, a) => {
    const p = await ctx.store.getProduct(a.product!.productId);
    if (!p) throw ApiError.of(404, 'Product not found');
    return { product: productObject(p) };
  }),
  route('PUT', '/v1/products/:product', guard.product('settings.edit'), async (req, ctx, a) => {
    const body = await req.body();
    const settings = body.settings;
    if (settings === undefined && body.description === undefined) throw ApiError.of(400, 'Send settings (an object) or description');
    if (settings !== undefined && (typeof settings !== 'object' || settings === null || Array.isArray(settings))) throw ApiError.of(400, 'settings must be an object');
    const changes = { ...(settings as Record<string, unknown> | undefined), ...(typeof body.description === 'string' ? { description: body.description } : {}) };
    const p = await ctx.store.updateProductSettings(a.product!.productId, changes);
    return { product: productObject(p) };
  }),
  route('GET', '/v1/orgs/:org', guard.org('org.team.view'), async (req, ctx, a) => ({ organization: orgObject(a.org!) })),
  route('GET', '/v1/orgs/:org/products', guard.org('org.team.view'), async (req, ctx, a) => ({
    products: (await ctx.store.productsByIds(await ctx.store.orgProductIds(a.org!.id))).map((p) => productObject(p, a.org)),
  })),
  route('POST', '/v1/orgs/:org/products', guard.org('org.product.create'), async (req, ctx, a) => newProduct(ctx, await req.body(), { orgId: a.org!.id })),

  // Billing & usage: devices active, messages and bytes per day (the broker's counts, flushed every few seconds).
  route('GET', '/v1/products/:product/usage', guard.product('billing.view'), async (req, ctx, a) => {
    const q = req.url.searchParams;
    const day = (v: string | null, fallback: Date, name: string): string => {
      if (v === null || v === '') return fallback.toISOString().slice(0, 10);
      const d = new Date(v);
      if (!/^[0-9]{4}-[0-9]{2}-[0-9]{2}/.test(v) || !Number.isFinite(d.getTime())) throw ApiError.of(400, name + ' must be a date, YYYY-MM-DD');
      return d.toISOString().slice(0, 10);
    };
    const to = day(q.get('end_date'), new Date(), 'end_date');
    const from = day(q.get('start_date'), new Date(Date.parse(to) - 29 * 86400000), 'start_date');
    if (from > to) throw ApiError.of(400, 'start_date is after end_date');
    const days = await ctx.store.usage(a.product!.productId, from, to);
    const total = days.reduce((t, d) => ({ messages: t.messages + d.messages, bytes: t.bytes + d.bytes }), { messages: 0, bytes: 0 });
    return {
      start_date: from, end_date: to,
      usage: days.map((d) => ({ date: d.day, devices: d.devices, messages: d.messages, bytes: d.bytes })),
      totals: { ...total, devices: (await ctx.store.listDevices(a.product!.productId)).length },
    };
  }),

  // Device groups.
  route('GET', '/v1/products/:product/groups', guard.product('device.view'), async (req, ctx, a) => ({
    groups: (await ctx.store.listGroups(a.product!.productId)).map(groupObject),
  })),
  route('POST', '/v1/products/:product/groups', guard.product('group.create'), async (req, ctx, a) => {
    const b = await req.body();
    const g = await ctx.store.createGroup(a.product!.productId, { name: field(b, 'name'), description: b.description as string | undefined, color: b.color as string | undefined });
    return { status: 201, body: { ok: true, group: groupObject(g) } };
  }),
  route('GET', '/v1/products/:product/groups/:group', guard.product('device.view'), async (req, ctx, a) => {
    const g = await ctx.store.getGroup(a.product!.productId, req.params.group);
    if (!g) throw ApiError.of(404, 'Group not found');
    return { group: groupObject(g) };
  }),
  route('PUT', '/v1/products/:product/groups/:group', guard.product('group.edit'), async (req, ctx, a) => {
    const b = await req.body();
    const g = await ctx.store
      .updateGroup(a.product!.productId, req.params.group, { name: b.name as string | undefined, description: b.description as string | null | undefined, color: b.color as string | null | undefined })
      ;
    return { ok: true, group: groupObject(g) };
  }),
  route('DELETE', '/v1/products/:product/groups/:group', guard.product('group.edit'), async (req, ctx, a) => {
    if (!(await ctx.store.deleteGroup(a.product!.productId, req.params.group))) throw ApiError.of(404, 'Group not found');
    return { status: 204, body: null };
  }),
];
