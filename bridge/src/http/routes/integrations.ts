/**
 * A product's integrations (webhooks), as Particle's /integrations routes and
 * the older /webhooks ones that particle-api-js calls (createWebhook,
 * listWebhooks, deleteWebhook). Delivery is integrations/webhooks.ts.
 */
import type { Integration, IntegrationInput } from '../../store/store.js';
import { guard } from '../access.js';
import { route, type ApiContext, type Route } from '../app.js';
import { ApiError } from '../errors.js';
import type { Fields } from '../body.js';

export function integrationObject(i: Integration) {
  return {
    id: i.id, integration_type: 'Webhook', name: i.name, event: i.event, url: i.url, requestType: i.requestType, headers: i.headers,
    json: i.json ?? undefined, form: i.form ?? undefined, body: i.body ?? undefined, disabled: !i.enabled, errors_in_a_row: i.failures, created_at: i.createdAt.toISOString(),
  };
}

/** Particle's body: {event, url, requestType, headers, json, form, body, name, disabled}. */
function input(b: Fields, partial: boolean): Partial<IntegrationInput> {
  if (b.integration_type !== undefined && b.integration_type !== 'Webhook') throw ApiError.of(400, 'integration_type must be Webhook (the only kind this bridge delivers)');
  if (!partial) {
    if (typeof b.event !== 'string' || b.event === '') throw ApiError.of(400, 'The event field is required');
    if (typeof b.url !== 'string' || b.url === '') throw ApiError.of(400, 'The url field is required');
  }
  const out: Partial<IntegrationInput> = {};
  if (b.event !== undefined) out.event = b.event as string;
  if (b.url !== undefined) out.url = b.url as string;
  if (b.name !== undefined) out.name = String(b.name);
  if (b.requestType !== undefined) out.requestType = String(b.requestType).toUpperCase() as IntegrationInput['requestType'];
  if (b.headers !== undefined) out.headers = b.headers as IntegrationInput['headers'];
  if (b.json !== undefined) out.json = b.json;
  if (b.form !== undefined) out.form = b.form as IntegrationInput['form'];
  if (b.body !== undefined) out.body = b.body as string;
  if (b.disabled !== undefined) out.enabled = !(b.disabled === true || b.disabled === 'true');
  return out;
}

async function own(ctx: ApiContext, productId: string, id: string): Promise<Integration> {
  const i = await ctx.store.getIntegration(id);
  if (!i || String(i.productId) !== productId) throw ApiError.of(404, 'Integration not found');
  return i;
}

function routes(base: string, legacy: boolean): Route[] {
  const P = '/v1/products/:product/' + base;
  return [
    route('GET', P, guard.product('integration.view'), async (req, ctx, a) => {
      const list = (await ctx.store.listIntegrations(a.product!.productId)).map(integrationObject);
      return legacy ? list : { integrations: list };
    }),
    route('POST', P, guard.product('integration.create'), async (req, ctx, a) => {
      const i = await ctx.store.createIntegration(a.product!.productId, input(await req.body(), false) as IntegrationInput);
      ctx.webhooks.invalidate(a.product!.productId);
      return { status: 201, body: { ok: true, ...integrationObject(i) } };
    }),
    route('GET', P + '/:integration', guard.product('integration.view'), async (req, ctx, a) => integrationObject(await own(ctx, a.product!.productId, req.params.integration))),
    route('PUT', P + '/:integration', guard.product('integration.edit'), async (req, ctx, a) => {
      const i = await own(ctx, a.product!.productId, req.params.integration);
      const updated = await ctx.store.updateIntegration(i.id, input(await req.body(), true));
      ctx.webhooks.invalidate(a.product!.productId);
      return { ok: true, ...integrationObject(updated) };
    }),
    route('DELETE', P + '/:integration', guard.product('integration.edit'), async (req, ctx, a) => {
      await ctx.store.deleteIntegration((await own(ctx, a.product!.productId, req.params.integration)).id);
      ctx.webhooks.invalidate(a.product!.productId);
      return { status: 204, body: null };
    }),
  ];
}

export const integrationRoutes: Route[] = [...routes('integrations', false), ...routes('webhooks', true)];
