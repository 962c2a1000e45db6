/**
 * The agent's own tiny codec. CBOR: `cborEncode` writes what cbor-x writes on
 * the cloud (shortest heads; integers within ±2^32 as integers, other numbers
 * as float64); `cborDecode` is the core's strict scanner building the value
 * as it goes, so malformed input fails with the cloud's exact message.
 * Messages: the agent builds its seven outbound kinds as arrays where it
 * sends them, and `decodeIn` reads the five kinds the cloud sends, checking
 * what the agent relies on.
 * test/vectors/messages.ts checks both against the cloud's codec.
 */
import {
  decodeCbor, fail, floatScratch, KIND, LIMITS, nameProblem, eventNameProblem, OTA_FAILURE, REQUEST_OP, utf8Length, utf8Write, WireValue,
} from '@flotilla/protocol/core';
import type { CloudEvent, OtaAbort, OtaBegin, OtaChunk, Request } from '@flotilla/protocol/core';

export type Inbound = ({ kind: 'request' } & Request) | ({ kind: 'otaBegin' } & OtaBegin) | ({ kind: 'otaChunk' } & OtaChunk) | ({ kind: 'otaAbort' } & OtaAbort) | ({ kind: 'cloudEvent' } & CloudEvent);

// The core's 8-byte scratch for float conversions.
const dv = floatScratch;

/**
 * Encodes `v`; with `out`, appends to it (the recursion) and returns null.
 * One function for head, scalars and arrays: each function costs heap.
 */
export function cborEncode(v: WireValue): Uint8Array;
export function cborEncode(v: WireValue, out: number[]): null;
export function cborEncode(v: WireValue, out?: number[]): Uint8Array | null {
  const o = out || [];
  let major = -1;
  let n = 0;
  let i = 0;
  let b: Uint8Array | null = null;
  if (v === null || v === true || v === false) o.push(v === null ? 0xf6 : v ? 0xf5 : 0xf4);
  else if (typeof v === 'number') {
    if (Math.floor(v) === v && v >= -4294967296 && v <= 4294967295) {
      major = v < 0 ? 1 : 0;
      n = v < 0 ? -1 - v : v;
    } else {
      dv.setFloat64(0, v);
      o.push(0xfb);
      for (; i < 8; i++) o.push(dv.getUint8(i));
    }
  } else if (typeof v === 'string' || v instanceof Uint8Array) {
    b = v as Uint8Array;
    if (typeof v === 'string') utf8Write(v, (b = new Uint8Array(utf8Length(v))), 0);
    major = typeof v === 'string' ? 3 : 2;
    n = b.length;
  } else {
    major = 4;
    n = v.length;
  }
  if (major >= 0) {
    // The head: shortest form of the argument, big-endian.
    const m = major << 5;
    if (n < 24) o.push(m | n);
    else if (n < 256) o.push(m | 24, n);
    else if (n < 65536) o.push(m | 25, n >> 8, n & 255);
    else o.push(m | 26, n >>> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255);
    for (; major > 1 && i < n; i++) {
      if (b) o.push(b[i]);
      else cborEncode((v as WireValue[])[i], o);
    }
  }
  return out ? null : new Uint8Array(o);
}

/** Decodes one item; throws the core scanner's ProtocolError for anything outside the wire subset. */
export { decodeCbor as cborDecode };

/** The name in a `{ name: code }` table for a code, or '' (for the cloud's enums). */
export function nameOf(table: { [name: string]: number }, code: unknown): string {
  for (const k in table) if (table[k] === code) return k;
  return '';
}

let msg: WireValue[] = [];

/**
 * The id of the request `decodeIn` last refused, or -1 (it refused no request, or one without an id):
 * such a request is answered, so its caller does not wait for a timeout.
 */
export let refusedId = -1;

/** Reads one message the cloud sends a device; throws a ProtocolError for anything else. */
export function decodeIn(b: Uint8Array): Inbound;
/**
 * (While reading: field `i` of the message, checked, one function with the
 * message's: 'u' an unsigned integer (up to `max`), 't' text of at most `max`
 * bytes, 'b' `min` to `max` bytes, 'n' a name, 'e' an event name, 'd' event
 * data (null, text or bytes), as `check` says.)
 */
