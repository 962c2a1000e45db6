/**
 * Every wire code of the protocol as plain `{ name: code }` objects: data
 * only, no code, so the firmware takes the numbers it needs and none of the
 * lookup tables built from them (enums.ts, messages.ts, vitals.ts).
 */

/** Wire code of each kind. Device → cloud codes are 1..15, cloud → device 16..31. */
export const KIND = {
  hello: 1,
  event: 2,
  vitals: 3,
  error: 4,
  reply: 5,
  otaStatus: 6,
  status: 7,
  request: 16,
  otaBegin: 17,
  otaChunk: 18,
  otaAbort: 19,
  cloudEvent: 20,
} as const;

/** Variable types, with Particle's names (as in the device object's `variables`). */
export const VAR_TYPE = {
  bool: 1,
  int32: 2,
  double: 3,
  string: 4,
} as const;

/** Why a device booted: Particle's System.resetReason() codes, unchanged. */
export const RESET_REASON = {
  none: 0,
  unknown: 10,
  pin_reset: 20,
  power_management: 30,
  power_down: 40,
  power_brownout: 50,
  watchdog: 60,
  update: 70,
  update_error: 80,
  update_timeout: 90,
  factory_reset: 100,
  safe_mode: 110,
  dfu_mode: 120,
  panic: 130,
  user: 140,
} as const;

/**
 * The enumerated vitals, with Device OS's codes (a device reports the number; the cloud's API shows
 * the name, as Particle's vitals payload does). device.cloud.connection.status: cloud_connection_status.
 */
export const CLOUD_STATUS = {
  disconnected: 0,
  connecting: 1,
  connected: 2,
  disconnecting: 3,
} as const;

/** device.cloud.connection.disconnect_reason: Device OS's cloud_disconnect_reason. */
export const DISCONNECT_REASON = {
  none: 0,
  error: 1,
  user: 2,
  network_disconnect: 3,
  listening: 4,
  reset: 5,
  sleep: 6,
  unknown: 7,
  server_moved: 8,
} as const;

/** device.power.battery.state: Device OS's battery_state_t. */
export const BATTERY_STATE = {
  unknown: 0,
  not_charging: 1,
  charging: 2,
  charged: 3,
  discharging: 4,
  fault: 5,
  disconnected: 6,
} as const;

/** device.power.source: Device OS's power_source_t, named as Particle's vitals show it. */
export const POWER_SOURCE = {
  unknown: 0,
  VIN: 1,
  'USB host': 2,
  'USB adapter': 3,
  'USB OTG': 4,
  battery: 5,
} as const;

/** Where an error report comes from. */
export const ERROR_SOURCE = {
  variable: 1, // a variable getter threw
  function: 2, // a function handler threw
  subscription: 3, // an event handler threw
  timer: 4, // a timer callback threw
  agent: 5, // the agent itself (a bug, or a HAL failure)
  ota: 6, // an OTA transfer failed on the device
  crash: 7, // the previous run ended in a crash (reported after reboot)
  publish: 8, // a publish's done callback threw
} as const;

/** Outcome of a request, in a reply. */
export const REPLY_STATUS = {
  ok: 0,
  not_found: 1, // no such variable or function
  bad_request: 2, // argument refused (type, size)
  handler_error: 3, // the getter or handler threw; value carries the message
  too_large: 4, // the value is over its limit
  busy: 5, // the device cannot do it now (e.g. reset during OTA)
} as const;

/** Cloud → device request operations. */
export const REQUEST_OP = {
  var: 1, // read a variable: name
  call: 2, // call a function: name, arg
  ping: 3,
  vitals: 4, // publish vitals now
  signal: 5, // start/stop signaling (rainbow LED): on
  reset: 6,
} as const;

/** State in an OTA status message from the device. */
export const OTA_STATE = {
  offset: 1, // "I hold the image up to `offset`": answer to begin, ack of chunks
  verified: 2, // whole image held and its SHA-256 matched; slot marked pending, resetting
  failed: 3, // the job ended on the device; `reason` says why
} as const;

/** Why an OTA job failed (device → cloud) or was aborted (cloud → device). */
export const OTA_FAILURE = {
  bad_sha: 1, // SHA-256 of the received image did not match
  too_large: 2, // image does not fit the slot
  wrong_product: 3, // image is for another product
  flash_error: 4, // the HAL could not write or read the slot
  busy: 5, // another job is in progress
  bad_chunk: 6, // a chunk was out of range or oversize
  aborted: 7, // the cloud aborted the job
  bad_version: 8, // same version as running, or refused downgrade
  timeout: 9, // the transfer stalled
  rolled_back: 10, // the new image failed its trial and the old one runs again
} as const;

/** Wire code of each vital, by a short key; the device needs only these numbers. */
export const VITAL = {
  systemUptime: 1,
  systemMemoryUsed: 2,
  systemMemoryTotal: 3,
  systemResetReason: 4,
  cloudConnectionStatus: 10,
  cloudConnectionAttempts: 11,
  cloudConnectionDisconnects: 12,
  cloudConnectionError: 13,
  cloudConnectionDisconnectReason: 14,
  cloudCoapTransmit: 20,
  cloudCoapRetransmit: 21,
  cloudCoapUnack: 22,
  cloudCoapRoundTrip: 23,
  cloudPublishRateLimited: 30,
  cloudPublishSent: 31,
  cloudPublishDropped: 32,
  cloudErrorsReported: 33,
  networkSignalStrength: 40,
  networkSignalStrengthv: 41,
  networkSignalQuality: 42,
  networkSignalQualityv: 43,
  networkConnectionAttempts: 44,
  networkConnectionDisconnects: 45,
  powerBatteryCharge: 50,
  powerBatteryState: 51,
  powerSource: 52,
} as const;
