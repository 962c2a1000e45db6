/**
 * Particle's webhook templates: a mustache subset. {{{NAME}}} renders raw,
 * {{NAME}} escaped for where it lands; unknown names render empty. Pure: the
 * webhook engine renders requests and response event names with it, the
 * store checks templates with it.
 */
export interface TemplateVars {
  PARTICLE_EVENT_NAME: string;
  PARTICLE_EVENT_VALUE: string;
  PARTICLE_DEVICE_ID: string;
  PARTICLE_PUBLISHED_AT: string;
  PRODUCT_ID: string;
}

const HTML: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Renders {{{X}}} as is and {{X}} through `escape`; unknown names render empty, as mustache does. */
export function render(template: string, vars: TemplateVars, escape: (s: string) => string = (s) => s.replace(/[&<>"']/g, (c) => HTML[c])): string {
  return template.replace(/\{\{\{\s*([A-Z_]+)\s*\}\}\}|\{\{\s*([A-Z_]+)\s*\}\}/g, (_, raw: string | undefined, esc: string | undefined) => {
    const key = (raw ?? esc) as keyof TemplateVars;
    const v = Object.prototype.hasOwnProperty.call(vars, key) ? vars[key] : '';
    return raw !== undefined ? v : escape(v);
  });
}
