/**
 * The HTTP request a webhook makes for one event, and what a response turns
 * into, as Particle's webhooks do. Pure: integrations/webhooks.ts sends it.
 *
 * Particle's default data, {event, data, published_at, coreid}, goes with
 * every request unless the integration says `noDefaults`:
 *   - GET and DELETE carry no body: the default data goes in the query
 *     string, beside the integration's own `query`;
 *   - `json`: an object whose strings are templates (or one template whose
 *     output is JSON), the default data under its fields;
 *   - `form`: fields whose values are templates, the default data under them;
 *   - `body`: one template, sent as it renders (no default data);
 *   - none of them: the default data as a form (Particle's "Web Form").
 * `url`, `headers`, `query` and `auth` ({username, password}, sent as HTTP
 * Basic) are templates too.
 */
import type { Integration } from '../store/store.js';
import { asIs, escapeJsonString, escapeUrl, eventView, mapJsonStrings, plainJson, render, type TemplateVars, type View } from './template.js';

export interface WebhookRequest {
  url: string;
  method: Integration['requestType'];
  /** Lowercase names. */
  headers: Record<string, string>;
  body: string | undefined;
  /** False: an https URL's certificate is not checked (the integration's rejectUnauthorized). */
  rejectUnauthorized: boolean;
}

/** What Node (and RFC 9110's field-value) lets a header value hold: tab, visible ASCII and space, obs-text. */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

const renderFields = (fields: Record<string, string> | null, view: View): Record<string, string> =>
  Object.fromEntries(Object.entries(fields ?? {}).map(([k, v]) => [k, render(v, view, asIs)]));

/** A "." or ".." path segment, as a URL reads one (%2E included). */
const DOT_SEGMENT = /(^|\/)(\.|%2e){1,2}(\/|$)/i;

/**
 * The path of a rendered URL as the URL parser will read it: spaces and control characters around it
 * trimmed, tabs and line breaks dropped, a backslash a slash (http and https), so a raw {{{value}}}
 * cannot hide a dot segment from the check.
 */
function pathAsParsed(rendered: string): string {
  // eslint-disable-next-line no-control-regex
  const s = rendered.replace(/^[\u0000-\u0020]+|[\u0000-\u0020]+$/g, '').replace(/[\t\n\r]/g, '').replace(/\\/g, '/');
  return s.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, '').split(/[?#]/)[0];
}

/** The request an integration makes for one event. */
export function requestFor(i: Integration, vars: TemplateVars): WebhookRequest {
  const view = eventView(vars);
  const defaults: Record<string, string> = i.noDefaults
    ? {}
    : { event: vars.PARTICLE_EVENT_NAME, data: vars.PARTICLE_EVENT_VALUE, published_at: vars.PARTICLE_PUBLISHED_AT, coreid: vars.PARTICLE_DEVICE_ID };
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(i.headers)) {
    const value = render(v, view, asIs);
    // An event's data may hold a line break (a header it would split) or a character HTTP headers cannot carry.
    if (!HEADER_VALUE.test(value)) throw new Error(`header ${k} holds a line break or a character a header cannot carry once filled in`);
    headers[k.toLowerCase()] = value;
  }
  if (i.auth !== null && headers.authorization === undefined) {
    headers.authorization = 'Basic ' + Buffer.from(render(i.auth.username, view, asIs) + ':' + render(i.auth.password, view, asIs)).toString('base64');
  }

  const rendered = render(i.url, view, escapeUrl);
  // encodeURIComponent leaves dots alone and a URL resolves "." and ".." (%2E too): a value of exactly that
  // would move the request, and its credentials, elsewhere on the target. Refused, as a header with a line break.
  if (DOT_SEGMENT.test(pathAsParsed(rendered))) {
    throw new Error('the URL, once filled in, has a "." or ".." path segment');
  }
  const url = new URL(rendered);
  const bodiless = i.requestType === 'GET' || i.requestType === 'DELETE';
  for (const [k, v] of Object.entries({ ...(bodiless ? defaults : {}), ...renderFields(i.query, view) })) url.searchParams.append(k, v);

  let body: string | undefined;
  if (bodiless) body = undefined;
  else if (i.json !== null) {
    let json: unknown;
    if (typeof i.json === 'string') {
      // One template whose output is JSON text: {{x}} is escaped for a JSON string, {{{x}}} lands as it is.
      const text = render(i.json, view, escapeJsonString);
      json = plainJson(text);
      if (json === undefined) body = text;
    } else json = mapJsonStrings(i.json, (s) => render(s, view, asIs));
    if (body === undefined) body = JSON.stringify(isObject(json) ? { ...defaults, ...json } : json);
    headers['content-type'] ??= 'application/json';
  } else if (i.body !== null) {
    body = render(i.body, view);
  } else if (i.form !== null || !i.noDefaults) {
    body = new URLSearchParams({ ...defaults, ...renderFields(i.form, view) }).toString();
    headers['content-type'] ??= 'application/x-www-form-urlencoded';
  }
  return { url: url.href, method: i.requestType, headers, body, rejectUnauthorized: i.rejectUnauthorized };
}

/**
 * The data of the response event: the integration's responseTemplate
 * rendered over the response when it is JSON (mustache escaping, as
 * Particle: {{{x}}} for raw text), the response as it came otherwise, and
 * also when the template cannot render it (past the render limits).
 */
export function responseData(i: Pick<Integration, 'responseTemplate'>, response: string): string {
  if (i.responseTemplate === null) return response;
  const json = plainJson(response);
  if (json === null || typeof json !== 'object') return response;
  try {
    return render(i.responseTemplate, json as View);
  } catch {
    return response;
  }
}

/**
 * A response event's data cut into pieces of at most `size` bytes of UTF-8
 * (Particle's 512), never inside a character, after at most `max` bytes (its
 * 100 KB): each piece is whole text a device can take as an event.
 */
export function pieces(text: string, size: number, max: number): string[] {
  const out: string[] = [];
  let piece = '';
  let bytes = 0;
  let total = 0;
  for (const ch of text) {
    const n = Buffer.byteLength(ch);
    if (total + n > max) break;
    if (bytes + n > size) {
      out.push(piece);
      piece = '';
      bytes = 0;
    }
    piece += ch;
    bytes += n;
    total += n;
  }
  if (piece !== '') out.push(piece);
  return out;
}
