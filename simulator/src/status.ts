/**
 * What the simulator prints: a live line while it runs, a summary at the end.
 * Pure functions of the fleet's stats, so the CLI, the demo and the
 * benchmark say the same things the same way.
 */
import type { Counts, FleetStats } from './fleet.js';

const sum = (c: Counts): number => Object.values(c).reduce((a, b) => a + b, 0);
const n = (x: number): string => x.toLocaleString('en-US');
const mb = (bytes: number): string => (bytes / 1048576).toFixed(0) + ' MB';

export interface Sample {
  stats: FleetStats;
  /** performance.now() when taken. */
  at: number;
  /** process.memoryUsage().rss then. */
  rss: number;
}

/** Device → cloud publishes per second between two samples. */
export function rate(prev: Sample, now: Sample): number {
  const dt = (now.at - prev.at) / 1000;
  return dt > 0 ? (sum(now.stats.sent) - sum(prev.stats.sent)) / dt : 0;
}

/**
 * Errors the fleet saw: the error reports its devices published, as the bridge's fleet health counts them. An
 * image's crash is one of them (the agent reports it after the reboot); counted as a crash too, it was two.
 */
export function errors(s: FleetStats): number {
  return s.sent.err ?? 0;
}

/** `connected 48/50 · 3.2 msg/s · errors 1 · ota 2 receiving, 5 updated, 0 rolled back · rss 95 MB` */
export function statusLine(prev: Sample, now: Sample): string {
  const s = now.stats;
  const parts = [
    `connected ${n(s.connected)}/${n(s.devices)}` + (s.started < s.devices ? ` (ramp ${n(s.started)})` : ''),
    `${rate(prev, now).toFixed(1)} msg/s`,
    `errors ${n(errors(s))}`,
  ];
  if (s.ota.receiving || s.ota.updated || s.ota.rolledBack) parts.push(`ota ${n(s.ota.receiving)} receiving, ${n(s.ota.updated)} updated, ${n(s.ota.rolledBack)} rolled back`);
  if (s.refused) parts.push(`refused ${n(s.refused)}`);
  parts.push(`rss ${mb(now.rss)}`);
  return parts.join(' · ');
}

const breakdown = (c: Counts): string =>
  Object.entries(c)
    .filter(([, v]) => v > 0)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k || 'other'} ${n(v)}`)
    .join(', ');

/** The summary printed when the fleet stops. `baseline` is the RSS before the fleet was built. */
export function summary(first: Sample, last: Sample, baseline: number, scenario: string): string {
  const s = last.stats;
  const seconds = (last.at - first.at) / 1000;
  // RSS can end below the baseline (the collector returned more than the fleet holds): none is then the fleet's.
  // Per device started: a ramp stopped early started fewer than asked, and only those hold memory.
  const perDevice = s.started > 0 ? Math.max(0, last.rss - baseline) / s.started / 1024 : 0;
  // A rate over less than a second says little (a handful of hellos in 50 ms is not 100/s).
  const sentRate = seconds >= 1 ? `${(sum(s.sent) / seconds).toFixed(1)}/s` : 'no rate for a run under 1 s';
  const rows: [string, string][] = [
    ['connected at the end', `${n(s.connected)}/${n(s.started)}`],
    ['sessions', `${n(s.connects)} accepted, ${n(s.refused)} refused, ${n(s.disconnects)} ended`],
    ['messages sent', `${n(sum(s.sent))} (${breakdown(s.sent) || 'none'}), ${sentRate}`],
    ['messages received', `${n(sum(s.received))} (${breakdown(s.received) || 'none'})`],
    ['errors', `${n(s.sent.err ?? 0)} reports, ${n(s.crashes)} crashes`],
    ['faults injected', `${n(s.injected.drop)} drops, ${n(s.injected.flap)} flaps, ${n(s.injected.powerCut)} power cuts, ${n(s.injected.crash)} crashes`],
    ['OTA', `${n(s.ota.updated)} updated, ${n(s.ota.rolledBack)} rolled back`],
    ['firmware', Object.entries(s.versions).map(([v, c]) => `v${v}: ${n(c)}`).join(', ') || 'none booted'],
    ['memory', `RSS ${mb(last.rss)}, ${perDevice.toFixed(1)} KB per device above the ${mb(baseline)} before the fleet`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  const fleet = s.started < s.devices ? `${n(s.started)} devices started (of ${n(s.devices)})` : `${n(s.devices)} devices`;
  return [`Fleet summary: ${fleet}, scenario ${scenario}, ${formatDuration(seconds)}`, ...rows.map(([k, v]) => '  ' + k.padEnd(width) + '  ' + v)].join('\n');
}

export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  return s < 60 ? `${s} s` : s < 3600 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}
