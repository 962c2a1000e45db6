/**
 * The wire layout of every message kind, as data: each kind is a CBOR array
 * `[code, field1, field2, ...]` whose fields are listed in LAYOUTS in order.
 * `fromWire` turns a decoded CBOR value into a typed Message, `toWire` does the
 * reverse; both check every field's type and fail with a `layout`
 * ProtocolError naming the field. Limits are validate.ts's business.
 */
import { EnumTable, ERROR_SOURCES, OTA_FAILURES, OTA_STATES, REPLY_STATUSES, REQUEST_OPS, RESET_REASONS, VAR_TYPES } from './enums.js';
import { fail } from './errors.js';
import { KINDS, Kind, Message, Messages } from './messages.js';
import { VITALS, vitalCode, vitalName } from './vitals.js';

/** What a decoded CBOR item can be, in the protocol's subset. */
export type WireValue = null | boolean | number | string | Uint8Array | WireValue[];

type FieldType =
  | 'uint' // non-negative safe integer
  | 'num' // any number
  | 'text'
  | 'bytes'
  | 'bool'
  | 'data' // text, bytes or null
  | 'value' // bool, number or text
  | 'valueOrNull'
  | 'uintOrNull'
  | 'textList' // array of text
  | 'variables' // [{name, type}] ↔ [name, typeCode, name, typeCode, ...]
  | 'vitals' // {vitalName: number} ↔ [vitalCode, number, ...] in VITALS order
  | 'slots' // OtaSlotState ↔ [slot, trial, rolledBackFrom]
  | 'failureOrNull' // an OTA_FAILURES name or null
  | EnumTable<string>; // name ↔ code

type Field = readonly [string, FieldType];

/** Fields after the kind code, in wire order. docs/protocol.md lists the same. */
export const LAYOUTS: { readonly [K in Kind]: readonly Field[] } = {
  hello: [
    ['agent', 'text'],
    ['firmware', 'uint'],
    ['product', 'uint'],
    ['variables', 'variables'],
    ['functions', 'textList'],
    ['subscriptions', 'textList'],
    ['bootReason', RESET_REASONS],
    ['ota', 'slots'],
  ],
  event: [
    ['data', 'data'],
    ['ttl', 'uint'],
  ],
  vitals: [['values', 'vitals']],
  error: [
    ['source', ERROR_SOURCES],
    ['name', 'text'],
    ['message', 'text'],
    ['stack', 'text'],
    ['count', 'uint'],
    ['uptime', 'uint'],
  ],
  reply: [
    ['id', 'uint'],
    ['status', REPLY_STATUSES],
    ['value', 'valueOrNull'],
  ],
  otaStatus: [
    ['job', 'uint'],
    ['state', OTA_STATES],
    ['offset', 'uint'],
    ['reason', 'failureOrNull'],
  ],
  status: [['online', 'bool']],
  // The fields after `op` depend on it: REQUEST_ARGS.
  request: [
    ['id', 'uint'],
    ['op', REQUEST_OPS],
  ],
  otaBegin: [
    ['job', 'uint'],
    ['product', 'uint'],
    ['version', 'uint'],
    ['size', 'uint'],
    ['sha256', 'bytes'],
    ['chunkSize', 'uint'],
  ],
  otaChunk: [
    ['job', 'uint'],
    ['offset', 'uint'],
    ['data', 'bytes'],
  ],
  otaAbort: [
    ['job', 'uint'],
    ['reason', OTA_FAILURES],
  ],
  cloudEvent: [
    ['name', 'text'],
    ['data', 'data'],
  ],
};

/** A request's fields after `op`, by op. */
export const REQUEST_ARGS: { readonly [op: string]: readonly Field[] } = {
  var: [['name', 'text']],
  call: [
    ['name', 'text'],
    ['arg', 'text'],
  ],
  ping: [],
  vitals: [],
  signal: [['on', 'bool']],
  reset: [],
};

const kindByCode: { [code: number]: Kind } = {};
const codeByKind: { [kind: string]: number } = {};
for (let i = 0; i < KINDS.length; i++) {
  kindByCode[KINDS[i].code] = KINDS[i].kind;
  codeByKind[KINDS[i].kind] = KINDS[i].code;
}

export function kindOfCode(code: number): Kind | undefined {
  return Object.prototype.hasOwnProperty.call(kindByCode, code) ? kindByCode[code] : undefined;
}

