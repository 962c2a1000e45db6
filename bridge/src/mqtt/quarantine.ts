/**
 * Particle's quarantine: a device its team holds apart still connects, but
 * its own events reach no one (apps, event streams, webhooks) and it takes
 * no update (ota/desired.ts). The bridge's events about it (spark/*: online,
 * offline, flash status) still go, so its team sees it.
 */
import { isReservedEventName } from '@flotilla/protocol';
import type { DeviceRef } from './deps.js';

export function heldBack(ref: Pick<DeviceRef, 'quarantined'>, event: string): boolean {
  return ref.quarantined && !isReservedEventName(event);
}
