/**
 * A product's customers (its end users) and its OAuth clients (what the
 * product's app and server log in with).
 */
import { authorize, guard, visibleProducts } from '../access.js';
import { countTokenRequest, route, type ApiContext, type Route } from '../app.js';
import { ApiError } from '../errors.js';
import { account, bool, field, type Fields } from '../body.js';
import { paged } from '../pages.js';
import { clientOf, PRODUCT_CLIENT } from '../client-auth.js';
import type { ClaimCode, Customer } from '../../store/store.js';
import type { Actor } from '../../policy/types.js';
import { customerAuthMode, stepRefusal, type SigninStep } from '../../customers/modes.js';
import { CLAIM_CODE_TTL_SECONDS, newClaimCode } from '../../customers/claims.js';
import { clientObject, redirects } from './user.js';

async function customerObject(ctx: ApiContext, c: Customer) {
  const devices = await ctx.store.customerDevices(c.id);
  return { id: c.id, username: c.username, devices, no_password: !c.hasPassword, created_at: c.createdAt.toISOString() };
}

async function productClient(ctx: ApiContext, productId: string, id: string) {
  const c = await ctx.store.getClient(id);
  if (!c || String(c.productId) !== productId) throw ApiError.of(404, 'Client not found');
  return c;
}

/** Refuses (400) what the product's customer sign-in mode does not allow. */
async function signinStep(ctx: ApiContext, productId: string, step: SigninStep): Promise<void> {
  const p = await ctx.store.getProduct(productId);
  const why = p ? stepRefusal(customerAuthMode(p.settings), step) : null;
  if (why) throw ApiError.of(400, why);
}

/**
 * A claim code for `product` (id or slug; a customer's own when null): a
 * customer claims for itself, a user with device.add on the product for
 * itself. A customer naming another product finds none (404). A user may
 * name no product (Particle's getClaimCode without one): the code then claims
 * a device of any product the user may add devices to, decided when the
 * device presents it.
 */
async function claimCode(ctx: ApiContext, actor: Actor, product: string | null, body: () => Promise<Fields>) {
  let productId: string | null;
  let claimant: ClaimCode['claimant'];
  if (actor.kind === 'customer') {
    if (product !== null && (await ctx.store.productRef(product))?.productId !== actor.productId) throw ApiError.of(404, 'Product not found');
    productId = actor.productId;
    claimant = { kind: 'customer', id: actor.customerId };
  } else if (actor.kind === 'user') {
    productId = product === null ? null : (await authorize(ctx.store, actor, guard.product('device.add'), { product }, body)).product!.productId;
    claimant = { kind: 'user', id: actor.userId };
  } else throw ApiError.of(403, 'Only customers and users get claim codes');
  const code = newClaimCode();
  await ctx.store.createClaimCode({ code, productId, claimant, ttlSeconds: CLAIM_CODE_TTL_SECONDS });
  const products = productId !== null ? [productId] : (await visibleProducts(actor, ctx.store)).map((p) => p.productId);
  const devices: string[] = [];
  for (const p of products) devices.push(...(await claimedDevices(ctx, p, claimant)));
  return { claim_code: code, device_ids: devices };
}

/** The devices a claimant holds in a product (Particle answers a claim code with them). */
async function claimedDevices(ctx: ApiContext, productId: string, claimant: ClaimCode['claimant']): Promise<string[]> {
  return (await ctx.store.listDevices(productId)).filter((d) => (claimant.kind === 'customer' ? d.customerId : d.ownerUserId) === claimant.id).map((d) => d.id);
}

/** The body's `product` (an id or a slug), or null when it names none. */
function optionalProduct(b: Fields): string | null {
  const p = b.product;
  if (p === undefined || p === null || p === '') return null;
  if (typeof p === 'number' && Number.isInteger(p)) return String(p);
  if (typeof p !== 'string') throw ApiError.of(400, 'product must be a product id or slug');
  return p;
}

/** Particle's default customer token lifetime, as the password grant's: 90 days. */
const CUSTOMER_TTL = 7776000;