export function codeOfKind(kind: Kind): number {
  return codeByKind[kind];
}

const MAX_SAFE = 9007199254740991;

function isUint(v: unknown): v is number {
  return typeof v === 'number' && v >= 0 && v <= MAX_SAFE && Math.floor(v) === v;
}

function isBytes(v: unknown): v is Uint8Array {
  return v instanceof Uint8Array;
}

function expected(path: string, what: string): never {
  return fail('layout', path + ': expected ' + what);
}

function isEnum(t: FieldType): t is EnumTable<string> {
  return typeof t !== 'string';
}

// ---- decode: wire → message ----------------------------------------------

/** Turns one decoded CBOR value into a typed message; throws a `layout` ProtocolError. */
export function fromWire(value: WireValue): Message {
  if (!Array.isArray(value)) return fail('layout', 'message must be a CBOR array');
  if (value.length === 0 || !isUint(value[0])) return fail('layout', 'message must start with a kind code');
  const kind = kindOfCode(value[0] as number);
  if (kind === undefined) return fail('layout', 'unknown message kind ' + value[0]);
  let fields = LAYOUTS[kind];
  const out: { [k: string]: unknown } = { kind: kind };
  if (kind === 'request') {
    if (value.length < 3) return fail('layout', 'request must have at least 3 items, got ' + value.length);
    readFields(kind, fields, value, 1, out);
    fields = REQUEST_ARGS[out.op as string];
    checkCount(kind, value, 3 + fields.length);
    readFields(kind, fields, value, 3, out);
  } else {
    checkCount(kind, value, 1 + fields.length);
    readFields(kind, fields, value, 1, out);
  }
  return out as unknown as Message;
}

function checkCount(kind: string, value: WireValue[], n: number): void {
  if (value.length !== n) fail('layout', kind + ' must have ' + n + ' items, got ' + value.length);
}

function readFields(kind: string, fields: readonly Field[], value: WireValue[], at: number, out: { [k: string]: unknown }): void {
  for (let i = 0; i < fields.length; i++) {
    const name = fields[i][0];
    out[name] = readField(fields[i][1], value[at + i], kind + '.' + name);
  }
}

function readField(t: FieldType, v: WireValue, path: string): unknown {
  if (isEnum(t)) {
    if (!isUint(v)) return expected(path, 'an unsigned integer code');
    const name = t.name(v);
    if (name === undefined) return fail('layout', path + ': unknown code ' + v);
    return name;
  }
  switch (t) {
    case 'uint':
      return isUint(v) ? v : expected(path, 'an unsigned integer');
    case 'uintOrNull':
      return v === null || isUint(v) ? v : expected(path, 'an unsigned integer or null');
    case 'num':
      return typeof v === 'number' ? v : expected(path, 'a number');
    case 'text':
      return typeof v === 'string' ? v : expected(path, 'text');
    case 'bytes':
      return isBytes(v) ? v : expected(path, 'bytes');
    case 'bool':
      return typeof v === 'boolean' ? v : expected(path, 'true or false');
    case 'data':
      return v === null || typeof v === 'string' || isBytes(v) ? v : expected(path, 'text, bytes or null');
    case 'value':
      return typeof v === 'boolean' || typeof v === 'number' || typeof v === 'string' ? v : expected(path, 'a boolean, number or text');
    case 'valueOrNull':
      return v === null || typeof v === 'boolean' || typeof v === 'number' || typeof v === 'string'
        ? v
        : expected(path, 'a boolean, number, text or null');
    case 'textList': {
      if (!Array.isArray(v)) return expected(path, 'an array');
      for (let i = 0; i < v.length; i++) if (typeof v[i] !== 'string') expected(path + '[' + i + ']', 'text');
      return v;
    }
    case 'variables': {
      if (!Array.isArray(v) || v.length % 2 !== 0) return expected(path, 'an array of name, type pairs');
      const list: { name: string; type: string }[] = [];
      for (let i = 0; i < v.length; i += 2) {
        const p = path + '[' + i / 2 + ']';
        list.push({ name: readField('text', v[i], p + '.name') as string, type: readField(VAR_TYPES, v[i + 1], p + '.type') as string });
      }
      return list;
    }
    case 'vitals': {
      if (!Array.isArray(v) || v.length % 2 !== 0) return expected(path, 'an array of code, value pairs');
      const values: { [name: string]: number } = {};
      for (let i = 0; i < v.length; i += 2) {
        const code = v[i];
        if (!isUint(code)) return expected(path + '[' + i + ']', 'an unsigned integer code');
        const name = vitalName(code);
        if (name === undefined) return fail('layout', path + ': unknown vital code ' + code);
        if (Object.prototype.hasOwnProperty.call(values, name)) return fail('layout', path + ': vital code ' + code + ' appears twice');
        values[name] = readField('num', v[i + 1], path + '.' + name) as number;
      }
      return values;
    }
    case 'failureOrNull':
      return v === null ? null : readField(OTA_FAILURES, v, path);
    case 'slots': {
      if (!Array.isArray(v) || v.length !== 3) return expected(path, 'an array of 3 items');
      return {
        slot: readField('uint', v[0], path + '.slot'),
        trial: readField('bool', v[1], path + '.trial'),
        rolledBackFrom: readField('uintOrNull', v[2], path + '.rolledBackFrom'),
      };
    }
  }
  return fail('layout', path + ': unknown field type');
}

