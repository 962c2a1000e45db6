/**
 * An organization beyond its team (teams.ts) and its products (products.ts):
 *   PUT    /v1/orgs/:org/owner {username}                 the Owner hands the org to a member of its team
 *   POST   /v1/products/:product/transfers {org}           the product's Owner asks to move it into an org
 *   GET    /v1/products/:product/transfers                 its transfer requests
 *   DELETE /v1/products/:product/transfers/:transfer       the Owner withdraws a pending request
 *   GET    /v1/orgs/:org/transfers                         requests to move products into the org
 *   PUT    /v1/orgs/:org/transfers/:transfer {accept}      an org Administrator consents (true) or refuses (false)
 *   GET|POST /v1/orgs/:org/whitelist, DELETE …/:username  users whose personal space the org pays for
 *   GET    /v1/orgs/:org/devices                           the devices of the org's space
 * Particle's API has none of these (its staff moves products into orgs);
 * docs/organizations.md says what each does and why it is guarded so.
 */
import { isRole, ROLE_TITLES } from '@flotilla/protocol';
import { userOrgRole } from '../../policy/decide.js';
import { canConsent, canHandOver, canTakeOver, transferProblem } from '../../policy/orgs.js';
import type { Actor } from '../../policy/types.js';
import type { Device, Org, ProductTransfer, TransferOutcome } from '../../store/store.js';
import { auditEntry } from '../../identity/actor.js';
import { guard, person, seesDevice } from '../access.js';
import { route, type ApiContext, type Route } from '../app.js';
import { ApiError } from '../errors.js';
import { bool } from '../body.js';
import { ORG_BILLING_MANAGE, ORG_BILLING_VIEW } from './billing.js';
import { deviceListing } from './devices.js';
import { orgObject } from './user.js';

async function username(ctx: ApiContext, id: string | null): Promise<string | null> {
  return id ? (await ctx.store.getUser(id))?.username ?? id : null;
}

async function transferObject(ctx: ApiContext, t: ProductTransfer) {
  const [product, org] = [await ctx.store.getProduct(t.productId), await ctx.store.getOrg(t.orgId)];
  return {
    id: t.id, product_id: t.productId, product: product?.slug ?? null, org: org?.slug ?? t.orgId, state: t.state,
    requested_by: await username(ctx, t.requestedBy), decided_by: await username(ctx, t.decidedBy),
    created_at: t.createdAt.toISOString(), decided_at: t.decidedAt?.toISOString() ?? null,
  };
}

/** A state change of a transfer, in the audit log beside the guard's decision. */
async function auditTransfer(ctx: ApiContext, actor: Actor, t: ProductTransfer, reason: string): Promise<void> {
  const action = t.state === 'accepted' ? 'product.transfer' : 'product.transfer.' + t.state;
  await ctx.store.audit(auditEntry(actor, action, 'product', String(t.productId), { allow: true, reason }, new Date()));
}

/** After the move: live sessions decide with the product's new owner, the audit log says what changed. */
async function moved(ctx: ApiContext, actor: Actor, o: TransferOutcome) {
  const t = o.transfer;
  for (const userId of [o.formerOwnerUserId, ...o.superseded.map((m) => m.userId)]) await ctx.fleet.refreshUser(userId);
  for (const d of await ctx.store.listDevices(t.productId)) await ctx.fleet.refreshDevice(d.id);
  const names = async (list: { userId: string; role: string }[]) => (await Promise.all(list.map(async (m) => (await username(ctx, m.userId)) + ' ' + m.role))).join(', ') || 'none';
  await auditTransfer(ctx, actor, t,
    `product ${t.productId} moved from user ${o.formerOwnerUserId} to org ${t.orgId} (asked by ${t.requestedBy}, accepted by ${t.decidedBy}); ` +
    `kept product roles: ${await names(o.kept)}; replaced by org roles: ${await names(o.superseded)}`);
  return {
    transfer: await transferObject(ctx, t),
    kept_product_members: await Promise.all(o.kept.map(async (m) => ({ username: await username(ctx, m.userId), role: ROLE_TITLES[m.role] }))),
    removed_product_members: await Promise.all(o.superseded.map(async (m) => ({ username: await username(ctx, m.userId), role: ROLE_TITLES[m.role] }))),
  };
}

