/**
 * The agent's own tiny codec. CBOR: `cborEncode` writes what cbor-x writes on
 * the cloud (shortest heads; integers within ±2^32 as integers, other numbers
 * as float64); `cborDecode` runs the core's strict scanner first, so malformed
 * input fails with the cloud's exact message. Messages: the agent builds its
 * seven outbound kinds as arrays where it sends them, and `decodeIn` reads
 * the five kinds the cloud sends, checking what the agent relies on.
 * test/vectors/messages.ts checks both against the cloud's codec.
 */
import {
  fail, KIND, LIMITS, nameProblem, eventNameProblem, OTA_FAILURE, REQUEST_OP, scanCbor, utf8Length, utf8Read, utf8Write, WireValue,
} from '@flotilla/protocol/core';
import type { CloudEvent, OtaAbort, OtaBegin, OtaChunk, Request } from '@flotilla/protocol/core';

export type Inbound = ({ kind: 'request' } & Request) | ({ kind: 'otaBegin' } & OtaBegin) | ({ kind: 'otaChunk' } & OtaChunk) | ({ kind: 'otaAbort' } & OtaAbort) | ({ kind: 'cloudEvent' } & CloudEvent);

// One 8-byte scratch for float conversions.
const dv = new DataView(new ArrayBuffer(8));

function head(o: number[], major: number, n: number): void {
  const m = major << 5;
  if (n < 24) o.push(m | n);
  else if (n < 256) o.push(m | 24, n);
  else if (n < 65536) o.push(m | 25, n >> 8, n & 255);
  else o.push(m | 26, n >>> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255);
}

function put(o: number[], v: WireValue): void {
  let i = 0;
  if (v === null || v === true || v === false) o.push(v === null ? 0xf6 : v ? 0xf5 : 0xf4);
  else if (typeof v === 'number') {
    if (Math.floor(v) === v && v >= -4294967296 && v <= 4294967295) head(o, v < 0 ? 1 : 0, v < 0 ? -1 - v : v);
    else {
      dv.setFloat64(0, v);
      o.push(0xfb);
      for (; i < 8; i++) o.push(dv.getUint8(i));
    }
  } else if (typeof v === 'string' || v instanceof Uint8Array) {
    let b = v as Uint8Array;
    if (typeof v === 'string') utf8Write(v, (b = new Uint8Array(utf8Length(v))), 0);
    head(o, typeof v === 'string' ? 3 : 2, b.length);
    for (; i < b.length; i++) o.push(b[i]);
  } else {
    head(o, 4, v.length);
    for (; i < v.length; i++) put(o, v[i]);
  }
}

export function cborEncode(v: WireValue): Uint8Array {
  const o: number[] = [];
  put(o, v);
  return new Uint8Array(o);
}

let src: Uint8Array = new Uint8Array(0);
let at = 0;

function get(): WireValue {
  const ib = src[at++];
  const major = ib >> 5;
  const ai = ib & 31;
  let n = ai;
  if (major === 7) {
    if (ai < 24) return ai === 22 ? null : ai === 21;
    n = 1 << (ai - 24); // 2, 4 or 8 bytes
    for (let i = 0; i < n; i++) dv.setUint8(i, src[at++]);
    if (n === 4) return dv.getFloat32(0);
    if (n === 8) return dv.getFloat64(0);
    const h = dv.getUint16(0);
    const e = (h >> 10) & 31;
    const m = h & 1023;
    const v = e === 0 ? m * 5.960464477539063e-8 : e === 31 ? (m ? NaN : Infinity) : Math.pow(2, e - 25) * (1024 + m);
    return h & 0x8000 ? -v : v;
  }
  if (ai > 23) {
    // 1, 2, 4 or 8 bytes of argument, big-endian (the scanner bounded them).
    n = 0;
    for (let i = 0, k = 1 << (ai - 24); i < k; i++) n = n * 256 + src[at++];
  }
  if (major < 2) return major ? -1 - n : n;
  if (major === 4) {
    const list: WireValue[] = [];
    while (n-- > 0) list.push(get());
    return list;
  }
  const start = at;
  at += n;
  if (major === 3) return utf8Read(src, start, at);
  // A copy: the caller may keep it after the receive buffer is reused.
  const b = new Uint8Array(n);
  b.set(src.subarray(start, at));
  return b;
}

