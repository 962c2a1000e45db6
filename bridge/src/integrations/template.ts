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

/** Particle's variables of one event. */
export interface TemplateVars {
  PARTICLE_EVENT_NAME: string;
  PARTICLE_EVENT_VALUE: string;
  PARTICLE_DEVICE_ID: string;
  PARTICLE_PUBLISHED_AT: string;
  PRODUCT_ID: string;
}

/** What names a template can see. No prototype: {{constructor}} is unknown, not Object's. */
export type View = Record<string, unknown>;

export type Escape = (s: string) => string;

const HTML: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
/** mustache's own escaping, for templates whose output has no better-known place. */
export const escapeHtml: Escape = (s) => s.replace(/[&<>"']/g, (c) => HTML[c]);
/** For text that stays as it is: a JSON value's string, a header, a form field, an event name. */
export const asIs: Escape = (s) => s;
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

/** Renders a template; {{x}} goes through `escape` (HTML by default, as mustache). */
export function render(template: string, view: View, escape: Escape = escapeHtml): string {
  // mustache hands the escape function the value itself (a number from JSON data, say).
  return writer.render(template, view, undefined, { escape: (v: unknown) => escape(String(v)) });
}

/** Why a template cannot be rendered (an unclosed tag or section), or null. */
export function templateProblem(template: string): string | null {
  try {
    writer.parse(template);
    return null;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

/** JSON text as values whose objects have no prototype (see View); undefined when it is not JSON. */
export function plainJson(text: string): unknown {
  try {
    return JSON.parse(text, (_k, v: unknown) => (v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.assign(Object.create(null) as object, v) : v));
  } catch {
    return undefined;
  }
}

/** The names an event's templates see: its data's fields (a JSON object), then Particle's variables over them. */
export function eventView(vars: TemplateVars): View {
  const view = Object.create(null) as View;
  // Most data is not JSON: look before parsing.
  if (vars.PARTICLE_EVENT_VALUE.trimStart().startsWith('{')) {
    const data = plainJson(vars.PARTICLE_EVENT_VALUE);
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
