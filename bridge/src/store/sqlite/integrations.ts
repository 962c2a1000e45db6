/**
 * Integrations (webhooks) of a product, a user or an org. What the request
 * looks like (name, device filter, method, headers, body template) is kept as
 * JSON in the `template` column: it is read and written whole, never queried.
 */
import { eventNameProblem, isDeviceId } from '@flotilla/protocol';
import { newId } from '../secrets.js';
import { StoreError } from '../store.js';
import type { Integration, IntegrationInput, IntegrationOwner, IntegrationSetting, IntegrationStore } from '../store.js';
import { parseJson, productKey, refusing } from './context.js';
import { asIs, escapeUrl, eventView, mapJsonStrings, render, responseNameProblem, templateProblem, type TemplateVars } from '../../integrations/template.js';
import type { Ctx } from './context.js';

interface IntegrationRaw {
  id: string;
  product_id: number | null;
  user_id: string | null;
  org_id: string | null;
  event_prefix: string;
  url: string;
  template: string | null;
  enabled: number;
  failures: number;
  created_at: number;
}

type Template = Pick<Integration, IntegrationSetting>;

const METHODS = ['POST', 'PUT', 'GET', 'DELETE'] as const;
/** The fields that make a request's body, of which a webhook has one at most. */
const BODY_KINDS = ['json', 'form', 'body'] as const;
const HEADER_NAME = /^[A-Za-z0-9-]{1,64}$/;
/** Template variables for checking what a URL or a response event name renders to before any event exists. */
const SAMPLE = eventView({
  PARTICLE_EVENT_NAME: 'event', PARTICLE_EVENT_VALUE: 'value', PARTICLE_DEVICE_ID: '000000000000000000000000', PARTICLE_PUBLISHED_AT: '2000-01-01T00:00:00.000Z', PRODUCT_ID: '1',
  PRODUCT_VERSION: '1', PRODUCT_USER_ID: '1',
} satisfies TemplateVars);

/**
 * SAMPLE, and a sample value for any field of an event's data: a response topic naming one
 * (`{{PARTICLE_DEVICE_ID}}/hook-response/{{req}}`) is checked as events carrying it render it.
 */
const SAMPLE_WITH_FIELDS = new Proxy(SAMPLE, {
  has: () => true,
  get: (view, name) => (typeof name === 'string' && !(name in view) ? 'field' : (view as Record<string | symbol, unknown>)[name]),
});

function integration(r: IntegrationRaw): Integration {
  const t = parseJson<Partial<Template>>(r.template ?? '{}');
  return {
    id: r.id, productId: r.product_id, userId: r.user_id, orgId: r.org_id, event: r.event_prefix, deviceId: t.deviceId ?? null, url: r.url,
    name: t.name ?? '', requestType: t.requestType ?? 'POST', headers: t.headers ?? {}, json: t.json ?? null, form: t.form ?? null, body: t.body ?? null,
    query: t.query ?? null, auth: t.auth ?? null, noDefaults: t.noDefaults === true, rejectUnauthorized: t.rejectUnauthorized !== false, responseTemplate: t.responseTemplate ?? null,
    responseTopic: t.responseTopic ?? null, errorResponseTopic: t.errorResponseTopic ?? null, enabled: r.enabled !== 0, failures: r.failures, createdAt: new Date(r.created_at),
  };
}

const isFields = (v: unknown): v is Record<string, string> => typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string');

/** Every template string of a JSON template (keys too). */
function jsonStrings(v: unknown): string[] {
  const out: string[] = [];
  mapJsonStrings(v, (s) => (out.push(s), s));
  return out;
}

