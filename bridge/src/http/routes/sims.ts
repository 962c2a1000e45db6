/**
 * A product's SIM cards, as Particle's /sims routes: list, add, get, the
 * lifecycle (activate, deactivate, reactivate), the data limit, remove.
 * The bridge has no carrier behind it: data usage is not metered and says so.
 */
import type { Action } from '@flotilla/protocol';
import type { SimCard } from '../../store/store.js';
import { guard } from '../access.js';
import { route, type ApiContext, type Route } from '../app.js';
import { ApiError } from '../errors.js';
import type { Fields } from '../body.js';

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

export const simRoutes: Route[] = [
  route('GET', P, guard.product('sim.view'), async (req, ctx, a) => {
    const sims = (await ctx.store.listSims(a.product!.productId)).map(simObject);
    return { sims, meta: { total_pages: 1 } };
  }),
  route('POST', P, guard.product('sim.add'), async (req, ctx, a) => {
    const b = await req.body();
    const list = Array.isArray(b.sims) ? b.sims : typeof b.iccid === 'string' ? [b.iccid] : null;
    if (!list || list.length === 0) throw ApiError.of(400, 'Send sims (a list of ICCIDs) or iccid');
    if (list.length > 1000) throw ApiError.of(400, 'At most 1000 SIMs per request');
    const r = await ctx.store.addSims(a.product!.productId, list.map(String));
    return { ok: true, added: r.added, existing: r.existing, invalid: r.invalid };
  }),
  route('GET', P + '/:iccid', guard.product('sim.view'), async (req, ctx, a) => simObject(await ofProduct(ctx, a.product!.productId, req.params.iccid))),
  route('GET', P + '/:iccid/data_usage', guard.product('sim.view'), async (req, ctx, a) => {
    const s = await ofProduct(ctx, a.product!.productId, req.params.iccid);
    return { iccid: s.iccid, metered: false, usage_by_day: [], note: 'This bridge has no carrier connection: SIM data is not metered here.' };
  }),
  route('PUT', P + '/:iccid', guard.product(updateAction), async (req, ctx, a) => {
    const s = await ofProduct(ctx, a.product!.productId, req.params.iccid);
    const b = await req.body();
    if ('action' in b) {
      const to = b.action === 'activate' || b.action === 'reactivate' ? 'active' : b.action === 'deactivate' ? 'inactive' : null;
      if (!to) throw ApiError.of(400, 'action must be activate, deactivate or reactivate');
      if (b.action === 'activate' && s.status === 'active') throw ApiError.of(409, 'The SIM is already active');
      if (b.action === 'deactivate' && s.status === 'inactive') throw ApiError.of(409, 'The SIM is already inactive');
      return { ok: true, ...simObject(await ctx.store.updateSim(s.iccid, { status: to })) };
    }
    if (!('mb_limit' in b)) throw ApiError.of(400, 'Send action (activate, deactivate, reactivate) or mb_limit');
    const limit = b.mb_limit === null || b.mb_limit === '' ? null : Number(b.mb_limit);
    return { ok: true, ...simObject(await ctx.store.updateSim(s.iccid, { dataLimit: limit })) };
  }),
  route('DELETE', P + '/:iccid', guard.product('sim.remove'), async (req, ctx, a) => {
    await ctx.store.removeSim((await ofProduct(ctx, a.product!.productId, req.params.iccid)).iccid);
    return { status: 204, body: null };
  }),
];