// ---- encode: message → wire ----------------------------------------------

/** Turns a typed message body into the value to CBOR-encode; throws a `layout` ProtocolError. */
export function toWire<K extends Kind>(kind: K, msg: Messages[K]): WireValue[] {
  const code = codeByKind[kind];
  if (code === undefined) return fail('layout', 'unknown message kind "' + String(kind) + '"');
  if (msg === null || typeof msg !== 'object') return fail('layout', kind + ': expected an object');
  const m = msg as unknown as { [k: string]: unknown };
  const out: WireValue[] = [code];
  writeFields(kind, LAYOUTS[kind], m, out);
  if (kind === 'request') {
    const args = REQUEST_ARGS[m.op as string];
    writeFields(kind, args, m, out);
  }
  return out;
}

function writeFields(kind: string, fields: readonly Field[], m: { [k: string]: unknown }, out: WireValue[]): void {
  for (let i = 0; i < fields.length; i++) {
    const name = fields[i][0];
    out.push(writeField(fields[i][1], m[name], kind + '.' + name));
  }
}

function writeField(t: FieldType, v: unknown, path: string): WireValue {
  if (isEnum(t)) {
    const code = typeof v === 'string' ? t.code(v) : undefined;
    if (code === undefined) return fail('layout', path + ': unknown value "' + String(v) + '"');
    return code;
  }
  switch (t) {
    case 'failureOrNull':
      return v === null ? null : writeField(OTA_FAILURES, v, path);
    case 'variables': {
      if (!Array.isArray(v)) return expected(path, 'an array');
      const out: WireValue[] = [];
      for (let i = 0; i < v.length; i++) {
        const p = path + '[' + i + ']';
        const d = v[i] as { name?: unknown; type?: unknown };
        if (d === null || typeof d !== 'object') return expected(p, 'an object');
        out.push(writeField('text', d.name, p + '.name'), writeField(VAR_TYPES, d.type, p + '.type'));
      }
      return out;
    }
    case 'vitals': {
      if (v === null || typeof v !== 'object') return expected(path, 'an object');
      const values = v as { [name: string]: unknown };
      for (const key in values) {
        if (Object.prototype.hasOwnProperty.call(values, key) && vitalCode(key) === undefined)
          return fail('layout', path + ': unknown vital "' + key + '"');
      }
      // Table order, so one report has one encoding.
      const out: WireValue[] = [];
      for (let i = 0; i < VITALS.length; i++) {
        const name = VITALS[i][1];
        if (Object.prototype.hasOwnProperty.call(values, name) && values[name] !== undefined)
          out.push(VITALS[i][0], writeField('num', values[name], path + '.' + name));
      }
      return out;
    }
    case 'slots': {
      if (v === null || typeof v !== 'object') return expected(path, 'an object');
      const s = v as { slot?: unknown; trial?: unknown; rolledBackFrom?: unknown };
      return [
        writeField('uint', s.slot, path + '.slot'),
        writeField('bool', s.trial, path + '.trial'),
        writeField('uintOrNull', s.rolledBackFrom, path + '.rolledBackFrom'),
      ];
    }
  }
  // Scalars and flat lists have the same shape on both sides.
  return readField(t, v as WireValue, path) as WireValue;
}
