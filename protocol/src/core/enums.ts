/**
 * Two-way tables between protocol names and their wire codes, built by a loop
 * from one list each (as mqtt-packet's constants.js does).
 */
import {
  BATTERY_STATE, CLOUD_STATUS, DISCONNECT_REASON, ERROR_SOURCE, OTA_FAILURE, OTA_STATE, POWER_SOURCE, REPLY_STATUS, REQUEST_OP, RESET_REASON, VAR_TYPE,
} from './codes.js';

export { BATTERY_STATE, CLOUD_STATUS, DISCONNECT_REASON, ERROR_SOURCE, OTA_FAILURE, OTA_STATE, POWER_SOURCE, REPLY_STATUS, REQUEST_OP, RESET_REASON, VAR_TYPE };

export interface EnumTable<N extends string> {
  readonly names: readonly N[];
  code(name: N): number;
  /** The name for a wire code, or undefined for a code the table lacks. */
  name(code: number): N | undefined;
}

/**
 * The table for one `{ name: code }` object. The objects themselves are
 * exported too (`REPLY_STATUS.ok`): the firmware needs only the numbers, and
 * takes them without the tables.
 */
export function enumTable<N extends string>(codes: { readonly [K in N]: number }): EnumTable<N> {
  const toCode: { [name: string]: number } = {};
  const toName: { [code: number]: N } = {};
  const names: N[] = [];
  for (const name in codes) {
    if (!Object.prototype.hasOwnProperty.call(codes, name)) continue;
    toCode[name] = codes[name];
    toName[codes[name]] = name;
    names.push(name);
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

export const VAR_TYPES = enumTable(VAR_TYPE);
export type VarType = keyof typeof VAR_TYPE;

export const RESET_REASONS = enumTable(RESET_REASON);
export type ResetReason = keyof typeof RESET_REASON;

export const ERROR_SOURCES = enumTable(ERROR_SOURCE);
export type ErrorSource = keyof typeof ERROR_SOURCE;

export const REPLY_STATUSES = enumTable(REPLY_STATUS);
export type ReplyStatus = keyof typeof REPLY_STATUS;

export const REQUEST_OPS = enumTable(REQUEST_OP);
export type RequestOp = keyof typeof REQUEST_OP;

export const OTA_STATES = enumTable(OTA_STATE);
export type OtaState = keyof typeof OTA_STATE;

export const OTA_FAILURES = enumTable(OTA_FAILURE);
export type OtaFailure = keyof typeof OTA_FAILURE;

export const CLOUD_STATUSES = enumTable(CLOUD_STATUS);
export const DISCONNECT_REASONS = enumTable(DISCONNECT_REASON);
export const BATTERY_STATES = enumTable(BATTERY_STATE);
export const POWER_SOURCES = enumTable(POWER_SOURCE);
