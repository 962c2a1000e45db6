/**
 * A product's SIM cards, as Particle's /sims routes: list, add, get, the
 * lifecycle (activate, deactivate, reactivate), the data limit, remove; the
 * SIMs of a space (/v1/sims: personal products, /v1/orgs/:org/sims).
 * The bridge has no carrier connection: a SIM's data per day is what its
 * carrier's figures say, sent with PUT …/data_usage (by whoever adds SIMs,
 * sim.add: a Developer, or a program with that scope); the usage views sum it.
 */
import type { Action } from '@flotilla/protocol';
import { decide } from '../../policy/decide.js';
import type { Actor, ProductRef } from '../../policy/types.js';
import { isDay, type SimCard } from '../../store/store.js';
import { authorize, guard, inPersonalSpace, visibleProducts } from '../access.js';
import { paged } from '../pages.js';
import { dateRange } from './billing.js';
import { route, type ApiContext, type Request, type Route } from '../app.js';
import { ApiError } from '../errors.js';
import { numberOf, type Fields } from '../body.js';

function simObject(s: SimCard) {
  return { _id: s.iccid, iccid: s.iccid, product_id: s.productId, status: s.status === 'active' ? 'active' : 'inactive', mb_limit: s.dataLimit, created_at: s.createdAt.toISOString() };
}

async function ofProduct(ctx: ApiContext, productId: string, iccid: string): Promise<SimCard> {
  const s = await ctx.store.getSim(iccid);
  if (!s || String(s.productId) !== productId) throw ApiError.of(404, 'SIM not found');
  return s;
}

/** A state change needs sim.state, a new limit sim.limit (Particle's matrix has both rows). */
async function updateAction(body: () => Promise<Fields>): Promise<Action> {
  return 'action' in (await body()) ? 'sim.state' : 'sim.limit';
}

const P = '/v1/products/:product/sims';

/** Carriers bill SIM data in decimal megabytes. */
const MB = 1_000_000;

/** Days of data as Particle writes them: megabytes per day and running total, and the total. */
function byDay(days: readonly { day: string; bytes: number }[]) {
  let total = 0;
  const usage = days.map((d) => {
    total += d.bytes;
    return { date: d.day, bytes: d.bytes, mbs_used: d.bytes / MB, mbs_used_cumulative: total / MB };
  });
  return { usage, total };
}

/** The SIM `iccid` (/v1/sims/:iccid, no product in the path), once `action` on its product is allowed; otherwise, as for no SIM, 404. */
async function simFor(ctx: ApiContext, actor: Actor, iccid: string, action: Action, body: () => Promise<Fields>): Promise<SimCard> {
  const s = await ctx.store.getSim(iccid);
  if (!s) throw ApiError.of(404, 'SIM not found');
  try {
    await authorize(ctx.store, actor, guard.product(action), { product: String(s.productId) }, body);
  } catch (e) {
    // A product the caller cannot see answers as an unknown SIM does: whether an ICCID is registered does not leak.
    if (e instanceof ApiError && e.status === 404) throw ApiError.of(404, 'SIM not found');
    throw e;
  }
  return s;
}

/** A SIM's data per day over the request's range, in Particle's shape; `metered` says whether any carrier figure was sent. */
async function dataUsage(ctx: ApiContext, s: SimCard, req: Request) {
  const { from, to } = dateRange(req);
  const { usage, total } = byDay(await ctx.store.simDataUsage(s.iccid, from, to));
  return { iccid: s.iccid, start_date: from, end_date: to, metered: usage.length > 0, usage_by_day: usage, total_bytes: total, total_mbs_used: total / MB };
}