async function transferOf(ctx: ApiContext, id: string, where: { productId?: string; orgId?: string }): Promise<ProductTransfer> {
  const t = await ctx.store.getTransfer(id);
  if (!t || (where.productId !== undefined && String(t.productId) !== where.productId) || (where.orgId !== undefined && t.orgId !== where.orgId)) throw ApiError.of(404, 'Transfer not found');
  return t;
}

async function orgRoleOf(ctx: ApiContext, org: Org, userId: string) {
  return userOrgRole(userId, await ctx.store.memberships(userId), org.id, org.ownerUserId);
}

export const orgRoutes: Route[] = [
  // Handing over: the guard lets the team's managers in, the Owner alone may hand over (policy/orgs.ts).
  route('PUT', '/v1/orgs/:org/owner', guard.org('org.team.manage'), async (req, ctx, a) => {
    const org = a.org!;
    const me = person(a.actor, 'hands an organization over');
    if (!canHandOver(a.decision && isRole(a.decision.role) ? a.decision.role : null)) throw ApiError.of(403, 'Only the Owner of the organization hands it over');
    const name = (await req.body()).username;
    if (typeof name !== 'string' || name.trim() === '') throw ApiError.of(400, 'The username field is required');
    const next = await ctx.store.findUser(name);
    if (!next || !canTakeOver(await orgRoleOf(ctx, org, next.id))) throw ApiError.of(404, 'No team member ' + name + ' in this organization: the next Owner must be on its team');
    const o = await ctx.store.setOrgOwner(org.id, next.id);
    await ctx.fleet.refreshUser(me.userId);
    await ctx.fleet.refreshUser(next.id);
    const reason = `org ${org.id} handed over from ${me.userId} to ${next.id} (the former Owner is now an Administrator)`;
    await ctx.store.audit(auditEntry(me, 'org.owner', 'org', org.id, { allow: true, reason }, new Date()));
    return { ok: true, organization: orgObject(o), previous_owner: { username: await username(ctx, me.userId), role: ROLE_TITLES.administrator } };
  }),

  // Moving a personal product into an org. Asking is the product's Owner's alone (billing.manage: the org's account pays from then on).
  route('POST', '/v1/products/:product/transfers', guard.product('billing.manage'), async (req, ctx, a) => {
    const me = person(a.actor, 'moves a product');
    const orgName = (await req.body()).org;
    if (typeof orgName !== 'string' || orgName.trim() === '') throw ApiError.of(400, 'The org field is required (the organization\'s id or slug)');
    const org = await ctx.store.getOrg(orgName.trim());
    const role = org ? await orgRoleOf(ctx, org, me.userId) : null;
    const problem = transferProblem(a.product!, role);
    if (problem || !org) throw ApiError.of(problem?.status ?? 404, problem?.reason ?? 'Organization not found');
    const t = await ctx.store.requestTransfer({ productId: a.product!.productId, orgId: org.id, requestedBy: me.userId });
    // An org Administrator moving their own product consents by asking.
    if (canConsent(role)) return { status: 201, body: { ok: true, ...(await moved(ctx, a.actor, await ctx.store.acceptTransfer(t.id, me.userId))) } };
    await auditTransfer(ctx, a.actor, t, `user ${me.userId} asks to move product ${t.productId} into org ${org.id}; an Administrator of the org consents`);
    return { status: 201, body: { ok: true, transfer: await transferObject(ctx, t) } };
  }),
  route('GET', '/v1/products/:product/transfers', guard.product('billing.view'), async (req, ctx, a) => ({
    transfers: await Promise.all((await ctx.store.listTransfers({ productId: a.product!.productId })).map((t) => transferObject(ctx, t))),
  })),
  route('DELETE', '/v1/products/:product/transfers/:transfer', guard.product('billing.manage'), async (req, ctx, a) => {
    const me = person(a.actor, 'withdraws a transfer');
    const t = await ctx.store.closeTransfer((await transferOf(ctx, req.params.transfer, { productId: a.product!.productId })).id, 'cancelled', me.userId);
    await auditTransfer(ctx, a.actor, t, `user ${me.userId} withdrew the request to move product ${t.productId} into org ${t.orgId}`);
    return { ok: true, transfer: await transferObject(ctx, t) };
  }),
  // Consent: the org's Administrators (org.team.manage: every member of the org's team gains a role on what it takes in).
  route('GET', '/v1/orgs/:org/transfers', guard.org('org.team.manage'), async (req, ctx, a) => ({
    transfers: await Promise.all((await ctx.store.listTransfers({ orgId: a.org!.id })).map((t) => transferObject(ctx, t))),
  })),
  route('PUT', '/v1/orgs/:org/transfers/:transfer', guard.org('org.team.manage'), async (req, ctx, a) => {
    const me = person(a.actor, 'consents to a transfer');
    const t = await transferOf(ctx, req.params.transfer, { orgId: a.org!.id });
    const body = await req.body();
    if (!('accept' in body)) throw ApiError.of(400, 'Send accept: true to take the product in, or false to refuse it');
    if (bool(body.accept, 'accept')) return { ok: true, ...(await moved(ctx, a.actor, await ctx.store.acceptTransfer(t.id, me.userId))) };
    const declined = await ctx.store.closeTransfer(t.id, 'declined', me.userId);
    await auditTransfer(ctx, a.actor, declined, `user ${me.userId} refused to take product ${t.productId} into org ${t.orgId}`);
    return { ok: true, transfer: await transferObject(ctx, declined) };
  }),

  // Whitelisted users: Administrators see who, the Owner decides (the matrix's Billing rows, over the org's products).
  route('GET', '/v1/orgs/:org/whitelist', ORG_BILLING_VIEW, async (req, ctx, a) => {
    const org = a.org!;
    const users = [];
    for (const u of await ctx.store.billedUsers(org.id)) {
      users.push({ username: await username(ctx, u.userId), added_by: await username(ctx, u.addedBy), added_at: u.createdAt.toISOString(), personal_products: (await ctx.store.personalProductIds(u.userId)).length });
    }
    return { organization: org.slug, whitelisted_users: users };
  }),
  route('POST', '/v1/orgs/:org/whitelist', ORG_BILLING_MANAGE, async (req, ctx, a) => {
    const org = a.org!;
    const me = person(a.actor, 'manages the whitelist');
    const name = (await req.body()).username;
    if (typeof name !== 'string' || name.trim() === '') throw ApiError.of(400, 'The username field is required');
    const u = await ctx.store.findUser(name);
    if (!u || (await orgRoleOf(ctx, org, u.id)) === null) throw ApiError.of(404, 'No team member ' + name + ' in this organization: only its team members can be whitelisted');
    const b = await ctx.store.addBilledUser(org.id, u.id, me.userId);
    return { status: 201, body: { ok: true, whitelisted: { username: u.username, added_at: b.createdAt.toISOString() } } };
  }),
  route('DELETE', '/v1/orgs/:org/whitelist/:username', ORG_BILLING_MANAGE, async (req, ctx, a) => {
    const org = a.org!;
    const u = await ctx.store.findUser(req.params.username);
    if (!u || !(await ctx.store.removeBilledUser(org.id, u.id))) throw ApiError.of(404, 'No whitelisted user ' + req.params.username);
    return { status: 204, body: null };
  }),

  // The org space's devices: every device of the org's products the actor may view, listed as a product's are.
  route('GET', '/v1/orgs/:org/devices', guard.orgProducts('device.view'), async (req, ctx, a) => {
    const devices: Device[] = [];
    const groups = new Map<string, string[]>();
    for (const id of await ctx.store.orgProductIds(a.org!.id)) {
      const product = await ctx.store.productRef(id);
      if (!product) continue;
      for (const [d, g] of await ctx.store.groupsOfDevices(id)) groups.set(d, g);
      for (const d of await ctx.store.listDevices(id)) {
        if (seesDevice(a.actor, d.id, product, d.customerId)) devices.push(d);
      }
    }
    return deviceListing(ctx, req.url.searchParams, devices, groups);
  }),
];