function check(i: IntegrationInput): { prefix: string; url: string; template: Template } {
  const problem = typeof i.event === 'string' ? eventNameProblem(i.event, true) : 'must be a string';
  if (problem) throw new StoreError('invalid', 'event ' + problem);
  // The URL is a template ("http://host/{{bin}}"): it must render to an http(s) URL; one without a template is kept normalized.
  const urlTemplate = typeof i.url === 'string' ? i.url.trim() : '';
  let url: URL;
  try {
    if (templateProblem(urlTemplate)) throw new Error();
    url = new URL(render(urlTemplate, SAMPLE, escapeUrl));
  } catch {
    throw new StoreError('invalid', 'url must be an absolute http(s) URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new StoreError('invalid', 'url must be an absolute http(s) URL');
  const requestType = (i.requestType ?? 'POST').toUpperCase() as Integration['requestType'];
  if (!METHODS.includes(requestType)) throw new StoreError('invalid', 'requestType must be POST, PUT, GET or DELETE');
  const headers = i.headers ?? {};
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) throw new StoreError('invalid', 'headers must be an object of strings');
  for (const [k, v] of Object.entries(headers)) if (!HEADER_NAME.test(k) || typeof v !== 'string' || /[\r\n]/.test(v)) throw new StoreError('invalid', `header ${JSON.stringify(k)} is not a valid header`);
  const bodies = BODY_KINDS.filter((k) => i[k] != null).length;
  if (bodies > 1) throw new StoreError('invalid', 'give one of json, form and body');
  for (const [field, v] of [['form', i.form], ['query', i.query]] as const) if (v != null && !isFields(v)) throw new StoreError('invalid', field + ' must be an object of strings');
  if (i.body != null && typeof i.body !== 'string') throw new StoreError('invalid', 'body must be a string');
  if (i.auth != null && !(isFields(i.auth) && typeof i.auth.username === 'string' && typeof i.auth.password === 'string' && Object.keys(i.auth).length === 2)) {
    throw new StoreError('invalid', 'auth must be {username, password}, two strings');
  }
  for (const [field, v] of [['noDefaults', i.noDefaults], ['rejectUnauthorized', i.rejectUnauthorized]] as const) if (v != null && typeof v !== 'boolean') throw new StoreError('invalid', field + ' must be true or false');
  if (i.responseTemplate != null && typeof i.responseTemplate !== 'string') throw new StoreError('invalid', 'responseTemplate must be a string');
  // Every template must parse (an unclosed {{#section}} is a mistake to report now, not at the first event).
  const templates: [string, string[]][] = [
    ['headers', Object.values(headers)], ['json', jsonStrings(i.json)], ['form', Object.values(i.form ?? {})], ['body', i.body != null ? [i.body] : []],
    ['query', Object.values(i.query ?? {})], ['auth', i.auth != null ? [i.auth.username, i.auth.password] : []], ['responseTemplate', i.responseTemplate != null ? [i.responseTemplate] : []],
  ];
  for (const [field, list] of templates) {
    for (const t of list) {
      const bad = templateProblem(t);
      if (bad) throw new StoreError('invalid', `${field} has a template that does not parse: ${bad}`);
    }
  }
  for (const [field, topic] of [['responseTopic', i.responseTopic], ['errorResponseTopic', i.errorResponseTopic]] as const) {
    if (topic == null) continue;
    // What it names once rendered must be an event name (sample values in the variables).
    const problem = typeof topic !== 'string' ? 'must be a string' : (templateProblem(topic) ?? responseNameProblem(render(topic, SAMPLE_WITH_FIELDS, asIs) + '/0'));
    if (problem) throw new StoreError('invalid', field + ' must render to an event name: it ' + problem);
  }
  if (i.deviceId != null && !isDeviceId(i.deviceId)) throw new StoreError('invalid', 'deviceid must be a device ID (24 hexadecimal digits, lowercase)');
  const name = typeof i.name === 'string' && i.name.trim() ? i.name.trim().slice(0, 100) : i.event;
  const template: Template = {
    name, deviceId: i.deviceId ?? null, requestType, headers, json: i.json ?? null, form: i.form ?? null, body: i.body ?? null,
    query: i.query ?? null, auth: i.auth ?? null, noDefaults: i.noDefaults === true, rejectUnauthorized: i.rejectUnauthorized !== false, responseTemplate: i.responseTemplate ?? null,
    responseTopic: i.responseTopic ?? null, errorResponseTopic: i.errorResponseTopic ?? null,
  };
  if (JSON.stringify(template).length > 16 * 1024) throw new StoreError('invalid', 'the request template is larger than 16 KB');
  return { prefix: i.event, url: urlTemplate.includes('{{') ? urlTemplate : url.href, template };
}

export function integrationStore(ctx: Ctx): IntegrationStore {
  const { db } = ctx;
  const insert = db.prepare('INSERT INTO integrations (id, product_id, user_id, org_id, event_prefix, url, template, enabled, failures, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?)');
  const byId = db.prepare<IntegrationRaw>('SELECT * FROM integrations WHERE id = ?');
  const ofOwner = {
    product: db.prepare<IntegrationRaw>('SELECT * FROM integrations WHERE product_id = ? ORDER BY created_at, id'),
    user: db.prepare<IntegrationRaw>('SELECT * FROM integrations WHERE user_id = ? ORDER BY created_at, id'),
    org: db.prepare<IntegrationRaw>('SELECT * FROM integrations WHERE org_id = ? ORDER BY created_at, id'),
  };
  /** The owner as [column, key, what to call it when it does not exist]. */
  const ownerOf = (o: IntegrationOwner): ['product' | 'user' | 'org', number | string, string] =>
    'productId' in o ? ['product', productKey(o.productId), 'product ' + String(o.productId)] : 'userId' in o ? ['user', String(o.userId), 'user ' + o.userId] : ['org', String(o.orgId), 'org ' + o.orgId];
  const update = db.prepare('UPDATE integrations SET event_prefix = ?, url = ?, template = ?, enabled = ?, failures = ? WHERE id = ?');
  const remove = db.prepare('DELETE FROM integrations WHERE id = ?');
  // A disabled integration's count stays as it was disabled, whatever deliveries still in flight then do.
  const succeeded = db.prepare('UPDATE integrations SET failures = 0 WHERE id = ? AND failures > 0 AND enabled = 1');
  const failed = db.prepare('UPDATE integrations SET failures = failures + 1, enabled = CASE WHEN failures + 1 >= ? THEN 0 ELSE enabled END WHERE id = ? AND enabled = 1');

  return {
    async createIntegration(owner, input) {
      const [column, key, what] = ownerOf(owner);
      const { prefix, url, template } = check(input);
      const id = newId();
      const keys = { product: null as number | string | null, user: null as number | string | null, org: null as number | string | null, [column]: key };
      refusing({ foreignKey: `no ${what}` }, () => insert.run(id, keys.product, keys.user, keys.org, prefix, url, JSON.stringify(template), input.enabled === false ? 0 : 1, ctx.now()));
      return integration(byId.get(id) as IntegrationRaw);
    },

    async listIntegrations(owner) {
      const [column, key] = ownerOf(owner);
      return ofOwner[column].all(key).map(integration);
    },

    async getIntegration(id) {
      const r = typeof id === 'string' ? byId.get(id) : undefined;
      return r ? integration(r) : null;
    },

    async updateIntegration(id, changes) {
      const r = byId.get(id);
      if (!r) throw new StoreError('not_found', `no integration ${id}`);
      const current = integration(r);
      const merged = { ...current, ...Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== undefined)) } as IntegrationInput;
      // json, form and body are one choice, the request's body: one given replaces a stored one of another kind.
      if (BODY_KINDS.some((k) => changes[k] != null)) for (const k of BODY_KINDS) if (changes[k] === undefined) merged[k] = null;
      const { prefix, url, template } = check(merged);
      const enabled = changes.enabled === undefined ? current.enabled : changes.enabled === true;
      // Turning a webhook back on starts its failure count afresh.
      const failures = enabled && !current.enabled ? 0 : current.failures;
      update.run(prefix, url, JSON.stringify(template), enabled ? 1 : 0, failures, id);
      return integration(byId.get(id) as IntegrationRaw);
    },

    async deleteIntegration(id) {
      return remove.run(id).changes > 0;
    },

    async recordDelivery(id, ok, disableAfter) {
      const counted = ok ? succeeded.run(id).changes : failed.run(disableAfter, id).changes;
      const r = byId.get(id);
      return r ? { ...integration(r), disabledNow: !ok && counted > 0 && !r.enabled } : null;
    },
  };
}
