/**
 * Vitals as Particle's API shows them: the nested payload (enumerated vitals
 * by name), the metadata tree that says how to read each vital, and the
 * warning thresholds (protocol's VITAL_WARNINGS).
 */
import { SERVICE_VITALS, VITAL_ENUMS, VITAL_WARNINGS, VITALS, type SampleValues, type ServiceVitalName, type VitalName } from '@flotilla/protocol';

type Name = VitalName | ServiceVitalName;

/** Sets `value` at the dotted `name` of `tree`: device.system.uptime → {device: {system: {uptime}}}. */
function put(tree: Record<string, unknown>, name: string, value: unknown): void {
  const parts = name.split('.');
  let at = tree;
  for (let i = 0; i < parts.length - 1; i++) at = (at[parts[i]] ??= {}) as Record<string, unknown>;
  at[parts[parts.length - 1]] = value;
}

/** A vital's value as the API shows it: an enumerated vital by its name (a code the table lacks, from a newer device, stays a number). */
export function shown(name: Name, value: number): string | number;
export function shown(name: Name, value: number | undefined): string | number | undefined;
export function shown(name: Name, value: number | undefined): string | number | undefined {
  return value === undefined ? undefined : (VITAL_ENUMS[name as VitalName]?.name(value) ?? value);
}

/** Particle's payload: the dotted names nested, each value as shown(). */
export function payload(values: SampleValues): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(values) as [Name, number][]) put(out, name, shown(name, value));
  return out;
}

