/** Vitals as Particle's API shows them: nested payloads and warning thresholds (protocol's VITAL_WARNINGS). */
import { VITAL_WARNINGS, type VitalValues } from '@flotilla/protocol';

/** Particle's payload nests the dotted names: device.system.uptime → {device: {system: {uptime}}}. */
export function nested(values: VitalValues): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(values)) {
    const parts = name.split('.');
    let at = out;
    for (let i = 0; i < parts.length - 1; i++) at = (at[parts[i]] ??= {}) as Record<string, unknown>;
    at[parts[parts.length - 1]] = value;
  }
  return out;
}

/** Vitals of a sample that pass a warning threshold. */
export function warnings(values: VitalValues): string[] {
  const out: string[] = [];
  for (const w of VITAL_WARNINGS) {
    const v = values[w.vital];
    if (v === undefined) continue;
    if ('below' in w && v < w.below) out.push(w.vital);
    if ('ratioAbove' in w) {
      const of = values[w.of];
      if (of !== undefined && of > 0 && v / of > w.ratioAbove) out.push(w.vital);
    }
  }
  return out;
}