export const customerRoutes: Route[] = [
  // Customers.
  route('GET', '/v1/products/:product/customers', guard.product('customer.view'), async (req, ctx, a) => {
    const { shown, meta } = paged(req.url.searchParams, await ctx.store.listCustomers(a.product!.productId));
    const customers = [];
    for (const c of shown) customers.push(await customerObject(ctx, c));
    return { customers, meta };
  }),
  // Particle answers a new customer with a token for it (simple and two-legged authentication).
  route('POST', '/v1/products/:product/customers', guard.product('customer.create'), async (req, ctx, a) => {
    // A sign-up hashes a password (a scrypt): counted as the token endpoint's requests, as POST /v1/users.
    countTokenRequest(ctx.limiter, req.address);
    const b = await req.body();
    // Particle's customers are e-mail addresses (its apps sign them in and reset their passwords by mail), with a user's password rules.
    const username = typeof b.email === 'string' ? account(b.email, undefined, 'email').username! : account(field(b, 'username'), undefined).username!;
    const noPassword = b.no_password === undefined ? false : bool(b.no_password, 'no_password');
    await signinStep(ctx, a.product!.productId, noPassword ? 'signup_no_password' : 'signup_password');
    // Two-legged: the product's server makes customers, as it alone gets their tokens (oauth.ts). An installed app's
    // credentials are in every copy of the app: with them, anyone made a customer and claimed the product's devices.
    const by = clientOf(a.actor);
    if (noPassword && by !== null && (await ctx.store.getClient(by))?.type !== 'web')
      throw ApiError.of(403, "Customers without a password are made by the product's server: use a web client, not an installed app's");
    const password = noPassword ? null : account(undefined, field(b, 'password')).password!;
    const c = await ctx.store.createCustomer({ productId: a.product!.productId, username, password });
    // Made by the product's app with its client: that client's token (deleting the client ends it); made by the team: the product's.
    const clientId = by ?? PRODUCT_CLIENT + a.product!.productId;
    const t = await ctx.store.issueToken({ subject: { kind: 'customer', id: c.id }, clientId, scopes: [], ttlSeconds: CUSTOMER_TTL, refresh: true });
    return {
      status: 201,
      body: { token_type: 'bearer', access_token: t.token, expires_in: CUSTOMER_TTL, refresh_token: t.refreshToken, customer: await customerObject(ctx, c) },
    };
  }),
  route('PUT', '/v1/products/:product/customers/:customer', guard.product('customer.edit'), async (req, ctx, a) => {
    const c = await ctx.store.findCustomer(a.product!.productId, req.params.customer);
    if (!c) throw ApiError.of(404, 'Customer not found');
    const b = await req.body();
    await signinStep(ctx, a.product!.productId, 'signup_password');
    await ctx.store.setCustomerPassword(c.id, account(undefined, field(b, 'password')).password!);
    // A reset ends the customer's sessions, as a user's invalidate_tokens does: the old password's tokens go with it.
    ctx.fleet.cutTokenHashes(await ctx.store.revokeTokensOf({ kind: 'customer', id: c.id }));
    return { ok: true, customer: await customerObject(ctx, c) };
  }),
  route('DELETE', '/v1/products/:product/customers/:customer', guard.product('customer.edit'), async (req, ctx, a) => {
    const c = await ctx.store.findCustomer(a.product!.productId, req.params.customer);
    if (!c) throw ApiError.of(404, 'Customer not found');
    const devices = await ctx.store.customerDevices(c.id);
    await ctx.store.deleteCustomer(c.id);
    ctx.fleet.cutSubject('customer', c.id);
    for (const d of devices) await ctx.fleet.refreshDevice(d);
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
    // What the client issued goes with it (its customers' tokens too): a leaked client is ended by deleting it.
    ctx.fleet.cutTokenHashes((await ctx.store.deleteClient((await productClient(ctx, a.product!.productId, req.params.client)).id)) ?? []);
    return { status: 204, body: null };
  }),

  // Claim codes (Particle's POST /v1/device_claims): a customer's, for their product; a user's, for a product
  // they may add devices to (body `product`). The device presents the code once connected (mqtt/claims.ts).
  route('POST', '/v1/device_claims', guard.signedIn('a customer for its own product; a user with device.add on the body\'s product, or for any such product without one'), async (req, ctx, { actor }) =>
    claimCode(ctx, actor, actor.kind === 'user' ? optionalProduct(await req.body()) : null, req.body)),
  // The same with the product in the path (particle-api-js getClaimCode({product})).
  route('POST', '/v1/products/:product/device_claims', guard.signedIn('a customer of that product; a user with device.add on it'), async (req, ctx, { actor }) =>
    claimCode(ctx, actor, req.params.product, req.body)),
];
