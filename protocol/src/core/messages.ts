/**
 * Every message kind of the protocol as a TypeScript type. The wire layout of
 * each (a CBOR array whose first item is the kind's code) is in layout.ts and
 * docs/protocol.md; the limits they obey are in limits.ts.
 */
import type { ErrorSource, OtaFailure, OtaState, ReplyStatus, RequestOp, ResetReason, VarType } from './enums.js';
import type { VitalValues } from './vitals.js';
import { KIND } from './codes.js';

export { KIND };

export type { VarType, ResetReason, ErrorSource, ReplyStatus, RequestOp, OtaState, OtaFailure };

/** A variable's value: Particle's bool, int32, double or string. */
export type VarValue = boolean | number | string;
/** Event data: text (Particle's string data), raw bytes (binary events), or none. */
export type EventData = string | Uint8Array | null;

export interface VariableDecl {
  name: string;
  type: VarType;
}

/** The device's two application slots, as the agent sees them at boot. */
export interface OtaSlotState {
  /** Slot the running image was booted from (0 or 1). */
  slot: number;
  /** The running image is on trial: confirmed only once it reaches the cloud. */
  trial: boolean;
  /** Version of an image that failed its trial and was rolled back, since the last hello. */
  rolledBackFrom: number | null;
}

/** device → cloud, first thing on every connection. */
export interface Hello {
  /** Agent version (semver). */
  agent: string;
  /** Version of the running application image. */
  firmware: number;
  /** Product the image was built for. */
  product: number;
  variables: VariableDecl[];
  functions: string[];
  /** Event name prefixes the device subscribed to; the cloud delivers matching events. */
  subscriptions: string[];
  bootReason: ResetReason;
  ota: OtaSlotState;
}

/** device → cloud, on dev/<id>/evt/<name>: the name is the topic's. */
export interface DeviceEvent {
  data: EventData;
  /** Seconds the event stays of interest (Particle's ttl). */
  ttl: number;
}

/** device → cloud: a vitals report. */
export interface Vitals {
  values: VitalValues;
}

/** device → cloud: an exception the agent caught, or the crash that ended the last run. */
export interface ErrorReport {
  source: ErrorSource;
  /** The variable, function or subscription involved, or '' for none. */
  name: string;
  message: string;
  /** A short stack, '' where the engine gives none. */
  stack: string;
  /** How many times this error happened since it was last reported (≥ 1). */
  count: number;
  /** Device uptime in seconds when it last happened. */
  uptime: number;
}

/** device → cloud: the answer to a request, with the request's correlation id. */
export interface Reply {
  id: number;
  status: ReplyStatus;
  /** Variable value, function return value, or the error message for handler_error; null otherwise. */
  value: VarValue | null;
}

/** device → cloud: progress and outcome of an OTA job. */
export interface OtaStatus {
  job: number;
  state: OtaState;
  /** Bytes of the image the device holds contiguously from the start. */
  offset: number;
  /** Set exactly when state is 'failed'. */
  reason: OtaFailure | null;
}

/** device → cloud: presence. The agent's MQTT will carries { online: false }. */
export interface Status {
  online: boolean;
}

/** cloud → device: a request with a correlation id the reply echoes. */
export type Request =
  | { id: number; op: 'var'; name: string }
  | { id: number; op: 'call'; name: string; arg: string }
  | { id: number; op: 'ping' }
  | { id: number; op: 'vitals' }
  | { id: number; op: 'signal'; on: boolean }
  | { id: number; op: 'reset' };

/** cloud → device: start (or resume) an OTA job. */
export interface OtaBegin {
  job: number;
  product: number;
  version: number;
  size: number;
  /** SHA-256 of the whole image, 32 bytes. */
  sha256: Uint8Array;
  chunkSize: number;
}

/** cloud → device: one piece of the image. */
export interface OtaChunk {
  job: number;
  offset: number;
  data: Uint8Array;
}

/** cloud → device: stop a job; the device discards what it received. */
export interface OtaAbort {
  job: number;
  reason: OtaFailure;
}

/** cloud → device: an event matching one of the device's subscriptions. */
export interface CloudEvent {
  name: string;
  data: EventData;
}

/** Message bodies by kind. */
export interface Messages {
  hello: Hello;
  event: DeviceEvent;
  vitals: Vitals;
  error: ErrorReport;
  reply: Reply;
  otaStatus: OtaStatus;
  status: Status;
  request: Request;
  otaBegin: OtaBegin;
  otaChunk: OtaChunk;
  otaAbort: OtaAbort;
  cloudEvent: CloudEvent;
}

export type Kind = keyof Messages;

/** A decoded message: its body with the kind as discriminant. */
export type Message = { [K in Kind]: { kind: K } & Messages[K] }[Kind];


/** The kinds, their wire codes, who sends them, and the topic channel they travel on. */
export const KINDS = [
  { kind: 'hello', code: KIND.hello, from: 'device', channel: 'hello' },
  { kind: 'event', code: KIND.event, from: 'device', channel: 'evt' },
  { kind: 'vitals', code: KIND.vitals, from: 'device', channel: 'vitals' },
  { kind: 'error', code: KIND.error, from: 'device', channel: 'err' },
  { kind: 'reply', code: KIND.reply, from: 'device', channel: 'reply' },
  { kind: 'otaStatus', code: KIND.otaStatus, from: 'device', channel: 'ota' },
  { kind: 'status', code: KIND.status, from: 'device', channel: 'status' },
  { kind: 'request', code: KIND.request, from: 'cloud', channel: 'req' },
  { kind: 'otaBegin', code: KIND.otaBegin, from: 'cloud', channel: 'ota' },
  { kind: 'otaChunk', code: KIND.otaChunk, from: 'cloud', channel: 'ota' },
  { kind: 'otaAbort', code: KIND.otaAbort, from: 'cloud', channel: 'ota' },
  { kind: 'cloudEvent', code: KIND.cloudEvent, from: 'cloud', channel: 'evt' },
] as const;

export type KindInfo = (typeof KINDS)[number];

/** True when a message of `kind` may travel on a topic with this root and channel. */
export function kindFitsTopic(kind: Kind, root: string, channel: string): boolean {
  // A device's reply is forwarded as is to the operator app that asked.
  if (root === 'app') return kind === 'reply' && channel === 'reply';
  for (let i = 0; i < KINDS.length; i++) {
    const k = KINDS[i];
    if (k.kind === kind) return k.channel === channel && (k.from === 'device' ? root === 'dev' : root === 'cloud');
  }
  return false;
}
