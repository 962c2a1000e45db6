/**
 * Device vitals: Particle's metric names, each with the small integer that
 * stands for it on the wire (docs/protocol.md, "vitals"). The list is the
 * single table; both lookups are built from it by a loop.
 *
 * Names under `device.cloud.coap.*` keep Particle's spelling so existing
 * dashboards read them; on Flotilla they count MQTT packets (transmit: QoS 1
 * publishes sent, retransmit: resent with DUP, unack: given up, round_trip:
 * last PINGREQ → PINGRESP in ms). Names marked "flotilla" have no Particle
 * equivalent.
 */

import { VITAL } from './codes.js';
import { BATTERY_STATES, CLOUD_STATUSES, DISCONNECT_REASONS, POWER_SOURCES, RESET_REASONS, type EnumTable } from './enums.js';

export { VITAL };

export const VITALS = [
  [VITAL.systemUptime, 'device.system.uptime', 's'],
  [VITAL.systemMemoryUsed, 'device.system.memory.used', 'B'],
  [VITAL.systemMemoryTotal, 'device.system.memory.total', 'B'],
  [VITAL.systemResetReason, 'device.system.reset_reason', 'enum'], // Particle's sys:reset
  [VITAL.cloudConnectionStatus, 'device.cloud.connection.status', 'enum'],
  [VITAL.cloudConnectionAttempts, 'device.cloud.connection.attempts', 'count'],
  [VITAL.cloudConnectionDisconnects, 'device.cloud.connection.disconnects', 'count'],
  [VITAL.cloudConnectionError, 'device.cloud.connection.error', 'enum'],
  [VITAL.cloudConnectionDisconnectReason, 'device.cloud.connection.disconnect_reason', 'enum'],
  [VITAL.cloudCoapTransmit, 'device.cloud.coap.transmit', 'count'],
  [VITAL.cloudCoapRetransmit, 'device.cloud.coap.retransmit', 'count'],
  [VITAL.cloudCoapUnack, 'device.cloud.coap.unack', 'count'],
  [VITAL.cloudCoapRoundTrip, 'device.cloud.coap.round_trip', 'ms'],
  [VITAL.cloudPublishRateLimited, 'device.cloud.publish.rate_limited', 'count'],
  [VITAL.cloudPublishSent, 'device.cloud.publish.sent', 'count'], // flotilla: Particle counts this cloud-side
  [VITAL.cloudPublishDropped, 'device.cloud.publish.dropped', 'count'], // flotilla: QoS 0 dropped from a full outbound queue
  [VITAL.cloudErrorsReported, 'device.cloud.errors.reported', 'count'], // flotilla: error reports sent
  [VITAL.networkSignalStrength, 'device.network.signal.strength', '%'],
  [VITAL.networkSignalStrengthv, 'device.network.signal.strengthv', 'dBm'],
  [VITAL.networkSignalQuality, 'device.network.signal.quality', '%'],
  [VITAL.networkSignalQualityv, 'device.network.signal.qualityv', 'dB'],
  [VITAL.networkConnectionAttempts, 'device.network.connection.attempts', 'count'],
  [VITAL.networkConnectionDisconnects, 'device.network.connection.disconnects', 'count'],
  [VITAL.powerBatteryCharge, 'device.power.battery.charge', '%'],
  [VITAL.powerBatteryState, 'device.power.battery.state', 'enum'],
  [VITAL.powerSource, 'device.power.source', 'enum'],
] as const;

export type VitalName = (typeof VITALS)[number][1];
/** A vitals report: any subset of the metrics, each a finite number. */
export type VitalValues = { [N in VitalName]?: number };

/**
 * The enumerated vitals: a device reports the code, the cloud's API shows its
 * name (Particle's payload says "connected", "not_charging", "VIN").
 */
export const VITAL_ENUMS: { readonly [N in VitalName]?: EnumTable<string> } = {
  'device.system.reset_reason': RESET_REASONS,
  'device.cloud.connection.status': CLOUD_STATUSES,
  'device.cloud.connection.disconnect_reason': DISCONNECT_REASONS,
  'device.power.battery.state': BATTERY_STATES,
  'device.power.source': POWER_SOURCES,
};

/**
 * What the cloud adds to each report, under Particle's `service` names: its
 * own view of the device's session. Never on the wire (a device cannot report
 * them); stored with the sample.
 */
export const SERVICE_VITALS = [
  ['service.cloud.uptime', 's'], // since the session's CONNECT
  ['service.cloud.publish.sent', 'count'], // events the cloud took from the device in this session
  ['service.coap.round_trip', 'ms'], // the last request → reply the cloud timed in this session
] as const;

export type ServiceVitalName = (typeof SERVICE_VITALS)[number][0];
/** A stored sample: what the device reported and what the cloud added. */
export type SampleValues = VitalValues & { [N in ServiceVitalName]?: number };

const byCode: { [code: number]: VitalName } = {};
const byName: { [name: string]: number } = {};
for (let i = 0; i < VITALS.length; i++) {
  byCode[VITALS[i][0]] = VITALS[i][1];
  byName[VITALS[i][1]] = VITALS[i][0];
}

export function vitalName(code: number): VitalName | undefined {
  return Object.prototype.hasOwnProperty.call(byCode, code) ? byCode[code] : undefined;
}

export function vitalCode(name: string): number | undefined {
  return Object.prototype.hasOwnProperty.call(byName, name) ? byName[name] : undefined;
}

/**
 * Warning thresholds, Particle's Device Vitals metadata: a vital warns when
 * below `below`, or when its ratio to `of` is above `ratioAbove`. Particle
 * divides disconnects and rate-limited publishes by its cloud's counts; here
 * both sides of a ratio are the device's own since its boot, so a reconnect
 * does not make an old count look like a new rate.
 */
export const VITAL_WARNINGS = [
  { vital: 'device.power.battery.charge', below: 20 },
  { vital: 'device.network.signal.strength', below: 20 },
  { vital: 'device.system.memory.used', of: 'device.system.memory.total', ratioAbove: 0.9 },
  // Particle's 0.0013 per second of uptime: more than about 4.7 disconnects an hour.
  { vital: 'device.cloud.connection.disconnects', of: 'device.system.uptime', ratioAbove: 0.0013 },
  { vital: 'device.cloud.publish.rate_limited', of: 'device.cloud.publish.sent', ratioAbove: 0.05 },
] as const;
