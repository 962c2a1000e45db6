/**
 * Two-way tables between protocol names and their wire codes, built by a loop
 * from one list each (as mqtt-packet's constants.js does).
 */
export interface EnumTable<N extends string> {
  readonly names: readonly N[];
  code(name: N): number;
  /** The name for a wire code, or undefined for a code the table lacks. */
  name(code: number): N | undefined;
}

export function enumTable<N extends string>(pairs: ReadonlyArray<readonly [number, N]>): EnumTable<N> {
  const toCode: { [name: string]: number } = {};
  const toName: { [code: number]: N } = {};
  const names: N[] = [];
  for (let i = 0; i < pairs.length; i++) {
    toCode[pairs[i][1]] = pairs[i][0];
    toName[pairs[i][0]] = pairs[i][1];
    names.push(pairs[i][1]);
  }
  return {
    names: names,
    code: function (name: N): number {
      return toCode[name];
    },
    name: function (code: number): N | undefined {
      return Object.prototype.hasOwnProperty.call(toName, code) ? toName[code] : undefined;
    },
  };
}

/** Variable types, with Particle's names (as in the device object's `variables`). */
export const VAR_TYPES = enumTable([
  [1, 'bool'],
  [2, 'int32'],
  [3, 'double'],
  [4, 'string'],
] as const);
export type VarType = (typeof VAR_TYPES.names)[number];

/** Why a device booted: Particle's System.resetReason() codes, unchanged. */
export const RESET_REASONS = enumTable([
  [0, 'none'],
  [10, 'unknown'],
  [20, 'pin_reset'],
  [30, 'power_management'],
  [40, 'power_down'],
  [50, 'power_brownout'],
  [60, 'watchdog'],
  [70, 'update'],
  [80, 'update_error'],
  [90, 'update_timeout'],
  [100, 'factory_reset'],
  [110, 'safe_mode'],
  [120, 'dfu_mode'],
  [130, 'panic'],
  [140, 'user'],
] as const);
export type ResetReason = (typeof RESET_REASONS.names)[number];

/** Where an error report comes from. */
export const ERROR_SOURCES = enumTable([
  [1, 'variable'], // a variable getter threw
  [2, 'function'], // a function handler threw
  [3, 'subscription'], // an event handler threw
  [4, 'timer'], // a timer callback threw
  [5, 'agent'], // the agent itself (a bug, or a HAL failure)
  [6, 'ota'], // an OTA transfer failed on the device
  [7, 'crash'], // the previous run ended in a crash (reported after reboot)
] as const);
export type ErrorSource = (typeof ERROR_SOURCES.names)[number];

/** Outcome of a request, in a reply. */
export const REPLY_STATUSES = enumTable([
  [0, 'ok'],
  [1, 'not_found'], // no such variable or function
  [2, 'bad_request'], // argument refused (type, size)
  [3, 'handler_error'], // the getter or handler threw; value carries the message
  [4, 'too_large'], // the value is over its limit
  [5, 'busy'], // the device cannot do it now (e.g. reset during OTA)
] as const);
export type ReplyStatus = (typeof REPLY_STATUSES.names)[number];

/** Cloud → device request operations. */
export const REQUEST_OPS = enumTable([
  [1, 'var'], // read a variable: name
  [2, 'call'], // call a function: name, arg
  [3, 'ping'],
  [4, 'vitals'], // publish vitals now
  [5, 'signal'], // start/stop signaling (rainbow LED): on
  [6, 'reset'],
] as const);
export type RequestOp = (typeof REQUEST_OPS.names)[number];

/** State in an OTA status message from the device. */
export const OTA_STATES = enumTable([
  [1, 'offset'], // "I hold the image up to `offset`": answer to begin, ack of chunks
  [2, 'verified'], // whole image held and its SHA-256 matched; slot marked pending, resetting
  [3, 'failed'], // the job ended on the device; `reason` says why
] as const);
export type OtaState = (typeof OTA_STATES.names)[number];

/** Why an OTA job failed (device → cloud) or was aborted (cloud → device). */
export const OTA_FAILURES = enumTable([
  [1, 'bad_sha'], // SHA-256 of the received image did not match
  [2, 'too_large'], // image does not fit the slot
  [3, 'wrong_product'], // image is for another product
  [4, 'flash_error'], // the HAL could not write or read the slot
  [5, 'busy'], // another job is in progress
  [6, 'bad_chunk'], // a chunk was out of range or oversize
  [7, 'aborted'], // the cloud aborted the job
  [8, 'bad_version'], // same version as running, or refused downgrade
  [9, 'timeout'], // the transfer stalled
  [10, 'rolled_back'], // the new image failed its trial and the old one runs again
] as const);
export type OtaFailure = (typeof OTA_FAILURES.names)[number];
