/**
 * Billing & usage, per product and per org, as the matrix's Billing rows say:
 * Administrators (and the Owner) view usage and billing information, the
 * Owner manages the billing information. For an org, the role is the one its
 * team gives on every product of the org (decide() on 'orgProducts'):
 *   GET /v1/products/:product/usage     devices, messages, bytes, data operations, SIM data per day
 *   GET /v1/orgs/:org/usage             the same over the org's products and its whitelisted users' personal products, with each product's totals
 *   GET|PUT /v1/products/:product/billing   a personal product's billing information (an org-billed one shows the org's, read-only)
 *   GET|PUT /v1/orgs/:org/billing           the org's billing information and whitelisted users
 * Particle's API has none of these paths; docs/organizations.md says why they look so.
 */
import { isDay, isoTime, type BillingInfo, type BillingInfoChanges, type ProductId, type UsageDay } from '../../store/store.js';
import { guard, person } from '../access.js';
import { route, type ApiContext, type Request, type Route } from '../app.js';
import { ApiError } from '../errors.js';

/** Carriers bill SIM data in decimal megabytes. */
const MB = 1_000_000;
const DAY_MS = 86_400_000;

/** A time's UTC day, YYYY-MM-DD. */
const dayOf = (d: Date) => d.toISOString().slice(0, 10);

/** start_date and end_date (YYYY-MM-DD, UTC) of the query; the last 30 days by default. */
export function dateRange(req: Request): { from: string; to: string } {
  const q = req.url.searchParams;
  const day = (v: string | null, fallback: Date, name: string): string => {
    if (v === null || v === '') return dayOf(fallback);
    // A day, or a time (2026-03-01T10:00:00-05:00) whose UTC day is taken; either way a real day of years 0000 to 9999.
    const t = /^[0-9]{4}-[0-9]{2}-[0-9]{2}T/.test(v) ? isoTime(v) : null;
    const d = t !== null ? dayOf(new Date(t)) : v;
    if (!isDay(d)) throw ApiError.of(400, name + ' must be a date, YYYY-MM-DD');
    return d;
  };
  const to = day(q.get('end_date'), new Date(), 'end_date');
  const from = day(q.get('start_date'), new Date(Date.parse(to) - 29 * DAY_MS), 'start_date');
  if (from > to) throw ApiError.of(400, 'start_date is after end_date');
  return { from, to };
}

const mb = (bytes: number) => Math.round((bytes / MB) * 1000) / 1000;

/** Two products' figures of one day together (a device is of one product: their device counts add up). */
function add(a: UsageDay | undefined, b: UsageDay): UsageDay {
  if (!a) return { ...b };
  return { day: a.day, devices: a.devices + b.devices, messages: a.messages + b.messages, bytes: a.bytes + b.bytes, dataOps: a.dataOps + b.dataOps, simBytes: a.simBytes + b.simBytes };
}

function dayObject(d: UsageDay) {
  return { date: d.day, devices: d.devices, messages: d.messages, bytes: d.bytes, data_operations: d.dataOps, sim_data_bytes: d.simBytes, sim_data_mb: mb(d.simBytes) };
}

/** Sums of a period; `devices` is how many devices the products hold now (Particle bills devices, not device-days). */
function totals(days: readonly UsageDay[], devices: number) {
  const t = days.reduce((s, d) => ({ messages: s.messages + d.messages, bytes: s.bytes + d.bytes, dataOps: s.dataOps + d.dataOps, simBytes: s.simBytes + d.simBytes }), {
    messages: 0, bytes: 0, dataOps: 0, simBytes: 0,
  });
  return { devices, messages: t.messages, bytes: t.bytes, data_operations: t.dataOps, sim_data_bytes: t.simBytes, sim_data_mb: mb(t.simBytes) };
}

async function deviceCount(ctx: ApiContext, productIds: readonly ProductId[]): Promise<number> {
  let n = 0;
  for (const id of productIds) n += (await ctx.store.listDevices(id)).length;
  return n;
}

/** Who pays for a product: its org, the org that whitelisted its personal Owner, or that Owner. */
export async function billedTo(ctx: ApiContext, product: { orgId: string | null; ownerUserId: string | null }) {
  const orgId = product.orgId ?? (product.ownerUserId ? await ctx.store.billingOrgOf(product.ownerUserId) : null);
  if (orgId) {
    const o = await ctx.store.getOrg(orgId);
    if (o) return { kind: 'org' as const, id: o.id, slug: o.slug, name: o.name, whitelisted: product.orgId === null };
  }
  const u = product.ownerUserId ? await ctx.store.getUser(product.ownerUserId) : null;
  return { kind: 'user' as const, id: product.ownerUserId, username: u?.username ?? null };
}

async function infoObject(ctx: ApiContext, i: BillingInfo | null) {
  if (!i) return null;
  const by = i.updatedBy ? await ctx.store.getUser(i.updatedBy) : null;
  return { name: i.name, email: i.email, address: i.address, country: i.country, tax_id: i.taxId, updated_at: i.updatedAt.toISOString(), updated_by: by?.username ?? null };
}

const INFO_FIELDS: { [field: string]: keyof BillingInfoChanges } = { name: 'name', email: 'email', address: 'address', country: 'country', tax_id: 'taxId' };

