/**
 * The agent's own tiny CBOR codec for the protocol's wire subset
 * (docs/protocol.md). It writes exactly what cbor-x writes on the cloud
 * (shortest heads; integers within ±2^32 as integers, other numbers as
 * float64) and reads what the core's strict scanner accepted, so both pass
 * test/vectors/messages.ts. Module-level state, no closures per call.
 */
import { scanCbor, utf8Length, utf8Read, utf8Write, WireValue } from '@flotilla/protocol/core';

// One 8-byte scratch for float conversions.
const scratch = new DataView(new ArrayBuffer(8));

function headSize(n: number): number {
  return n < 24 ? 1 : n < 256 ? 2 : n < 65536 ? 3 : 5;
}

function isIntegerHead(v: number): boolean {
  return Math.floor(v) === v && v >= -4294967296 && v <= 4294967295;
}

function sizeOf(v: WireValue): number {
  if (v === null || v === true || v === false) return 1;
  if (typeof v === 'number') return isIntegerHead(v) ? headSize(v < 0 ? -1 - v : v) : 9;
  if (typeof v === 'string') {
    const n = utf8Length(v);
    return headSize(n) + n;
  }
  if (v instanceof Uint8Array) return headSize(v.length) + v.length;
  let n = headSize(v.length);
  for (let i = 0; i < v.length; i++) n += sizeOf(v[i]);
  return n;
}

let out: Uint8Array = new Uint8Array(0);
let pos = 0;

function writeHead(major: number, n: number): void {
  const m = major << 5;
  if (n < 24) out[pos++] = m | n;
  else if (n < 256) {
    out[pos++] = m | 24;
    out[pos++] = n;
  } else if (n < 65536) {
    out[pos++] = m | 25;
    out[pos++] = n >> 8;
    out[pos++] = n & 255;
  } else {
    out[pos++] = m | 26;
    out[pos++] = (n >>> 24) & 255;
    out[pos++] = (n >> 16) & 255;
    out[pos++] = (n >> 8) & 255;
    out[pos++] = n & 255;
  }
}

function writeValue(v: WireValue): void {
  if (v === null) out[pos++] = 0xf6;
  else if (v === true) out[pos++] = 0xf5;
  else if (v === false) out[pos++] = 0xf4;
  else if (typeof v === 'number') {
    if (isIntegerHead(v)) {
      if (v < 0) writeHead(1, -1 - v);
      else writeHead(0, v);
    } else {
      out[pos++] = 0xfb;
      scratch.setFloat64(0, v);
      for (let i = 0; i < 8; i++) out[pos++] = scratch.getUint8(i);
    }
  } else if (typeof v === 'string') {
    writeHead(3, utf8Length(v));
    pos = utf8Write(v, out, pos);
  } else if (v instanceof Uint8Array) {
    writeHead(2, v.length);
    out.set(v, pos);
    pos += v.length;
  } else {
    writeHead(4, v.length);
    for (let i = 0; i < v.length; i++) writeValue(v[i]);
  }
}

/** Encodes one value. Strings must be valid Unicode (validate() checked them). */
export function cborEncode(v: WireValue): Uint8Array {
  const buf = new Uint8Array(sizeOf(v));
  out = buf;
  pos = 0;
  writeValue(v);
  out = new Uint8Array(0);
  return buf;
}

let src: Uint8Array = new Uint8Array(0);
let at = 0;

function readArg(ai: number): number {
  if (ai < 24) return ai;
  let n = 0;
  const len = ai === 24 ? 1 : ai === 25 ? 2 : ai === 26 ? 4 : 8;
  for (let i = 0; i < len; i++) n = n * 256 + src[at++];
  return n;
}

function readHalf(h: number): number {
  const exp = (h >> 10) & 31;
  const mant = h & 1023;
  const v = exp === 0 ? mant * 5.960464477539063e-8 : exp === 31 ? (mant ? NaN : Infinity) : Math.pow(2, exp - 25) * (1024 + mant);
  return h & 0x8000 ? -v : v;
}

function readValue(): WireValue {
  const ib = src[at++];
  const major = ib >> 5;
  const ai = ib & 31;
  if (major === 7) {
    if (ai === 20) return false;
    if (ai === 21) return true;
    if (ai === 22) return null;
    const n = ai === 25 ? 2 : ai === 26 ? 4 : 8;
    for (let i = 0; i < n; i++) scratch.setUint8(i, src[at++]);
    return n === 2 ? readHalf(scratch.getUint16(0)) : n === 4 ? scratch.getFloat32(0) : scratch.getFloat64(0);
  }
  const n = readArg(ai);
  if (major === 0) return n;
  if (major === 1) return -1 - n;
  if (major === 2) {
    // A copy: the caller may keep it after the receive buffer is reused.
    const b = new Uint8Array(n);
    b.set(src.subarray(at, at + n));
    at += n;
    return b;
  }
  if (major === 3) {
    const s = utf8Read(src, at, at + n);
    at += n;
    return s;
  }
  const list: WireValue[] = [];
  for (let i = 0; i < n; i++) list.push(readValue());
  return list;
}

/** Decodes one item; throws the scanner's ProtocolError for anything outside the subset. */
export function cborDecode(bytes: Uint8Array): WireValue {
  scanCbor(bytes);
  src = bytes;
  at = 0;
  const v = readValue();
  src = new Uint8Array(0);
  return v;
}
