/**
 * Particle's webhook templates: mustache (mustache.github.io/mustache.5.html).
 * {{{name}}} renders raw and {{name}} escaped for where it lands; sections
 * {{#name}}…{{/name}}, inverted sections {{^name}}…{{/name}} and dotted
 * names {{a.b}} work; unknown names render empty.
 *
 * An event's template sees Particle's variables (and their older SPARK_
 * names) and, when the event's data is a JSON object, its fields, as
 * Particle's {{temp}} for data {"temp": 21}. A field never shadows
 * Particle's variables: a device cannot pass itself off as another.
 *
 * Pure: the webhook engine renders requests, response events and response
 * templates with it; the store checks templates with it.
 */
import Mustache from 'mustache';
import { eventNameProblem, isReservedEventName } from '@flotilla/protocol';

/** Particle's variables of one event. */
export interface TemplateVars {
  PARTICLE_EVENT_NAME: string;
  PARTICLE_EVENT_VALUE: string;
  PARTICLE_DEVICE_ID: string;
  PARTICLE_PUBLISHED_AT: string;
  PRODUCT_ID: string;
  /** The firmware version the device last said it runs; '' before its first hello, and for an event published through the API. */
  PRODUCT_VERSION: string;
  /** The id of the user or customer who claimed the device; '' when none has, and for an event published through the API. */
  PRODUCT_USER_ID: string;
}

/** What names a template can see. No prototype: {{constructor}} is unknown, not Object's. */
export type View = Record<string, unknown>;

export type Escape = (s: string) => string;

const HTML: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
/** mustache's own escaping, for templates whose output has no better-known place. */
export const escapeHtml: Escape = (s) => s.replace(/[&<>"']/g, (c) => HTML[c]);
/** For text that stays as it is: a JSON value's string, a header, a form field, an event name. */
export const asIs: Escape = (s) => s;
/** In a URL: percent-encoded (a lone surrogate from a device's data becomes U+FFFD, not an error). */
export const escapeUrl: Escape = (s) => encodeURIComponent(s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd'));
/** Inside a JSON string literal. */
export const escapeJsonString: Escape = (s) => JSON.stringify(s).slice(1, -1);

/**
 * Parsed templates, at most this many (oldest dropped first): templates are
 * integrations' settings, so they repeat; an edited one must not stay forever.
 */
const CACHE_MAX = 1000;
const writer = new Mustache.Writer();
const cache = new Map<string, string>();
(writer as unknown as { templateCache: Mustache.TemplateCache }).templateCache = {
  get: (k) => cache.get(k),
  set(k, v) {
    if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value as string);
    cache.set(k, v);
  },
  clear: () => cache.clear(),
};

/**
 * What one render may cost: token visits (sections multiply them: a section
 * inside a section over a large array), and characters produced, counted at
 * every level. Templates are operators' but their data is devices' and remote
 * servers': a render past either is stopped, not left to hold the event loop.
 */
/** A template with each tag stood for by a plain word: its shape, for checks on what every rendering shares (a URL's origin). */
export function templateShape(template: string): string {
  return template.replace(/\{\{\{?[^}]*\}?\}\}/g, 'x');
}

export const RENDER_LIMITS = { visits: 200_000, chars: 4 * 1024 * 1024 };
let spent = { visits: 0, chars: 0 };
type RenderTokens = (tokens: unknown[], ...rest: unknown[]) => string;
const renderTokens = (Mustache.Writer.prototype as unknown as { renderTokens: RenderTokens }).renderTokens;
(writer as unknown as { renderTokens: RenderTokens }).renderTokens = function (this: unknown, tokens, ...rest) {
  spent.visits += tokens.length;
  if (spent.visits > RENDER_LIMITS.visits) throw new Error(`the template takes more than ${RENDER_LIMITS.visits} steps to render`);
  const out = renderTokens.call(this, tokens, ...rest);
  spent.chars += out.length;
  if (spent.chars > RENDER_LIMITS.chars) throw new Error(`the template renders to more than ${RENDER_LIMITS.chars} characters`);
  return out;
};

/** A JSON template with `f` applied to every string in it, keys too; other values pass through. */
export function mapJsonStrings(value: unknown, f: (s: string) => string): unknown {
  if (typeof value === 'string') return f(value);
  if (Array.isArray(value)) return value.map((v) => mapJsonStrings(v, f));
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [f(k), mapJsonStrings(v, f)]));
  return value;
}

/** Renders a template; {{x}} goes through `escape` (HTML by default, as mustache). Throws past RENDER_LIMITS. */
export function render(template: string, view: View, escape: Escape = escapeHtml): string {
  spent = { visits: 0, chars: 0 };
  // mustache hands the escape function the value itself (a number from JSON data, say).
  return writer.render(template, view, undefined, { escape: (v: unknown) => escape(String(v)) });
}

/** Why a template cannot be rendered (an unclosed tag or section), or null. */
/**
 * Why a webhook's response or error topic, rendered, names no event it may publish: an event name, and
 * not one Particle keeps (spark/status from a device's data would read as the cloud's own). '' when it does.
 */
export function responseNameProblem(name: string): string {
  return eventNameProblem(name) || (isReservedEventName(name) ? 'starts with "spark", which Particle keeps for itself' : '');
}

export function templateProblem(template: string): string | null {
  try {
    writer.parse(template);
    return null;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

/**
 * JSON text as values with no prototype, objects and arrays alike (mustache
 * calls a function it finds: `{{list.forEach}}` must find nothing);
 * undefined when it is not JSON. Keys in `drop` are left out at every depth.
 */
export function plainJson(text: string, drop?: ReadonlySet<string>): unknown {
  try {
    return JSON.parse(text, (_k, v: unknown) => {
      if (v === null || typeof v !== 'object') return v;
      if (Array.isArray(v)) return Object.setPrototypeOf(v, null) as unknown[];
      const o = Object.create(null) as Record<string, unknown>;
      for (const [k, x] of Object.entries(v)) if (!drop?.has(k)) o[k] = x;
      return o;
    });
  } catch {
    return undefined;
  }
}

/** Particle's names as a template sees them. */
const RESERVED = new Set(['PARTICLE_EVENT_NAME', 'PARTICLE_EVENT_VALUE', 'PARTICLE_DEVICE_ID', 'PARTICLE_PUBLISHED_AT', 'PRODUCT_ID', 'PRODUCT_VERSION', 'PRODUCT_USER_ID', 'SPARK_EVENT_NAME', 'SPARK_EVENT_VALUE', 'SPARK_CORE_ID', 'SPARK_PUBLISHED_AT']);

/**
 * The names an event's templates see: its data's fields (a JSON object), then
 * Particle's variables over them. Data keys named as Particle's are dropped at
 * every depth: inside a section mustache looks in the section's object first.
 */
export function eventView(vars: TemplateVars): View {
  const view = Object.create(null) as View;
  // Most data is not JSON: look before parsing.
  if (vars.PARTICLE_EVENT_VALUE.trimStart().startsWith('{')) {
    const data = plainJson(vars.PARTICLE_EVENT_VALUE, RESERVED);
    if (data !== undefined && data !== null && typeof data === 'object' && !Array.isArray(data)) Object.assign(view, data);
  }
  Object.assign(view, vars, {
    SPARK_EVENT_NAME: vars.PARTICLE_EVENT_NAME,
    SPARK_EVENT_VALUE: vars.PARTICLE_EVENT_VALUE,
    SPARK_CORE_ID: vars.PARTICLE_DEVICE_ID,
    SPARK_PUBLISHED_AT: vars.PARTICLE_PUBLISHED_AT,
  });
  return view;
}
