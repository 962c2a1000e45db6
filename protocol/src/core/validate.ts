/**
 * Semantic checks of each message kind against LIMITS and the name rules.
 * `validate` returns the first problem as a ProtocolError (code `limit` with
 * the limit's value, or `value`) naming the field, or null when the message
 * is acceptable. The agent runs it before it sends, the bridge after it
 * decodes; shapes and types were already checked by layout.ts.
 */
import { ProtocolError } from './errors.js';
import { LIMITS } from './limits.js';
import type { Kind, Messages } from './messages.js';
import { eventNameProblem, isReservedEventName, nameProblem } from './names.js';
import { utf8Length } from './utf8.js';

// Validators throw internally (simplest control flow); validate() turns that into a return value.
function limit(field: string, what: string, max: number): never {
  throw new ProtocolError('limit', field + ' ' + what + ', over the limit of ' + max, field, max);
}

function bad(field: string, what: string): never {
  throw new ProtocolError('value', field + ' ' + what, field);
}

/** Text no longer than `max` UTF-8 bytes, and encodable (no lone surrogate). */
function text(field: string, s: string, max: number): void {
  const n = utf8Length(s);
  if (n < 0) bad(field, 'is not valid Unicode (lone surrogate)');
  if (n > max) limit(field, 'is ' + n + ' bytes', max);
}

function name(field: string, s: string): void {
  text(field, s, LIMITS.nameMaxBytes);
  const p = nameProblem(s);
  if (p) bad(field, p);
}

function eventName(field: string, s: string, partial: boolean): void {
  text(field, s, LIMITS.nameMaxBytes);
  const p = eventNameProblem(s, partial);
  if (p) bad(field, p);
}

function data(field: string, d: string | Uint8Array | null, max: number): void {
  if (d === null) return;
  if (typeof d === 'string') text(field, d, max);
  else if (d.length > max) limit(field, 'is ' + d.length + ' bytes', max);
}

function atMost(field: string, v: number, max: number): void {
  if (v > max) limit(field, 'is ' + v, max);
}

function finite(field: string, v: number): void {
  if (!isFinite(v)) bad(field, 'must be a finite number');
}

function unique(field: string, names: string[]): void {
  for (let i = 0; i < names.length; i++)
    for (let j = 0; j < i; j++) if (names[i] === names[j]) bad(field + '[' + i + ']', 'repeats "' + names[i] + '"');
}

function countOf(field: string, n: number, max: number, what: string): void {
  if (n > max) limit(field, 'has ' + n + ' ' + what, max);
}

type Validator<K extends Kind> = (m: Messages[K]) => void;

const VALIDATORS: { [K in Kind]: Validator<K> } = {
  hello: function (m) {
    if (m.agent.length === 0) bad('hello.agent', 'must not be empty');
    text('hello.agent', m.agent, LIMITS.agentVersionMaxBytes);
    atMost('hello.firmware', m.firmware, LIMITS.firmwareVersionMax);
    countOf('hello.variables', m.variables.length, LIMITS.maxVariables, 'variables');
    const varNames: string[] = [];
    for (let i = 0; i < m.variables.length; i++) {
      name('hello.variables[' + i + '].name', m.variables[i].name);
      varNames.push(m.variables[i].name);
    }
    unique('hello.variables', varNames);
    countOf('hello.functions', m.functions.length, LIMITS.maxFunctions, 'functions');
    for (let i = 0; i < m.functions.length; i++) name('hello.functions[' + i + ']', m.functions[i]);
    unique('hello.functions', m.functions);
    countOf('hello.subscriptions', m.subscriptions.length, LIMITS.maxSubscriptions, 'subscriptions');
    for (let i = 0; i < m.subscriptions.length; i++) eventName('hello.subscriptions[' + i + ']', m.subscriptions[i], true);
    if (m.ota.slot > 1) bad('hello.ota.slot', 'must be 0 or 1');
    if (m.ota.rolledBackFrom !== null) atMost('hello.ota.rolledBackFrom', m.ota.rolledBackFrom, LIMITS.firmwareVersionMax);
  },
  event: function (m) {
    data('event.data', m.data, LIMITS.eventDataMaxBytes);
    atMost('event.ttl', m.ttl, LIMITS.eventTtlMax);
  },
  vitals: function (m) {
    for (const k in m.values) {
      if (Object.prototype.hasOwnProperty.call(m.values, k)) finite('vitals.values.' + k, (m.values as { [k: string]: number })[k]);
    }
  },
  error: function (m) {
    text('error.name', m.name, LIMITS.nameMaxBytes);
    text('error.message', m.message, LIMITS.errorMessageMaxBytes);
    text('error.stack', m.stack, LIMITS.errorStackMaxBytes);
    if (m.count < 1) bad('error.count', 'must be at least 1');
  },
  reply: function (m) {
    const v = m.value;
    if (typeof v === 'string') text('reply.value', v, LIMITS.variableValueMaxBytes);
    else if (typeof v === 'number') finite('reply.value', v);
  },
  otaStatus: function (m) {
    atMost('otaStatus.offset', m.offset, LIMITS.otaImageMaxBytes);
    if ((m.state === 'failed') !== (m.reason !== null)) bad('otaStatus.reason', 'must be set exactly when state is "failed"');
  },
  status: function () {},
  request: function (m) {
    if (m.op === 'var' || m.op === 'call') name('request.name', m.name);
    if (m.op === 'call') text('request.arg', m.arg, LIMITS.functionArgMaxBytes);
  },
  otaBegin: function (m) {
    if (m.size === 0) bad('otaBegin.size', 'must not be 0');
    atMost('otaBegin.size', m.size, LIMITS.otaImageMaxBytes);
    atMost('otaBegin.version', m.version, LIMITS.firmwareVersionMax);
    if (m.sha256.length !== 32) bad('otaBegin.sha256', 'must be 32 bytes');
    if (m.chunkSize === 0) bad('otaBegin.chunkSize', 'must not be 0');
    atMost('otaBegin.chunkSize', m.chunkSize, LIMITS.otaChunkMaxBytes);
  },
  otaChunk: function (m) {
    if (m.data.length === 0) bad('otaChunk.data', 'must not be empty');
    if (m.data.length > LIMITS.otaChunkMaxBytes) limit('otaChunk.data', 'is ' + m.data.length + ' bytes', LIMITS.otaChunkMaxBytes);
    atMost('otaChunk.offset', m.offset + m.data.length, LIMITS.otaImageMaxBytes);
  },
  otaAbort: function () {},
  cloudEvent: function (m) {
    eventName('cloudEvent.name', m.name, false);
    data('cloudEvent.data', m.data, LIMITS.eventDataMaxBytes);
  },
};

/** The first problem of a message body, or null when it is acceptable. */
export function validate<K extends Kind>(kind: K, msg: Messages[K]): ProtocolError | null {
  try {
    (VALIDATORS[kind] as Validator<K>)(msg);
    return null;
  } catch (e) {
    if (e instanceof ProtocolError) return e;
    throw e;
  }
}

/**
 * The problem with an event name a device wants to publish, or null: the
 * name rules plus Particle's reserved `spark` prefix.
 */
export function validateDeviceEventName(s: string): ProtocolError | null {
  try {
    eventName('event.name', s, false);
    if (isReservedEventName(s)) bad('event.name', 'starts with the reserved prefix "spark"');
    return null;
  } catch (e) {
    if (e instanceof ProtocolError) return e;
    throw e;
  }
}
