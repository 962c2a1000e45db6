/**
 * A product and what hangs off it: the product itself (get, settings), org
 * products, device groups (a product's customers and OAuth clients: customers.ts;
 * its usage and billing: billing.ts). Every route is guarded by an action of
 * the matrix on the path's product (or org).
 */
import { decide } from '../../policy/decide.js';
import { authorizeProductAlso, guard } from '../access.js';
import { route, type Route } from '../app.js';
import { ApiError } from '../errors.js';
import { CUSTOMER_AUTH_MODES, CUSTOMER_AUTH_SETTING, isCustomerAuthMode } from '../../customers/modes.js';
import { field } from '../body.js';
import type { DeviceGroup, ProductReleases } from '../../store/store.js';
import { description, newProduct, orgObject, productObject } from './user.js';

/** Particle's group object; `fw_version` is the firmware version released to the group, or null. */
function groupObject(g: DeviceGroup, releases: ProductReleases) {
  return { name: g.name, description: g.description, color: g.color, fw_version: releases.groups.get(g.name) ?? null, device_count: g.devices };
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
    const mode = (settings as Record<string, unknown> | undefined)?.[CUSTOMER_AUTH_SETTING];
    if (mode !== undefined && mode !== null && !isCustomerAuthMode(mode)) throw ApiError.of(400, `settings.${CUSTOMER_AUTH_SETTING} must be one of ${CUSTOMER_AUTH_MODES.join(', ')}`);
    // Sent on its own or among the settings, it is the same description.
    const described = description(body.description !== undefined ? body.description : (settings as Record<string, unknown> | undefined)?.description);
    const changes = { ...(settings as Record<string, unknown> | undefined), ...(described !== undefined ? { description: described } : {}) };
    const p = await ctx.store.updateProductSettings(a.product!.productId, changes);
    return { product: productObject(p) };
  }),
  route('GET', '/v1/orgs/:org', guard.org('org.team.view'), async (req, ctx, a) => ({ organization: orgObject(a.org!) })),
  route('GET', '/v1/orgs/:org/products', guard.org('org.team.view'), async (req, ctx, a) => ({
    products: await Promise.all((await ctx.store.productsByIds(await ctx.store.orgProductIds(a.org!.id))).map(async (p) => {
      // Its settings only to whoever may view them: an org API user may hold org.team.view and not settings.view.
      const ref = await ctx.store.productRef(p.id);
      const shown = productObject(p);
      return ref && decide(a.actor, 'settings.view', { kind: 'product', product: ref }).allow ? shown : { ...shown, settings: {}, description: '' };
    })),
  })),
  route('POST', '/v1/orgs/:org/products', guard.org('org.product.create'), async (req, ctx, a) => newProduct(ctx, await req.body(), { orgId: a.org!.id })),

  // Device groups.
  route('GET', '/v1/products/:product/groups', guard.product('device.view'), async (req, ctx, a) => {
    const releases = await ctx.store.productReleases(a.product!.productId);
    // Particle's `name` filter (particle-api-js listGroups({name})): a part of the name, any case.
    const part = (req.url.searchParams.get('name') ?? '').toLowerCase();
    const groups = (await ctx.store.listGroups(a.product!.productId)).filter((g) => g.name.toLowerCase().includes(part));
    return { groups: groups.map((g) => groupObject(g, releases)) };
  }),
  route('POST', '/v1/products/:product/groups', guard.product('group.create'), async (req, ctx, a) => {
    const b = await req.body();
    const g = await ctx.store.createGroup(a.product!.productId, { name: field(b, 'name'), description: b.description as string | undefined, color: b.color as string | undefined });
    return { status: 201, body: { ok: true, group: groupObject(g, await ctx.store.productReleases(a.product!.productId)) } };
  }),
  route('GET', '/v1/products/:product/groups/:group', guard.product('device.view'), async (req, ctx, a) => {
    const g = await ctx.store.getGroup(a.product!.productId, req.params.group);
    if (!g) throw ApiError.of(404, 'Group not found');
    return { group: groupObject(g, await ctx.store.productReleases(a.product!.productId)) };
  }),
  route('PUT', '/v1/products/:product/groups/:group', guard.product('group.edit'), async (req, ctx, a) => {
    const b = await req.body();
    const g = await ctx.store
      .updateGroup(a.product!.productId, req.params.group, { name: b.name as string | undefined, description: b.description as string | null | undefined, color: b.color as string | null | undefined })
      ;
    return { ok: true, group: groupObject(g, await ctx.store.productReleases(a.product!.productId)) };
  }),
  route('DELETE', '/v1/products/:product/groups/:group', guard.product('group.edit'), async (req, ctx, a) => {
    const productId = a.product!.productId;
    const name = req.params.group.trim().toLowerCase();
    // A group with a release decides its devices' firmware: deleting it moves them (to another release or the default).
    const released = (await ctx.store.productReleases(productId)).groups.has(name);
    if (released) await authorizeProductAlso(ctx.store, a, ['device.flash']);
    const members = released ? [...(await ctx.store.groupsOfDevices(productId))].filter(([, groups]) => groups.includes(name)).map(([id]) => id) : [];
    if (!(await ctx.store.deleteGroup(productId, req.params.group))) throw ApiError.of(404, 'Group not found');
    for (const id of members) ctx.ota.reconcile(id);
    return { status: 204, body: null };
  }),
];