/** A lifecycle step ({action}) or a new data limit ({mb_limit}) for a SIM. */
async function update(ctx: ApiContext, s: SimCard, b: Fields) {
  // One change at a time, as Particle's clients send them: a limit beside an action was dropped without a word.
  if ('action' in b && 'mb_limit' in b) throw ApiError.of(400, 'Send action or mb_limit, one of them');
  if ('action' in b) {
    const to = b.action === 'activate' || b.action === 'reactivate' ? 'active' : b.action === 'deactivate' ? 'inactive' : null;
    if (!to) throw ApiError.of(400, 'action must be activate, deactivate or reactivate');
    if (to === s.status) throw ApiError.of(409, 'The SIM is already ' + to);
    return { ok: true, ...simObject(await ctx.store.updateSim(s.iccid, { status: to })) };
  }
  if (!('mb_limit' in b)) throw ApiError.of(400, 'Send action (activate, deactivate, reactivate) or mb_limit');
  const limit = b.mb_limit === null || b.mb_limit === '' ? null : numberOf(b.mb_limit);
  return { ok: true, ...simObject(await ctx.store.updateSim(s.iccid, { dataLimit: limit })) };
}

/**
 * The SIMs of these products the actor may view, filtered as Particle's list is: `iccid` by part of it;
 * `deviceId` and `deviceName` match no SIM, since a SIM here is not linked to a device (no carrier tells
 * which device it is in). Before, the filters were ignored and every SIM was listed.
 */
async function simsOf(ctx: ApiContext, q: URLSearchParams, actor: Actor, products: readonly ProductRef[]) {
  const out = [];
  for (const product of products) if (decide(actor, 'sim.view', { kind: 'product', product }).allow) out.push(...(await ctx.store.listSims(product.productId)));
  const iccid = q.get('iccid')?.trim() ?? '';
  const byDevice = (q.get('deviceId') ?? q.get('deviceName') ?? '').trim() !== '';
  const { shown, meta } = paged(q, byDevice ? [] : out.filter((s) => s.iccid.includes(iccid)));
  return { sims: shown.map(simObject), meta };
}

