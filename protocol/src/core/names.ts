/**
 * Identifier and name rules shared by topics and messages. Each check returns
 * a reason (for a ProtocolError message) or '' when the value is acceptable,
 * so callers choose the error code and field.
 */
import { LIMITS } from './limits.js';

/** A device id: 24 lowercase hex characters (12 bytes), as Particle's. */
export const DEVICE_ID_LENGTH = 24;

export function isDeviceId(s: unknown): s is string {
  if (typeof s !== 'string' || s.length !== DEVICE_ID_LENGTH) return false;
  for (let i = 0; i < DEVICE_ID_LENGTH; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
  }
  return true;
}

/** [A-Za-z0-9_-], the characters allowed in every name and id level. */
function isWordChar(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c === 45;
}

/**
 * Variable and function names: 1..64 bytes of [A-Za-z0-9_.-]. They appear in
 * HTTP paths (`/v1/devices/:id/:name`), so no '/', '?', '%' or spaces.
 */
export function nameProblem(s: string): string {
  if (s.length === 0) return 'must not be empty';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!isWordChar(c) && c !== 46) return 'may only contain letters, digits, "_", "-" and "."';
  }
  // ASCII only from here on, so characters are bytes.
  if (s.length > LIMITS.nameMaxBytes) return 'is ' + s.length + ' bytes, over the limit of ' + LIMITS.nameMaxBytes;
  // A path segment of . or .. is no segment: /v1/devices/:id/.. is another route.
  if (s === '.' || s === '..') return 'must not be "." or ".." (it is a segment of an HTTP path)';
  return '';
}

/**
 * Event names and subscription prefixes: 1..64 bytes of [A-Za-z0-9_.:-] in
 * '/'-separated levels. They become MQTT topic levels, so no empty level, no
 * wildcard, no '$', no NUL. A prefix (`allowPartial`) may end with '/'.
 */
export function eventNameProblem(s: string, allowPartial?: boolean): string {
  if (s.length === 0) return 'must not be empty';
  let prev = 47; // as if preceded by '/', so a leading '/' is an empty level
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 47) {
      if (prev === 47) return 'must not have an empty level';
    } else if (!isWordChar(c) && c !== 46 && c !== 58) {
      return 'may only contain letters, digits, "_", "-", ".", ":" and "/"';
    }
    prev = c;
  }
  if (prev === 47 && !allowPartial) return 'must not end with "/"';
  // ASCII only from here on, so characters are bytes.
  if (s.length > LIMITS.nameMaxBytes) return 'is ' + s.length + ' bytes, over the limit of ' + LIMITS.nameMaxBytes;
  return '';
}

/** Devices may not publish Particle's reserved names (`spark...`), as on Particle. */
export function isReservedEventName(s: string): boolean {
  return s.substring(0, 5).toLowerCase() === 'spark';
}

/**
 * The one reserved name a device publishes: its claim code, once connected
 * (Device OS sends the code it was given during setup the same way). The
 * bridge takes it and never passes it on.
 */
export const CLAIM_CODE_EVENT = 'spark/device/claim/code';

/** App (operator) MQTT client ids, used as a topic level: 1..64 of [A-Za-z0-9_-]. */
export function isClientId(s: unknown): s is string {
  if (typeof s !== 'string' || s.length === 0 || s.length > LIMITS.clientIdMaxBytes) return false;
  for (let i = 0; i < s.length; i++) if (!isWordChar(s.charCodeAt(i))) return false;
  return true;
}
