/**
 * Strict well-formedness check for the CBOR subset the protocol speaks
 * (docs/protocol.md, "Wire subset"): unsigned and negative integers within
 * ±(2^53 - 1), floats (16/32/64-bit), byte strings, UTF-8 text strings,
 * definite-length arrays, false, true, null.
 *
 * Refused, each with its own message: maps, tags, indefinite lengths,
 * undefined and other simple values, reserved additional-info values, bad
 * UTF-8, integers outside the safe range, nesting deeper than MAX_DEPTH,
 * truncation, and trailing bytes.
 *
 * One pass does both jobs: the firmware decodes with it (`decodeCbor`), the
 * cloud scans with it before cbor-x, which is lenient (`scanCbor`), so
 * malformed input fails with the same message on either side. Scanning alone
 * allocates nothing.
 */
import { fail } from './errors.js';
import type { WireValue } from './layout.js';
import { utf8Decode } from './utf8.js';

/** Deepest array nesting a message may use (hello's nested lists need 3). */
export const MAX_DEPTH = 4;

const MAJOR_UINT = 0;
const MAJOR_NINT = 1;
const MAJOR_BYTES = 2;
const MAJOR_TEXT = 3;
const MAJOR_MAP = 5;
const MAJOR_TAG = 6;

/** 2^32, for reading 8-byte arguments as two halves. */
const TWO32 = 4294967296;
/** Largest high half of an 8-byte argument that keeps it ≤ 2^53 - 1. */
const MAX_SAFE_HIGH = 0x1fffff;

// The scanner's state: module variables, so scanning makes no objects. `build`: whether
// scanItem also makes the item's value, which it leaves in `value`.
let argument = 0;
let build = false;
let value: WireValue = null;
/** One 8-byte scratch for float conversions: the decoder's here, and the firmware's encoder (one object less on a device). */
export const floatScratch = new DataView(new ArrayBuffer(8));
const dv = floatScratch;

/** Throws unless `bytes` is exactly one well-formed item of the subset. */
export function scanCbor(bytes: Uint8Array): void {
  decodeCbor(bytes, true);
}

/**
 * The one item in `bytes`; throws a ProtocolError unless `bytes` is exactly
 * one well-formed item of the subset. With `scanOnly`, checks and returns null.
 */
export function decodeCbor(bytes: Uint8Array, scanOnly?: boolean): WireValue {
  if (bytes.length === 0) fail('cbor', 'empty input: expected one CBOR item');
  build = !scanOnly;
  const end = scanItem(bytes, 0, 1);
  if (end !== bytes.length) fail('cbor', 'trailing bytes after the CBOR item at byte ' + end);
  const v = value;
  value = null;
  return v;
}

function truncated(at: number): never {
  return fail('cbor', 'truncated CBOR item at byte ' + at);
}

/** Reads the argument of the head at `pos` into `argument`; returns the offset after the head. */
function readHead(b: Uint8Array, pos: number, ai: number): number {
  if (ai < 24) {
    argument = ai;
    return pos + 1;
  }
  if (ai === 24) {
    if (pos + 2 > b.length) truncated(pos);
    argument = b[pos + 1];
    return pos + 2;
  }
  if (ai === 25) {
    if (pos + 3 > b.length) truncated(pos);
    argument = b[pos + 1] * 256 + b[pos + 2];
    return pos + 3;
  }
  if (ai === 26) {
    if (pos + 5 > b.length) truncated(pos);
    argument = ((b[pos + 1] << 24) >>> 0) + (b[pos + 2] << 16) + (b[pos + 3] << 8) + b[pos + 4];
    return pos + 5;
  }
  if (ai === 27) {
    if (pos + 9 > b.length) truncated(pos);
    const hi = ((b[pos + 1] << 24) >>> 0) + (b[pos + 2] << 16) + (b[pos + 3] << 8) + b[pos + 4];
    const lo = ((b[pos + 5] << 24) >>> 0) + (b[pos + 6] << 16) + (b[pos + 7] << 8) + b[pos + 8];
    // Above 2^53 the value is not exact in a JS number; -1 marks "too large".
    argument = hi > MAX_SAFE_HIGH ? -1 : hi * TWO32 + lo;
    return pos + 9;
  }
  if (ai === 31) return fail('cbor', 'indefinite-length item at byte ' + pos + ' is not allowed');
  return fail('cbor', 'reserved additional information ' + ai + ' at byte ' + pos);
}