/** The billing information fields of a body ({billing_info: {...}} or flat); unknown fields are refused, naming them. */
async function infoChanges(req: Request): Promise<BillingInfoChanges> {
  const body = await req.body();
  const fields = (typeof body.billing_info === 'object' && body.billing_info !== null && !Array.isArray(body.billing_info) ? body.billing_info : body) as Record<string, unknown>;
  const unknown = Object.keys(fields).filter((k) => !(k in INFO_FIELDS));
  if (unknown.length > 0) throw ApiError.of(400, 'Unknown billing field ' + unknown.join(', ') + ': send name, email, address, country, tax_id');
  const changes: BillingInfoChanges = {};
  for (const [field, key] of Object.entries(INFO_FIELDS)) {
    if (!(field in fields)) continue;
    const v = fields[field];
    if (v !== null && typeof v !== 'string') throw ApiError.of(400, field + ' must be text or null');
    changes[key] = v as string | null;
  }
  if (Object.keys(changes).length === 0) throw ApiError.of(400, 'Send at least one of name, email, address, country, tax_id');
  return changes;
}

const ORG_BILLING_VIEW = guard.orgProducts('billing.view');
const ORG_BILLING_MANAGE = guard.orgProducts('billing.manage');

export { ORG_BILLING_MANAGE, ORG_BILLING_VIEW };

export const billingRoutes: Route[] = [
  route('GET', '/v1/products/:product/usage', guard.product('billing.view'), async (req, ctx, a) => {
    const { from, to } = dateRange(req);
    const p = a.product!;
    const days = await ctx.store.usage(p.productId, from, to);
    return { start_date: from, end_date: to, billed_to: await billedTo(ctx, p), usage: days.map(dayObject), totals: totals(days, await deviceCount(ctx, [p.productId])) };
  }),
  route('GET', '/v1/orgs/:org/usage', ORG_BILLING_VIEW, async (req, ctx, a) => {
    const org = a.org!;
    const { from, to } = dateRange(req);
    const billed = await ctx.store.billedUsers(org.id);
    // What the org pays for starts when it began to: a product moved in from the day its transfer was
    // accepted, a whitelisted user's products from the day of the whitelisting (before, either took
    // the product's whole history into the org's figures). A product made in the org: all of it.
    const since = new Map<number, string>();
    const whitelistedOn = new Map(billed.map((u) => [u.userId, dayOf(u.createdAt)]));
    for (const t of await ctx.store.listTransfers({ orgId: org.id })) {
      if (t.state !== 'accepted' || !t.decidedAt) continue;
      // Its Owner (who asked) whitelisted before the move: the org paid for it from then.
      const paidFrom = whitelistedOn.get(t.requestedBy);
      since.set(t.productId, [dayOf(t.decidedAt), paidFrom ?? dayOf(t.decidedAt)].sort()[0]);
    }
    const products = [...(await ctx.store.productsByIds(await ctx.store.orgProductIds(org.id)))];
    for (const u of billed) {
      for (const p of await ctx.store.productsByIds(await ctx.store.personalProductIds(u.userId))) {
        products.push(p);
        since.set(p.id, dayOf(u.createdAt));
      }
    }
    const ids = products.map((p) => p.id);
    const perProduct = [];
    const byDay = new Map<string, UsageDay>();
    for (const p of products) {
      const start = [from, since.get(p.id) ?? from].sort()[1];
      const used = start <= to ? await ctx.store.usageOfProducts([p.id], start, to) : [];
      for (const d of used) byDay.set(d.day, add(byDay.get(d.day), d));
      const owner = p.ownerUserId ? await ctx.store.getUser(p.ownerUserId) : null;
      perProduct.push({
        id: p.id, slug: p.slug, name: p.name, space: p.orgId ? 'org' : 'personal', owner: owner?.username ?? null,
        totals: totals(used, await deviceCount(ctx, [p.id])),
      });
    }
    const days = [...byDay.values()].sort((x, y) => (x.day < y.day ? -1 : 1));
    const whitelisted = [];
    for (const u of billed) whitelisted.push((await ctx.store.getUser(u.userId))?.username ?? u.userId);
    return {
      start_date: from, end_date: to, organization: org.slug,
      usage: days.map(dayObject), totals: totals(days, await deviceCount(ctx, ids)), products: perProduct, whitelisted_users: whitelisted,
    };
  }),

  route('GET', '/v1/products/:product/billing', guard.product('billing.view'), async (req, ctx, a) => {
    const p = a.product!;
    const to = await billedTo(ctx, p);
    const info = to.kind === 'org' ? await ctx.store.billingInfo({ orgId: to.id }) : await ctx.store.billingInfo({ productId: p.productId });
    return { billed_to: to, editable: to.kind === 'user', billing_info: await infoObject(ctx, info) };
  }),
  route('PUT', '/v1/products/:product/billing', guard.product('billing.manage'), async (req, ctx, a) => {
    const by = person(a.actor, 'manages billing information').userId;
    const p = a.product!;
    const to = await billedTo(ctx, p);
    if (to.kind === 'org') throw ApiError.of(409, 'This product is billed to the organization ' + to.slug + ': its Owner changes the billing information at /v1/orgs/' + to.slug + '/billing');
    const info = await ctx.store.setBillingInfo({ productId: p.productId }, await infoChanges(req), by);
    return { ok: true, billed_to: to, editable: true, billing_info: await infoObject(ctx, info) };
  }),
  route('GET', '/v1/orgs/:org/billing', ORG_BILLING_VIEW, async (req, ctx, a) => {
    const org = a.org!;
    return { organization: org.slug, billing_info: await infoObject(ctx, await ctx.store.billingInfo({ orgId: org.id })) };
  }),
  route('PUT', '/v1/orgs/:org/billing', ORG_BILLING_MANAGE, async (req, ctx, a) => {
    const org = a.org!;
    const info = await ctx.store.setBillingInfo({ orgId: org.id }, await infoChanges(req), person(a.actor, 'manages billing information').userId);
    return { ok: true, organization: org.slug, billing_info: await infoObject(ctx, info) };
  }),
];