export const simRoutes: Route[] = [
  // The SIMs of a space: the personal one (products of their own, or whose team they are on), or an org's.
  route('GET', '/v1/sims', guard.signedIn('lists only the SIMs of personal products decide() lets the actor view'), async (req, ctx, a) =>
    simsOf(ctx, req.url.searchParams, a.actor, (await visibleProducts(a.actor, ctx.store)).filter((p) => inPersonalSpace(a.actor, p)))),
  route('GET', '/v1/orgs/:org/sims', guard.orgProducts('sim.view'), async (req, ctx, a) => {
    const refs: ProductRef[] = [];
    for (const id of await ctx.store.orgProductIds(a.org!.id)) {
      const ref = await ctx.store.productRef(id);
      if (ref) refs.push(ref);
    }
    return simsOf(ctx, req.url.searchParams, a.actor, refs);
  }),
  // One SIM by ICCID alone (particle-api-js checkSIM, a HEAD; removeSIM without a product): decided on its product.
  // Particle answers checkSIM's HEAD with 204 (particle-api-js reads a 200 as a JSON body, which a HEAD cannot have).
  route('GET', '/v1/sims/:iccid', guard.signedIn('decided on the SIM\'s product (sim.view), found from the ICCID'), async (req, ctx, a) => {
    const s = simObject(await simFor(ctx, a.actor, req.params.iccid, 'sim.view', req.body));
    return req.head ? { status: 204, body: null } : s;
  }),
  route('DELETE', '/v1/sims/:iccid', guard.signedIn('decided on the SIM\'s product (sim.remove), found from the ICCID'), async (req, ctx, a) => {
    await ctx.store.removeSim((await simFor(ctx, a.actor, req.params.iccid, 'sim.remove', req.body)).iccid);
    return { status: 204, body: null };
  }),
  // particle-api-js activateSIM, deactivateSIM, reactivateSIM, updateSIM and getSIMDataUsage without a product.
  route('PUT', '/v1/sims/:iccid', guard.signedIn('decided on the SIM\'s product (sim.state for an action, sim.limit for mb_limit), found from the ICCID'), async (req, ctx, a) =>
    update(ctx, await simFor(ctx, a.actor, req.params.iccid, await updateAction(req.body), req.body), await req.body())),
  route('GET', '/v1/sims/:iccid/data_usage', guard.signedIn('decided on the SIM\'s product (sim.view), found from the ICCID'), async (req, ctx, a) =>
    dataUsage(ctx, await simFor(ctx, a.actor, req.params.iccid, 'sim.view', req.body), req)),
  route('GET', P, guard.product('sim.view'), async (req, ctx, a) => {
    return simsOf(ctx, req.url.searchParams, a.actor, [a.product!]);
  }),
  // The fleet's data (particle-api-js getFleetDataUsage): the product's SIMs summed per day. Before /:iccid, which would take the word.
  route('GET', P + '/data_usage', guard.product('sim.view'), async (req, ctx, a) => {
    const { from, to } = dateRange(req);
    const { usage, total } = byDay(await ctx.store.fleetSimDataUsage(a.product!.productId, from, to));
    const active = (await ctx.store.listSims(a.product!.productId)).filter((s) => s.status === 'active').length;
    return { start_date: from, end_date: to, total_active_sim_cards: active, usage_by_day: usage, total_bytes: total, total_mbs_used: total / MB };
  }),
  route('POST', P, guard.product('sim.add'), async (req, ctx, a) => {
    const b = await req.body();
    const list = Array.isArray(b.sims) ? b.sims : typeof b.iccid === 'string' ? [b.iccid] : null;
    if (!list || list.length === 0) throw ApiError.of(400, 'Send sims (a list of ICCIDs) or iccid');
    if (list.length > 1000) throw ApiError.of(400, 'At most 1000 SIMs per request');
    // A JSON number keeps 15 or 16 digits of a 19- or 20-digit ICCID: read as text, it named a SIM never sent.
    if (list.some((x: unknown) => typeof x !== 'string')) throw ApiError.of(400, 'sims must be a list of ICCIDs written as strings (a JSON number loses an ICCID\'s last digits)');
    const r = await ctx.store.addSims(a.product!.productId, list as string[]);
    return { ok: true, added: r.added, existing: r.existing, invalid: r.invalid };
  }),
  route('GET', P + '/:iccid', guard.product('sim.view'), async (req, ctx, a) => simObject(await ofProduct(ctx, a.product!.productId, req.params.iccid))),
  // Particle's shape: usage_by_day with mbs_used and mbs_used_cumulative; `metered` says whether any carrier figure was sent.
  route('GET', P + '/:iccid/data_usage', guard.product('sim.view'), async (req, ctx, a) => dataUsage(ctx, await ofProduct(ctx, a.product!.productId, req.params.iccid), req)),
  // A carrier's figure for one day: {date, bytes} or {date, mbs_used}; it replaces the day's earlier figure.
  route('PUT', P + '/:iccid/data_usage', guard.product('sim.add'), async (req, ctx, a) => {
    const s = await ofProduct(ctx, a.product!.productId, req.params.iccid);
    const b = await req.body();
    if (!isDay(b.date)) throw ApiError.of(400, 'date must be a day, YYYY-MM-DD');
    // A carrier reports days that have begun somewhere: up to tomorrow in UTC.
    if (b.date > new Date(Date.now() + 86_400_000).toISOString().slice(0, 10)) throw ApiError.of(400, 'date is in the future: a carrier reports days that have begun');
    if (('bytes' in b) === ('mbs_used' in b)) throw ApiError.of(400, 'Send bytes (a whole number) or mbs_used (megabytes), one of them');
    const n = 'bytes' in b ? numberOf(b.bytes) : Math.round(numberOf(b.mbs_used) * MB);
    if (!Number.isSafeInteger(n) || n < 0) throw ApiError.of(400, 'bytes must be a whole number of at least 0 (mbs_used a number of at least 0)');
    await ctx.store.recordSimData(s.iccid, b.date, n);
    return { ok: true, iccid: s.iccid, date: b.date, bytes: n, mbs_used: n / MB };
  }),
  route('PUT', P + '/:iccid', guard.product(updateAction), async (req, ctx, a) => update(ctx, await ofProduct(ctx, a.product!.productId, req.params.iccid), await req.body())),
  route('DELETE', P + '/:iccid', guard.product('sim.remove'), async (req, ctx, a) => {
    await ctx.store.removeSim((await ofProduct(ctx, a.product!.productId, req.params.iccid)).iccid);
    return { status: 204, body: null };
  }),
];