/** Decodes one item; throws the core scanner's ProtocolError for anything outside the wire subset. */
export function cborDecode(bytes: Uint8Array): WireValue {
  scanCbor(bytes);
  src = bytes;
  at = 0;
  const v = get();
  src = new Uint8Array(0);
  return v;
}

/** The name in a `{ name: code }` table for a code, or '' (for the cloud's enums). */
export function nameOf(table: { [name: string]: number }, code: unknown): string {
  for (const k in table) if (table[k] === code) return k;
  return '';
}

let msg: WireValue[] = [];

/** Field `i` of the message being read: an unsigned integer. */
function uint(i: number, max?: number): number {
  const v = msg[i];
  if (typeof v !== 'number' || v < 0 || Math.floor(v) !== v || (max !== undefined && v > max)) fail('layout', 'field ' + i + ': expected an unsigned integer' + (max !== undefined ? ' up to ' + max : ''));
  return v as number;
}

function text(i: number, max: number): string {
  const v = msg[i];
  if (typeof v !== 'string') return fail('layout', 'field ' + i + ': expected text');
  if (utf8Length(v) > max) fail('limit', 'field ' + i + ' is over ' + max + ' bytes', undefined, max);
  return v;
}

function bytes(i: number, min: number, max: number): Uint8Array {
  const v = msg[i];
  if (!(v instanceof Uint8Array) || v.length < min || v.length > max) fail('layout', 'field ' + i + ': expected ' + min + ' to ' + max + ' bytes');
  return v as Uint8Array;
}

function data(i: number): string | Uint8Array | null {
  const v = msg[i];
  if (v === null) return null;
  return typeof v === 'string' ? text(i, LIMITS.eventDataMaxBytes) : bytes(i, 0, LIMITS.eventDataMaxBytes);
}

function name(i: number, event?: boolean): string {
  const v = text(i, LIMITS.nameMaxBytes);
  const problem = event ? eventNameProblem(v) : nameProblem(v);
  if (problem) fail('value', 'field ' + i + ': name ' + problem);
  return v;
}

/** Reads one message the cloud sends a device; throws a ProtocolError for anything else. */
export function decodeIn(b: Uint8Array): Inbound {
  const v = cborDecode(b);
  if (!(v instanceof Array)) return fail('layout', 'message must be a CBOR array');
  msg = v;
  const kind = v[0];
  // Fields per kind, after the code; a request's depend on its op.
  const op = kind === KIND.request ? nameOf(REQUEST_OP, v[2]) : '';
  const size =
    kind === KIND.request ? (op === 'var' || op === 'signal' ? 4 : op === 'call' ? 5 : 3)
    : kind === KIND.otaBegin ? 7 : kind === KIND.otaChunk ? 4 : kind === KIND.otaAbort || kind === KIND.cloudEvent ? 3 : 0;
  if (!size || (kind === KIND.request && !op)) return fail('layout', 'unexpected message kind or op');
  if (v.length !== size) return fail('layout', 'expected ' + size + ' items, got ' + v.length);
  let out: Inbound;
  if (kind === KIND.request) {
    const r = { kind: 'request', id: uint(1), op: op } as { kind: 'request'; id: number; op: string; name?: string; arg?: string; on?: boolean };
    if (op === 'var' || op === 'call') r.name = name(3);
    if (op === 'call') r.arg = text(4, LIMITS.functionArgMaxBytes);
    if (op === 'signal') {
      if (typeof v[3] !== 'boolean') fail('layout', 'field 3: expected true or false');
      r.on = v[3] as boolean;
    }
    out = r as Inbound;
  } else if (kind === KIND.otaBegin) {
    out = {
      kind: 'otaBegin', job: uint(1), product: uint(2), version: uint(3), size: uint(4, LIMITS.otaImageMaxBytes), sha256: bytes(5, 32, 32),
      chunkSize: uint(6, LIMITS.otaChunkMaxBytes),
    };
    if (!out.size || !out.chunkSize) fail('value', 'size and chunk size must not be 0');
  } else if (kind === KIND.otaChunk) {
    out = { kind: 'otaChunk', job: uint(1), offset: uint(2), data: bytes(3, 1, LIMITS.otaChunkMaxBytes) };
  } else if (kind === KIND.otaAbort) {
    out = { kind: 'otaAbort', job: uint(1), reason: nameOf(OTA_FAILURE, uint(2)) as OtaAbort['reason'] };
  } else {
    out = { kind: 'cloudEvent', name: name(1, true), data: data(2) };
  }
  msg = [];
  return out;
}
