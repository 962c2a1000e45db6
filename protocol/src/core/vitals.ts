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
export const VITALS = [
  [1, 'device.system.uptime', 's'],
  [2, 'device.system.memory.used', 'B'],
  [3, 'device.system.memory.total', 'B'],
  [4, 'device.system.reset_reason', 'enum'], // Particle's sys:reset
  [10, 'device.cloud.connection.status', 'enum'],
  [11, 'device.cloud.connection.attempts', 'count'],
  [12, 'device.cloud.connection.disconnects', 'count'],
  [13, 'device.cloud.connection.error', 'enum'],
  [14, 'device.cloud.connection.disconnect_reason', 'enum'],
  [20, 'device.cloud.coap.transmit', 'count'],
  [21, 'device.cloud.coap.retransmit', 'count'],
  [22, 'device.cloud.coap.unack', 'count'],
  [23, 'device.cloud.coap.round_trip', 'ms'],
  [30, 'device.cloud.publish.rate_limited', 'count'],
  [31, 'device.cloud.publish.sent', 'count'], // flotilla: Particle counts this cloud-side
  [32, 'device.cloud.publish.dropped', 'count'], // flotilla: QoS 0 dropped from a full outbound queue
  [33, 'device.cloud.errors.reported', 'count'], // flotilla: error reports sent
  [40, 'device.network.signal.strength', '%'],
  [41, 'device.network.signal.strengthv', 'dBm'],
  [42, 'device.network.signal.quality', '%'],
  [43, 'device.network.signal.qualityv', 'dB'],
  [44, 'device.network.connection.attempts', 'count'],
  [45, 'device.network.connection.disconnects', 'count'],
  [50, 'device.power.battery.charge', '%'],
  [51, 'device.power.battery.state', 'enum'],
  [52, 'device.power.source', 'enum'],
] as const;

export type VitalName = (typeof VITALS)[number][1];
/** A vitals report: any subset of the metrics, each a finite number. */
export type VitalValues = { [N in VitalName]?: number };

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
 * below `below`, or when its ratio to `of` is above `ratioAbove`.
 */
export const VITAL_WARNINGS = [
  { vital: 'device.power.battery.charge', below: 20 },
  { vital: 'device.network.signal.strength', below: 20 },
  { vital: 'device.system.memory.used', of: 'device.system.memory.total', ratioAbove: 0.9 },
  { vital: 'device.cloud.publish.rate_limited', of: 'device.cloud.publish.sent', ratioAbove: 0.05 },
] as const;
