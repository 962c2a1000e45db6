/**
 * A product's customers (its end users) and its OAuth clients (what the
 * product's app and server log in with).
 */
import { guard } from '../access.js';
import { route, type ApiContext, type Route } from '../app.js';
import { ApiError } from '../errors.js';
import { field } from '../body.js';
import type { Customer } from '../../store/store.js';
import { clientObject, redirects } from './user.js';

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

export const customerRoutes: Route[] = [
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
