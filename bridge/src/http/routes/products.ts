/**
 * A product and what hangs off it: the product itself (get, settings), org
 * products, device groups, customers, product OAuth clients. Every route is
 * guarded by an action of the matrix on the path's product (or org).
 */
import { guard } from '../access.js';
import { route, type ApiContext, type Route } from '../app.js';
import { ApiError } from '../errors.js';
import { field } from '../body.js';
import type { Customer, DeviceGroup } from '../../store/store.js';
import { clientObject, newProduct, orgObject, productObject, redirects } from './user.js';

function groupObject(g: DeviceGroup) {
  return { name: g.name, description: g.description, color: g.color, fw_version: null, device_count: g.devices };
}

async function customerObject(ctx: ApiContext, c: Customer) {
  const devices = (await ctx.store.listDevices(c.productId)).filter((d) => d.customerId === c.id).map((d) => d.id);
  return { id: c.id, username: c.username, devices, no_password: !c.hasPassword, created_at: c.createdAt.toISOString() };
}

async function productClient(ctx: ApiContext, productId: string, id: string) {
  const c = await ctx.store.getClient(id);
  if (!c || String(c.productId) !== productId) throw ApiError.of(404, 'Client not found');
  return c;
}

/** Particle's default customer token lifetime, as the password grant's: 90 days. */
const CUSTOMER_TTL = 7776000;

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

  // Customers.
  route('GET', '/v1/products/:product/customers', guard.product('customer.view'), async (req, ctx, a) => {
    const customers = [];
    for (const c of await ctx.store.listCustomers(a.product!.productId)) customers.push(await customerObject(ctx, c));
    return { customers, meta: { total_pages: 1 } };
  }),
  // Particle answers a new customer with a token for it (simple and two-legged authentication).
  route('POST', '/v1/products/:product/customers', guard.product('customer.create'), async (req, ctx, a) => {
    const b = await req.body();
    const username = typeof b.email === 'string' ? b.email : field(b, 'username');
    const noPassword = b.no_password === true || b.no_password === 'true';
    const password = noPassword ? null : field(b, 'password');
    const c = await ctx.store.createCustomer({ productId: a.product!.productId, username, password });
    const t = await ctx.store.issueToken({ subject: { kind: 'customer', id: c.id }, clientId: 'product-' + a.product!.productId, scopes: [], ttlSeconds: CUSTOMER_TTL, refresh: true });
    return {
      status: 201,
      body: { token_type: 'bearer', access_token: t.token, expires_in: CUSTOMER_TTL, refresh_token: t.refreshToken, customer: await customerObject(ctx, c) },
    };
  }),
  route('PUT', '/v1/products/:product/customers/:customer', guard.product('customer.edit'), async (req, ctx, a) => {
    const c = await ctx.store.findCustomer(a.product!.productId, req.params.customer);
    if (!c) throw ApiError.of(404, 'Customer not found');
    const b = await req.body();
    await ctx.store.setCustomerPassword(c.id, field(b, 'password'));
    return { ok: true, customer: await customerObject(ctx, c) };
  }),
  route('DELETE', '/v1/products/:product/customers/:customer', guard.product('customer.edit'), async (req, ctx, a) => {
    const c = await ctx.store.findCustomer(a.product!.productId, req.params.customer);
    if (!c) throw ApiError.of(404, 'Customer not found');
    const devices = (await ctx.store.listDevices(c.productId)).filter((d) => d.customerId === c.id);
    await ctx.store.deleteCustomer(c.id);
    ctx.fleet.cutSubject('customer', c.id);
    for (const d of devices) await ctx.fleet.refreshDevice(d.id);
    return { status: 204, body: null };
  }),

  // Product OAuth clients (what a product's app and server log in with).
  route('GET', '/v1/products/:product/clients', guard.product('client.view'), async (req, ctx, a) => ({
    ok: true, clients: (await ctx.store.listClients({ productId: a.product!.productId })).map((c) => clientObject(c)),
  })),
  route('POST', '/v1/products/:product/clients', guard.product('client.create'), async (req, ctx, a) => {
    const b = await req.body();
    const r = await ctx.store.createClient({ name: field(b, 'name'), type: (b.type ?? 'installed') as 'installed' | 'web', redirectUris: redirects(b.redirect_uri), productId: a.product!.productId });
    return { status: 201, body: { ok: true, client: clientObject(r.client, r.secret) } };
  }),
  route('PUT', '/v1/products/:product/clients/:client', guard.product('client.edit'), async (req, ctx, a) => {
    const c = await productClient(ctx, a.product!.productId, req.params.client);
    const b = await req.body();
    return { ok: true, client: clientObject(await ctx.store.updateClient(c.id, { name: b.name as string | undefined, redirectUris: redirects(b.redirect_uri) })) };
  }),
  route('DELETE', '/v1/products/:product/clients/:client', guard.product('client.edit'), async (req, ctx, a) => {
    await ctx.store.deleteClient((await productClient(ctx, a.product!.productId, req.params.client)).id);
    return { status: 204, body: null };
  }),
];
