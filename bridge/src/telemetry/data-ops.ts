/**
 * Usage as the broker counts it, and data operations: Particle's billing unit
 * (docs/organizations.md), counted from what already crosses the broker.
 *
 * One data operation for each
 *   - event a device publishes (a device cannot publish Particle's internal
 *     spark/ events, which Particle does not count either);
 *   - variable read and function call a device answers (counted on the answer:
 *     a request to a device that never replies costs nothing);
 *   - event the cloud sends to a device (a delivery to a device's
 *     subscription: an event published through the API, a webhook's response,
 *     an app's cloud event over MQTT).
 * Not counted, as Particle does not: hello (session set-up), vitals, error
 * reports, OTA frames and status, presence, pings, vitals refreshes, signals,
 * resets, acknowledgements and keepalives, and API calls themselves.
 */
import type { Message, Messages } from '@flotilla/protocol';

/** One product's traffic on one day (UTC), since the last flush to the store. */
export interface UsageTally {
  productId: string;
  day: string;
  messages: number;
  bytes: number;
  dataOps: number;
  /** Devices that sent something. */
  devices: Set<string>;
}

/** Data operations a device's message is, once the broker accepted it (answers are counted by answeredOps). */
export function deviceMessageOps(msg: Message): number {
  return msg.kind === 'event' ? 1 : 0;
}

/** Data operations a device's answer to a request is: a variable read or a function call is one. */
export function answeredOps(op: Messages['request']['op'] | null): number {
  return op === 'var' || op === 'call' ? 1 : 0;
}

/** Data operations an event sent to one device is. */
export const CLOUD_EVENT_OPS = 1;

const DAY_MS = 86_400_000;
let dayStart = 0;
let dayText = '1970-01-01';

/** 'YYYY-MM-DD' (UTC) of `now`: made once a day, not per message (this runs for every device message). */
function utcDay(now: number): string {
  if (now < dayStart || now >= dayStart + DAY_MS) {
    dayStart = now - (now % DAY_MS);
    dayText = new Date(dayStart).toISOString().slice(0, 10);
  }
  return dayText;
}

/**
 * Adds to a product's usage of the day of `now`: a device's message (with its
 * size and sender), or data operations alone.
 */
export function tally(
  usage: Map<string, UsageTally>,
  productId: string,
  now: number,
  add: { deviceId?: string; bytes?: number; dataOps?: number },
): void {
  const day = utcDay(now);
  const key = productId + ' ' + day;
  let u = usage.get(key);
  if (!u) usage.set(key, (u = { productId, day, messages: 0, bytes: 0, dataOps: 0, devices: new Set() }));
  if (add.deviceId !== undefined) {
    u.messages++;
    u.bytes += add.bytes ?? 0;
    u.devices.add(add.deviceId);
  }
  u.dataOps += add.dataOps ?? 0;
}
