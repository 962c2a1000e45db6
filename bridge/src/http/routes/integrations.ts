/**
 * Integrations (webhooks) of a product, of an org and of a user, as
 * Particle's /integrations routes (particle-api-js createIntegration,
 * listIntegrations, editIntegration, deleteIntegration with `product`, `org`
 * or neither), and the older /webhooks ones of a product or a user
 * (createWebhook, listWebhooks, deleteWebhook; particle-cli's webhook
 * commands). Delivery is integrations/webhooks.ts.
 *
 * Who: a product's are the product team's (the matrix's Integrations rows);
 * an org's are its team's, by the org role cascaded to its products; a user's
 * are their own, for the devices of their personal products.
 */
import { isDeviceId, type Action } from '@flotilla/protocol';
import { integrationOwnerKey, ownerOfIntegration, ownersOf, type Integration, type IntegrationInput, type IntegrationOwner } from '../../store/store.js';
import { ambiguousName, devicesNamed, guard, seesDevice, person, type Access, type Guard } from '../access.js';
import { route, type ApiContext, type Route } from '../app.js';
import { ApiError } from '../errors.js';
import { flag, text, type Fields } from '../body.js';
import { templateShape } from '../../integrations/template.js';
import type { ProductRef } from '../../policy/types.js';

/** What a response shows of the integration's Basic auth password: it stays with the bridge. Sent back in a PUT, it keeps the password. */
export const PASSWORD_MASK = '********';

export function integrationObject(i: Integration) {
  return {
    id: i.id, integration_type: 'Webhook', name: i.name, event: i.event, deviceID: i.deviceId ?? undefined, url: i.url, requestType: i.requestType, headers: i.headers,
    json: i.json ?? undefined, form: i.form ?? undefined, body: i.body ?? undefined, query: i.query ?? undefined,
    auth: i.auth ? { username: i.auth.username, password: PASSWORD_MASK } : undefined, noDefaults: i.noDefaults, rejectUnauthorized: i.rejectUnauthorized,
    responseTemplate: i.responseTemplate ?? undefined, responseTopic: i.responseTopic ?? undefined, errorResponseTopic: i.errorResponseTopic ?? undefined,
    disabled: !i.enabled, errors_in_a_row: i.failures, created_at: i.createdAt.toISOString(),
  };
}

/** An optional field as sent: '' or null clears it (any device, the default event name); the store checks the rest. */
const cleared = (v: unknown): string | null => (v === '' || v === null ? null : (v as string));

/**
 * Particle's body: {event (or eventName), url, deviceid, requestType, headers, json, form, body, query, auth, noDefaults,
 * rejectUnauthorized, responseTemplate, responseTopic, errorResponseTopic, name, disabled}; particle-api-js sends the
 * device as deviceid (integrations) or deviceId (webhooks).
 */
function input(ctx: ApiContext, b: Fields, partial: boolean): Partial<IntegrationInput> {
  if (b.integration_type !== undefined && b.integration_type !== 'Webhook') throw ApiError.of(400, 'integration_type must be Webhook (the only kind this bridge delivers)');
  const event = b.event ?? b.eventName;
  if (!partial) {
    if (typeof event !== 'string' || event === '') throw ApiError.of(400, 'The event field is required');
    if (typeof b.url !== 'string' || b.url === '') throw ApiError.of(400, 'The url field is required');
  }
  const out: Partial<IntegrationInput> = {};
  if (event !== undefined) out.event = text(event, 'event');
  if (b.url !== undefined) {
    out.url = text(b.url, 'url');
    // A literal address delivery would refuse is refused now; a host name is checked as it resolves.
    const why = ctx.webhooks.urlRefusal(out.url);
    if (why) throw ApiError.of(400, 'url: ' + why);
  }
  if (b.name !== undefined) out.name = text(b.name, 'name');
  const device = b.deviceid ?? b.deviceId ?? b.deviceID;
  if (device !== undefined) out.deviceId = cleared(typeof device === 'string' && isDeviceId(device.toLowerCase()) ? device.toLowerCase() : device);
  if (b.requestType !== undefined) out.requestType = text(b.requestType, 'requestType').toUpperCase() as IntegrationInput['requestType'];
  if (b.headers !== undefined) out.headers = b.headers as IntegrationInput['headers'];
  if (b.json !== undefined) out.json = b.json;
  if (b.form !== undefined) out.form = b.form as IntegrationInput['form'];
  if (b.body !== undefined) out.body = b.body === null ? null : text(b.body, 'body');
  if (b.query !== undefined) out.query = b.query as IntegrationInput['query'];
  if (b.auth !== undefined) out.auth = b.auth as IntegrationInput['auth'];
  if (b.noDefaults !== undefined) out.noDefaults = flag(b.noDefaults, 'noDefaults');
  if (b.rejectUnauthorized !== undefined) out.rejectUnauthorized = flag(b.rejectUnauthorized, 'rejectUnauthorized');
  if (b.responseTemplate !== undefined) out.responseTemplate = cleared(b.responseTemplate);
  if (b.responseTopic !== undefined) out.responseTopic = cleared(b.responseTopic);
  if (b.errorResponseTopic !== undefined) out.errorResponseTopic = cleared(b.errorResponseTopic);
  if (b.disabled !== undefined) out.enabled = !flag(b.disabled, 'disabled');
  return out;
}

/**
 * The device filter names one of the integration's devices (those whose
 * events reach it: the rule delivery uses) that the caller can see: a filter
 * on any other device would never fire. Particle's filter takes a device's
 * name too: the one device of that name becomes the filter.
 */