/** Vitals of a sample that pass a warning threshold. */
export function warnings(values: SampleValues): string[] {
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

/** How the console names and orders a vital, and what it says of it. */
interface About {
  title: string;
  description: string;
  /** The console's order, for the vitals it shows first (Particle's). */
  priority?: number;
  /** The vital this one is shown beside. */
  describes?: Name;
  /** What the console says when the vital is within or past its threshold (VITAL_WARNINGS). */
  healthy?: string;
  warning?: string;
}

const ABOUT: { [N in Name]: About } = {
  'device.system.uptime': { title: 'uptime', description: 'Time since the device last booted.' },
  'device.system.memory.used': {
    title: 'RAM used', priority: 6, description: 'Heap the agent and the application use, in bytes.',
    healthy: 'The device has memory to spare.', warning: 'The device is close to running out of memory; the application may fail to allocate.',
  },
  'device.system.memory.total': { title: 'RAM total', describes: 'device.system.memory.used', description: 'Heap available to the agent and the application, in bytes.' },
  'device.system.reset_reason': { title: 'last reset', description: 'Why the device last booted (Device OS reset reasons).' },
  'device.cloud.connection.status': { title: 'cloud connection', description: 'State of the connection to the cloud when the report was made.' },
  'device.cloud.connection.attempts': { title: 'connection attempts', description: 'Attempts to connect to the cloud since boot.' },
  'device.cloud.connection.disconnects': {
    title: 'disconnect events', priority: 3, description: 'Times the connection to the cloud dropped since boot.',
    healthy: 'The device keeps its connection to the cloud.', warning: 'The device loses its connection to the cloud often; a weak signal or a congested network is the usual cause.',
  },
  'device.cloud.connection.error': { title: 'connection error', description: 'The last CONNACK refusal code (0: none).' },
  'device.cloud.connection.disconnect_reason': { title: 'disconnect reason', description: 'Why the connection to the cloud last ended (Device OS reasons).' },
  'device.cloud.coap.transmit': { title: 'messages sent', description: 'Acknowledged (QoS 1) messages the device sent since boot.' },
  'device.cloud.coap.retransmit': { title: 'messages resent', description: 'Messages the device sent again for want of an acknowledgement.' },
  'device.cloud.coap.unack': { title: 'messages given up', description: 'Messages the device gave up after their retries.' },
  'device.cloud.coap.round_trip': { title: 'keepalive round trip', description: 'The last keepalive ping to pong, as the device timed it.' },
  'device.cloud.publish.rate_limited': {
    title: 'rate-limited publishes', priority: 5, description: 'Events the device held back since boot for publishing faster than its limit.',
    healthy: 'The device publishes within its rate.', warning: 'The device publishes faster than its limit and events are held back; publish less often.',
  },
  'device.cloud.publish.sent': { title: 'events published', describes: 'device.cloud.publish.rate_limited', description: 'Events the device published since boot.' },
  'device.cloud.publish.dropped': { title: 'events dropped', description: 'Messages the device dropped from a full outbound queue since boot.' },
  'device.cloud.errors.reported': { title: 'errors reported', description: 'Error reports the device sent since boot.' },
  'device.network.signal.strength': {
    title: 'signal strength', priority: 2, description: 'Strength of the radio signal, as a percentage.',
    healthy: 'The signal is strong enough.', warning: 'The signal is weak; the device may drop offline. Move it, or its antenna, to a better place.',
  },
  'device.network.signal.strengthv': { title: 'signal strength value', describes: 'device.network.signal.strength', description: 'Received signal power.' },
  'device.network.signal.quality': { title: 'signal quality', description: 'Quality of the radio signal, as a percentage.' },
  'device.network.signal.qualityv': { title: 'signal quality value', describes: 'device.network.signal.quality', description: 'Signal to noise.' },
  'device.network.connection.attempts': { title: 'network connection attempts', description: 'Attempts to join the network since boot.' },
  'device.network.connection.disconnects': { title: 'network disconnects', description: 'Times the network connection dropped since boot.' },
  'device.power.battery.charge': {
    title: 'battery charge', priority: 1, description: 'State of charge of the battery.',
    healthy: 'The battery is charged enough.', warning: 'The battery is low; charge it before the device loses power.',
  },
  'device.power.battery.state': { title: 'battery state', describes: 'device.power.battery.charge', description: 'What the battery is doing (Device OS battery states).' },
  'device.power.source': { title: 'power source', description: 'Where the device takes its power from.' },
  'service.cloud.uptime': { title: 'session uptime', description: "Time since the device's current session with the cloud began, as the cloud counts it." },
  'service.cloud.publish.sent': { title: 'events received', description: 'Events the cloud took from the device in its current session.' },
  'service.coap.round_trip': { title: 'round-trip time', priority: 4, description: 'The last request from the cloud to its answer from the device, as the cloud timed it.' },
};

/** A unit as Particle's metadata gives it: a title, and how to convert the raw number (bytes are shown in kB). */
function units(unit: string): Record<string, unknown> | undefined {
  switch (unit) {
    case 'enum': return undefined;
    case 'B': return { title: 'kB', convert: { type: 'divide', by: 1024 } };
    case '%': return { title: 'percent', convert: { type: 'round' } };
    case 's': return { title: 'seconds' };
    default: return { title: unit };
  }
}

/** Particle's diagnostics metadata: each vital, as a tree by its dotted name, says how to read it. Built once. */
function buildMetadata(): Record<string, unknown> {
  const tree: Record<string, unknown> = {};
  const all: [Name, string][] = [...VITALS.map(([, name, unit]) => [name, unit] as [Name, string]), ...SERVICE_VITALS.map(([name, unit]) => [name, unit] as [Name, string])];
  for (const [name, unit] of all) {
    const a = ABOUT[name];
    const table = VITAL_ENUMS[name as VitalName];
    const w = VITAL_WARNINGS.find((x) => x.vital === name);
    const m: Record<string, unknown> = { title: a.title, type: table ? 'string' : 'number' };
    if (a.priority !== undefined) m.priority = a.priority;
    const u = units(unit);
    if (u) m.units = u;
    if (w) m.ranges = 'below' in w ? { type: 'below', warning: w.below } : { type: 'ratio_above', ratio: w.ratioAbove, param1: w.vital, param2: w.of };
    if (table) m.values = { all: table.names };
    m.messages = a.healthy ? { description: a.description, healthy: a.healthy, warning: a.warning } : { description: a.description };
    if (a.describes) m.describes = a.describes;
    put(tree, name, m);
  }
  return tree;
}

export const METADATA = buildMetadata();

/** The vitals a CSV of samples has columns for, in the protocol's order: the device's, then the cloud's. */
export const CSV_COLUMNS: readonly Name[] = [...VITALS.map((v) => v[1]), ...SERVICE_VITALS.map((v) => v[0])];
