/**
 * @module @flotilla/protocol/core
 * The ES5-safe core of the protocol: topics, message kinds and layouts,
 * limits, the strict CBOR scanner, and the permission matrix. It imports
 * nothing outside this folder and uses no Node API, so the firmware bundles it.
 */
export { ProtocolError, isProtocolError, fail } from './errors.js';
export type { ProtocolErrorCode } from './errors.js';
export { LIMITS } from './limits.js';
export type { Limits } from './limits.js';
export { DEVICE_ID_LENGTH, isDeviceId, isClientId, nameProblem, eventNameProblem, isReservedEventName, CLAIM_CODE_EVENT } from './names.js';
export { topics, parseTopic, parseFilter, deviceTopic, cloudTopic, DEVICE_CHANNELS, CLOUD_CHANNELS, APP_CHANNELS } from './topics.js';
export type { ParsedTopic, ParsedFilter, DeviceChannel, CloudChannel, AppChannel } from './topics.js';
export { VAR_TYPES, RESET_REASONS, ERROR_SOURCES, REPLY_STATUSES, REQUEST_OPS, OTA_STATES, OTA_FAILURES, CLOUD_STATUSES, DISCONNECT_REASONS, BATTERY_STATES, POWER_SOURCES, enumTable } from './enums.js';
export { KIND, VAR_TYPE, RESET_REASON, ERROR_SOURCE, REPLY_STATUS, REQUEST_OP, OTA_STATE, OTA_FAILURE, VITAL, CLOUD_STATUS, DISCONNECT_REASON, BATTERY_STATE, POWER_SOURCE } from './codes.js';
export type { EnumTable } from './enums.js';
export { KINDS, kindFitsTopic } from './messages.js';
export type * from './messages.js';
export { VITALS, VITAL_WARNINGS, VITAL_ENUMS, SERVICE_VITALS, vitalName, vitalCode } from './vitals.js';
export type { VitalName, VitalValues, ServiceVitalName, SampleValues } from './vitals.js';
export { LAYOUTS, REQUEST_ARGS, fromWire, toWire, kindOfCode, codeOfKind } from './layout.js';
export type { WireValue } from './layout.js';
export { validate, validateDeviceEventName } from './validate.js';
export { decodeCbor, floatScratch, scanCbor, MAX_DEPTH } from './cbor-scan.js';
export { IMAGE_HEADER_SIZE, encodeImageHeader, hasImageMagic, parseImageHeader } from './image.js';
export type { ImageHeader } from './image.js';
export { utf8Length, utf8Write, utf8Decode } from './utf8.js';
export {
  ROLES,
  ROLE_TITLES,
  PRODUCT_ACTIONS,
  ORG_ACTIONS,
  ORG_ROLE_CASCADE,
  roleRank,
  roleAtLeast,
  isRole,
  isAction,
  minRoleFor,
  roleAllows,
  canGrant,
} from './permissions.js';
export type { Role, Action, ProductAction, OrgAction } from './permissions.js';