async function deviceFilter(ctx: ApiContext, a: Access, owner: IntegrationOwner, input: Partial<IntegrationInput>): Promise<Partial<IntegrationInput>> {
  const given = input.deviceId;
  if (typeof given !== 'string') return input;
  const key = integrationOwnerKey(owner);
  const reaches = (p: ProductRef) => ownersOf(p).some((o) => integrationOwnerKey(o) === key);
  if (isDeviceId(given)) {
    const d = await ctx.store.deviceAccess(given);
    const seen = d !== null && reaches(d.product) && seesDevice(a.actor, given, d.product, d.customerId);
    // Unknown and not yours answer alike: the filter does not tell whether a device exists.
    if (!seen) throw ApiError.of(400, `deviceid: no device ${given} among this integration's devices that you can see`);
    return input;
  }
  const ids = await devicesNamed(ctx.store, a.actor, given, reaches);
  if (ids.length > 1) throw ambiguousName(given, ids, 'deviceid: ');
  if (ids.length === 0) throw ApiError.of(400, `deviceid: no device named ${JSON.stringify(given)} among this integration's devices that you can see`);
  return { ...input, deviceId: ids[0] };
}

/** A URL's origin, templates standing for a plain word (so "https://{{host}}/x" compares as a template). */
function originOf(url: string): string {
  try {
    return new URL(templateShape(url)).origin;
  } catch {
    return url;
  }
}

/**
 * The stored Basic auth password goes nowhere new: sent back as the mask a
 * GET shows, it is kept, but only for the host it was set for. Moving the URL
 * to another origin needs the password again (or auth: null), or anyone who
 * may edit the integration could read the password at a server of theirs.
 */
function keepPassword(i: Integration, changes: Partial<IntegrationInput>): Partial<IntegrationInput> {
  const masked = changes.auth?.password === PASSWORD_MASK;
  if (masked && !i.auth) throw ApiError.of(400, 'auth.password: give the password (there is none stored to keep)');
  const moves = changes.url !== undefined && originOf(changes.url) !== originOf(i.url);
  if (moves && i.auth && (changes.auth === undefined || masked)) {
    throw ApiError.of(400, 'The url moves to another host: give auth again with its password (the stored one is only sent where it was set for), or auth: null to drop it');
  }
  return masked && i.auth ? { ...changes, auth: { ...changes.auth!, password: i.auth.password } } : changes;
}

/** Where an owner's integrations live, who may touch them, and whose they are. */
interface Scope {
  /** The path before /integrations or /webhooks. */
  base: string;
  guard(action: Action): Guard;
  owner(a: Access): IntegrationOwner;
  /** It has Particle's older /webhooks paths too. */
  legacy: boolean;
}

const SCOPES: Scope[] = [
  { base: '/v1/products/:product', guard: guard.product, owner: (a) => ({ productId: a.product!.productId }), legacy: true },
  { base: '/v1/orgs/:org', guard: guard.orgProducts, owner: (a) => ({ orgId: a.org!.id }), legacy: false },
  {
    base: '/v1',
    guard: () => guard.signedIn("a user's own integrations, for the devices of their personal products: no one else's are reachable here"),
    owner: (a) => ({ userId: person(a.actor, 'has integrations of their own').userId }),
    legacy: true,
  },
];

/** The integration when it is the owner's; 404 for any other (existence does not leak). */
async function own(ctx: ApiContext, owner: IntegrationOwner, id: string): Promise<Integration> {
  const i = await ctx.store.getIntegration(id);
  if (!i || integrationOwnerKey(ownerOfIntegration(i)) !== integrationOwnerKey(owner)) throw ApiError.of(404, 'Integration not found');
  return i;
}

function routes(scope: Scope, collection: 'integrations' | 'webhooks'): Route[] {
  const P = scope.base + '/' + collection;
  const legacy = collection === 'webhooks';
  const { guard: g, owner } = scope;
  return [
    route('GET', P, g('integration.view'), async (req, ctx, a) => {
      const list = (await ctx.store.listIntegrations(owner(a))).map(integrationObject);
      return legacy ? list : { integrations: list };
    }),
    route('POST', P, g('integration.create'), async (req, ctx, a) => {
      const o = owner(a);
      const i = await ctx.store.createIntegration(o, (await deviceFilter(ctx, a, o, input(ctx, await req.body(), false))) as IntegrationInput);
      ctx.webhooks.invalidate(o);
      return { status: 201, body: { ok: true, ...integrationObject(i) } };
    }),
    route('GET', P + '/:integration', g('integration.view'), async (req, ctx, a) => integrationObject(await own(ctx, owner(a), req.params.integration))),
    route('PUT', P + '/:integration', g('integration.edit'), async (req, ctx, a) => {
      const o = owner(a);
      const i = await own(ctx, o, req.params.integration);
      const changes = keepPassword(i, await deviceFilter(ctx, a, o, input(ctx, await req.body(), true)));
      const updated = await ctx.store.updateIntegration(i.id, changes);
      ctx.webhooks.invalidate(o);
      return { ok: true, ...integrationObject(updated) };
    }),
    route('DELETE', P + '/:integration', g('integration.edit'), async (req, ctx, a) => {
      const o = owner(a);
      await ctx.store.deleteIntegration((await own(ctx, o, req.params.integration)).id);
      ctx.webhooks.invalidate(o);
      return { status: 204, body: null };
    }),
  ];
}

export const integrationRoutes: Route[] = SCOPES.flatMap((s) => [...routes(s, 'integrations'), ...(s.legacy ? routes(s, 'webhooks') : [])]);