function scanItem(b: Uint8Array, pos: number, depth: number): number {
  if (pos >= b.length) truncated(pos);
  const ib = b[pos];
  const major = ib >> 5;
  const ai = ib & 31;
  if (major === 7) {
    if (ai === 20 || ai === 21 || ai === 22) {
      value = ai === 22 ? null : ai === 21; // false, true, null
      return pos + 1;
    }
    const size = ai === 25 ? 3 : ai === 26 ? 5 : ai === 27 ? 9 : 0;
    if (size > 0) {
      if (pos + size > b.length) truncated(pos);
      if (build) {
        for (let i = 1; i < size; i++) dv.setUint8(i - 1, b[pos + i]);
        if (size === 5) value = dv.getFloat32(0);
        else if (size === 9) value = dv.getFloat64(0);
        else {
          // Half precision (RFC 8949 appendix D): no DataView method for it.
          const h = dv.getUint16(0);
          const e = (h >> 10) & 31;
          const m = h & 1023;
          const v = e === 0 ? m * 5.960464477539063e-8 : e === 31 ? (m ? NaN : Infinity) : Math.pow(2, e - 25) * (1024 + m);
          value = h & 0x8000 ? -v : v;
        }
      }
      return pos + size;
    }
    if (ai === 31) return fail('cbor', 'unexpected break code at byte ' + pos);
    if (ai === 23) return fail('cbor', 'undefined at byte ' + pos + ' is not allowed');
    return fail('cbor', 'simple value at byte ' + pos + ' is not allowed');
  }
  if (major === MAJOR_MAP) fail('cbor', 'CBOR map at byte ' + pos + ' is not allowed');
  if (major === MAJOR_TAG) fail('cbor', 'CBOR tag at byte ' + pos + ' is not allowed');
  const next = readHead(b, pos, ai);
  const n = argument;
  if (major === MAJOR_UINT || major === MAJOR_NINT) {
    // -1 - n must stay ≥ -(2^53 - 1) too, hence the stricter bound for negatives.
    if (n < 0 || (major === MAJOR_NINT && n > 9007199254740990))
      fail('cbor', 'integer at byte ' + pos + ' is outside the safe range');
    value = major === MAJOR_NINT ? -1 - n : n;
    return next;
  }
  if (major === MAJOR_BYTES || major === MAJOR_TEXT) {
    if (n < 0 || next + n > b.length) truncated(pos);
    if (major === MAJOR_TEXT) {
      const text = utf8Decode(b, next, next + n, build);
      if (typeof text === 'number') fail('cbor', 'invalid UTF-8 in text string at byte ' + text);
      value = text;
    } else if (build) {
      // A copy: the caller may keep it after the receive buffer is reused.
      value = new Uint8Array(n);
      value.set(b.subarray(next, next + n));
    }
    return next + n;
  }
  // MAJOR_ARRAY: every element takes at least one byte, so a count larger than
  // what is left is truncation (and no loop runs for a claimed 2^53 elements).
  if (n < 0 || next + n > b.length) truncated(pos);
  if (depth > MAX_DEPTH) fail('cbor', 'arrays nested deeper than ' + MAX_DEPTH + ' levels at byte ' + pos);
  let p = next;
  const list: WireValue[] | null = build ? [] : null;
  for (let i = 0; i < n; i++) {
    p = scanItem(b, p, depth + 1);
    if (list) list.push(value);
  }
  value = list;
  return p;
}