export function decodeIn(i: number, check: string, max?: number, min?: number): any;
export function decodeIn(b: Uint8Array | number, check?: string, max?: number, min?: number): any {
  if (typeof b === 'number') {
    const i = b;
    const f = msg[i];
    if (check === 'd') {
      if (f === null) return null;
      check = typeof f === 'string' ? 't' : 'b';
      max = LIMITS.eventDataMaxBytes;
      min = 0;
    }
    if (check === 'u') {
      if (typeof f !== 'number' || f < 0 || Math.floor(f) !== f || (max !== undefined && f > max)) fail('layout', 'field ' + i + ': expected an unsigned integer' + (max !== undefined ? ' up to ' + max : ''));
    } else if (check === 'b') {
      if (!(f instanceof Uint8Array) || f.length < min! || f.length > max!) fail('layout', 'field ' + i + ': expected ' + min + ' to ' + max + ' bytes');
    } else {
      if (typeof f !== 'string') return fail('layout', 'field ' + i + ': expected text');
      if (check !== 't') max = LIMITS.nameMaxBytes;
      if (utf8Length(f) > max!) fail('limit', 'field ' + i + ' is over ' + max + ' bytes', undefined, max);
      const problem = check === 't' ? '' : check === 'e' ? eventNameProblem(f) : nameProblem(f);
      if (problem) fail('value', 'field ' + i + ': name ' + problem);
    }
    return f;
  }
  const field = decodeIn;
  refusedId = -1;
  const v = decodeCbor(b);
  if (!(v instanceof Array)) return fail('layout', 'message must be a CBOR array');
  msg = v;
  const kind = v[0];
  if (kind === KIND.request) refusedId = field(1, 'u');
  // Fields per kind, after the code; a request's depend on its op.
  const op = kind === KIND.request ? nameOf(REQUEST_OP, v[2]) : '';
  const size =
    kind === KIND.request ? (op === 'var' || op === 'signal' ? 4 : op === 'call' ? 5 : 3)
    : kind === KIND.otaBegin ? 7 : kind === KIND.otaChunk ? 4 : kind === KIND.otaAbort || kind === KIND.cloudEvent ? 3 : 0;
  if (!size || (kind === KIND.request && !op)) return fail('layout', 'unexpected message kind or op');
  if (v.length !== size) return fail('layout', 'expected ' + size + ' items, got ' + v.length);
  let out: Inbound;
  if (kind === KIND.request) {
    const r = { kind: 'request', id: field(1, 'u'), op: op } as { kind: 'request'; id: number; op: string; name?: string; arg?: string; on?: boolean };
    if (op === 'var' || op === 'call') r.name = field(3, 'n');
    if (op === 'call') r.arg = field(4, 't', LIMITS.functionArgMaxBytes);
    if (op === 'signal') {
      if (typeof v[3] !== 'boolean') fail('layout', 'field 3: expected true or false');
      r.on = v[3] as boolean;
    }
    out = r as Inbound;
  } else if (kind === KIND.otaBegin) {
    out = {
      kind: 'otaBegin', job: field(1, 'u'), product: field(2, 'u'), version: field(3, 'u'), size: field(4, 'u', LIMITS.otaImageMaxBytes), sha256: field(5, 'b', 32, 32),
      chunkSize: field(6, 'u', LIMITS.otaChunkMaxBytes),
    };
    if (!out.size || !out.chunkSize) fail('value', 'size and chunk size must not be 0');
  } else if (kind === KIND.otaChunk) {
    out = { kind: 'otaChunk', job: field(1, 'u'), offset: field(2, 'u'), data: field(3, 'b', LIMITS.otaChunkMaxBytes, 1) };
  } else if (kind === KIND.otaAbort) {
    out = { kind: 'otaAbort', job: field(1, 'u'), reason: nameOf(OTA_FAILURE, field(2, 'u')) as OtaAbort['reason'] };
  } else {
    out = { kind: 'cloudEvent', name: field(1, 'e'), data: field(2, 'd') };
  }
  msg = [];
  refusedId = -1;
  return out;
}
