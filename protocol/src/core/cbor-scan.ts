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
 * Both codecs run it before decoding (the cloud's cbor-x, which is lenient,
 * and the firmware's own), so malformed input fails with the same message on
 * either side. It allocates nothing: a device can run it on every packet.
 */
import { fail } from './errors.js';
import { utf8Invalid } from './utf8.js';

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

// The scanner's cursor: module state, so the hot path makes no objects.
let argument = 0;

/** Throws unless `bytes` is exactly one well-formed item of the subset. */
export function scanCbor(bytes: Uint8Array): void {
  if (bytes.length === 0) fail('cbor', 'empty input: expected one CBOR item');
  const end = scanItem(bytes, 0, 1);
  if (end !== bytes.length) fail('cbor', 'trailing bytes after the CBOR item at byte ' + end);
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
  if (major === 7) return scanSimple(b, pos, ai);
  if (major === MAJOR_MAP) fail('cbor', 'CBOR map at byte ' + pos + ' is not allowed');
  if (major === MAJOR_TAG) fail('cbor', 'CBOR tag at byte ' + pos + ' is not allowed');
  const next = readHead(b, pos, ai);
  const n = argument;
  if (major === MAJOR_UINT || major === MAJOR_NINT) {
    // -1 - n must stay ≥ -(2^53 - 1) too, hence the stricter bound for negatives.
    if (n < 0 || (major === MAJOR_NINT && n > 9007199254740990))
      fail('cbor', 'integer at byte ' + pos + ' is outside the safe range');
    return next;
  }
  if (major === MAJOR_BYTES || major === MAJOR_TEXT) {
    if (n < 0 || next + n > b.length) truncated(pos);
    if (major === MAJOR_TEXT) {
      const bad = utf8Invalid(b, next, next + n);
      if (bad >= 0) fail('cbor', 'invalid UTF-8 in text string at byte ' + bad);
    }
    return next + n;
  }
  // MAJOR_ARRAY: every element takes at least one byte, so a count larger than
  // what is left is truncation (and no loop runs for a claimed 2^53 elements).
  if (n < 0 || next + n > b.length) truncated(pos);
  if (depth > MAX_DEPTH) fail('cbor', 'arrays nested deeper than ' + MAX_DEPTH + ' levels at byte ' + pos);
  let p = next;
  for (let i = 0; i < n; i++) p = scanItem(b, p, depth + 1);
  return p;
}

function scanSimple(b: Uint8Array, pos: number, ai: number): number {
  if (ai === 20 || ai === 21 || ai === 22) return pos + 1; // false, true, null
  const size = ai === 25 ? 3 : ai === 26 ? 5 : ai === 27 ? 9 : 0;
  if (size > 0) {
    if (pos + size > b.length) truncated(pos);
    return pos + size;
  }
  if (ai === 31) return fail('cbor', 'unexpected break code at byte ' + pos);
  if (ai === 23) return fail('cbor', 'undefined at byte ' + pos + ' is not allowed');
  return fail('cbor', 'simple value at byte ' + pos + ' is not allowed');
}
