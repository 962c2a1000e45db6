/**
 * Commented byte vectors for every message kind (docs/protocol.md). The cloud
 * codec (cbor-x) and the firmware's own codec are both tested against these,
 * so they cannot drift:
 *   - VECTORS: decode(bytes) equals {kind, ...body}; encode(kind, body) equals
 *     bytes exactly; decode(encode(body)) equals body.
 *   - DECODE_ONLY: accepted on input but not what an encoder writes
 *     (non-shortest heads, half and single floats).
 *   - DECODE_ERRORS: decode(bytes) fails with exactly this ProtocolError.
 *   - ENCODE_ERRORS: encode(kind, body) fails with exactly this ProtocolError.
 * Bytes are plain numbers so an embedded engine can load them as JSON.
 */
import type { Kind, Messages, ProtocolErrorCode } from '@flotilla/protocol/core';

export interface Vector<K extends Kind = Kind> {
  name: string;
  kind: K;
  body: Messages[K];
  bytes: number[];
}

export interface ErrorVector {
  name: string;
  bytes: number[];
  error: { code: ProtocolErrorCode; message: string };
}

export interface EncodeErrorVector {
  name: string;
  kind: Kind;
  body: unknown;
  error: { code: ProtocolErrorCode; message: string };
}

function v<K extends Kind>(name: string, kind: K, body: Messages[K], bytes: number[]): Vector {
  return { name, kind, body, bytes } as Vector;
}

const ascii = (s: string): number[] => s.split('').map((c) => c.charCodeAt(0));
const repeat = (byte: number, n: number): number[] => new Array<number>(n).fill(byte);
/** SHA-256 of the empty string, a well-known 32-byte value. */
const SHA_EMPTY = [
  0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
  0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

export const VECTORS: Vector[] = [
  v('hello, one of everything', 'hello',
    { agent: '0.1.0', firmware: 3, product: 7, variables: [{ name: 'temp', type: 'double' }], functions: ['led'],
      subscriptions: ['alert/'], bootReason: 'pin_reset', ota: { slot: 0, trial: false, rolledBackFrom: null } },
    [
      0x89, //                               array(9)
      0x01, //                               kind 1: hello
      0x65, ...ascii('0.1.0'), //            agent: text(5)
      0x03, //                               firmware 3
      0x07, //                               product 7
      0x82, 0x64, ...ascii('temp'), 0x03, // variables: array(2): "temp", type 3 (double)
      0x81, 0x63, ...ascii('led'), //        functions: array(1): "led"
      0x81, 0x66, ...ascii('alert/'), //     subscriptions: array(1): "alert/"
      0x14, //                               bootReason 20: pin_reset
      0x83, 0x00, 0xf4, 0xf6, //             ota: [slot 0, trial false, rolledBackFrom null]
    ]),
  v('hello, on trial after an update, empty lists', 'hello',
    { agent: '1.2.3', firmware: 1000, product: 65536, variables: [], functions: [], subscriptions: [],
      bootReason: 'update', ota: { slot: 1, trial: true, rolledBackFrom: 7 } },
    [
      0x89, 0x01, //                         array(9), kind 1: hello
      0x65, ...ascii('1.2.3'), //            agent
      0x19, 0x03, 0xe8, //                   firmware 1000: uint16
      0x1a, 0x00, 0x01, 0x00, 0x00, //       product 65536: uint32
      0x80, 0x80, 0x80, //                   variables, functions, subscriptions: array(0)
      0x18, 0x46, //                         bootReason 70: update (uint8)
      0x83, 0x01, 0xf5, 0x07, //             ota: [slot 1, trial true, rolled back from 7]
    ]),
  v('event with text data', 'event', { data: '21.5', ttl: 60 }, [
    0x83, 0x02, //                           array(3), kind 2: event
    0x64, ...ascii('21.5'), //               data: text(4)
    0x18, 0x3c, //                           ttl 60
  ]),
  v('event with binary data', 'event', { data: new Uint8Array([1, 2, 0xff]), ttl: 0 }, [
    0x83, 0x02, //                           array(3), kind 2: event
    0x43, 0x01, 0x02, 0xff, //               data: bytes(3)
    0x00, //                                 ttl 0
  ]),
  v('event with no data', 'event', { data: null, ttl: 60 }, [0x83, 0x02, 0xf6, 0x18, 0x3c]), // data null
  v('vitals, integer and double', 'vitals',
    { values: { 'device.system.uptime': 5, 'device.network.signal.strength': 55.5 } },
    [
      0x82, 0x03, //                         array(2), kind 3: vitals
      0x84, //                               values: array(4) = 2 pairs, in table order
      0x01, 0x05, //                         code 1 device.system.uptime: 5
      0x18, 0x28, 0xfb, 0x40, 0x4b, 0xc0, 0, 0, 0, 0, 0, // code 40 signal.strength: float64 55.5
    ]),
  v('vitals, 16-bit and negative values', 'vitals',
    { values: { 'device.system.memory.used': 30000, 'device.network.signal.strengthv': -70 } },
    [
      0x82, 0x03, 0x84, //                   array(2), kind 3, array(4)
      0x02, 0x19, 0x75, 0x30, //             code 2 memory.used: 30000 (uint16)
      0x18, 0x29, 0x38, 0x45, //             code 41 signal.strengthv: -70 (negative, -1-69)
    ]),
  v('vitals, empty report', 'vitals', { values: {} }, [0x82, 0x03, 0x80]),
  v('error report from a function handler', 'error',
    { source: 'function', name: 'led', message: 'boom', stack: 'at led', count: 3, uptime: 120 },
    [
      0x87, 0x04, //                         array(7), kind 4: error
      0x02, //                               source 2: function
      0x63, ...ascii('led'), //              name
      0x64, ...ascii('boom'), //             message
      0x66, ...ascii('at led'), //           stack
      0x03, //                               count 3
      0x18, 0x78, //                         uptime 120 s
    ]),
  v('reply: function returned 1', 'reply', { id: 42, status: 'ok', value: 1 }, [
    0x84, 0x05, //                           array(4), kind 5: reply
    0x18, 0x2a, //                           id 42
    0x00, //                                 status 0: ok
    0x01, //                                 value 1
  ]),
  v('reply: string variable', 'reply', { id: 7, status: 'ok', value: 'hi' }, [0x84, 0x05, 0x07, 0x00, 0x62, ...ascii('hi')]),
  v('reply: bool variable', 'reply', { id: 1, status: 'ok', value: true }, [0x84, 0x05, 0x01, 0x00, 0xf5]),
  v('reply: double variable', 'reply', { id: 2, status: 'ok', value: 0.5 }, [
    0x84, 0x05, 0x02, 0x00, //               array(4), kind 5, id 2, ok
    0xfb, 0x3f, 0xe0, 0, 0, 0, 0, 0, 0, //   value: float64 0.5 (non-integers are always float64)
  ]),
  v('reply: 2^32 is beyond uint32, so float64', 'reply', { id: 8, status: 'ok', value: 4294967296 }, [
    0x84, 0x05, 0x08, 0x00, //               array(4), kind 5, id 8, ok
    0xfb, 0x41, 0xf0, 0, 0, 0, 0, 0, 0, //   value: float64 2^32 (integers outside ±2^32 are float64)
  ]),
  v('reply: -2^32 is the smallest negative integer', 'reply', { id: 9, status: 'ok', value: -4294967296 }, [
    0x84, 0x05, 0x09, 0x00, //               array(4), kind 5, id 9, ok
    0x3a, 0xff, 0xff, 0xff, 0xff, //         value: negative, -1 - 0xffffffff
  ]),
  v('reply: variable not found', 'reply', { id: 3, status: 'not_found', value: null }, [0x84, 0x05, 0x03, 0x01, 0xf6]),
  v('reply: handler threw', 'reply', { id: 4, status: 'handler_error', value: 'x' }, [0x84, 0x05, 0x04, 0x03, 0x61, 0x78]),
  v('otaStatus: holding 4096 bytes', 'otaStatus', { job: 9, state: 'offset', offset: 4096, reason: null }, [
    0x85, 0x06, //                           array(5), kind 6: otaStatus
    0x09, //                                 job 9
    0x01, //                                 state 1: offset
    0x19, 0x10, 0x00, //                     offset 4096
    0xf6, //                                 reason null
  ]),
  v('otaStatus: verified', 'otaStatus', { job: 9, state: 'verified', offset: 65536, reason: null }, [
    0x85, 0x06, 0x09, 0x02, 0x1a, 0x00, 0x01, 0x00, 0x00, 0xf6, // state 2, offset 65536
  ]),
  v('otaStatus: failed, bad SHA-256', 'otaStatus', { job: 9, state: 'failed', offset: 0, reason: 'bad_sha' }, [
    0x85, 0x06, 0x09, 0x03, 0x00, 0x01, //   state 3: failed, offset 0, reason 1: bad_sha
  ]),
  v('status: offline (the will)', 'status', { online: false }, [0x82, 0x07, 0xf4]),
  v('status: online', 'status', { online: true }, [0x82, 0x07, 0xf5]),
  v('request: read variable', 'request', { id: 1, op: 'var', name: 'temp' }, [
    0x84, 0x10, //                           array(4), kind 16: request
    0x01, //                                 id 1
    0x01, //                                 op 1: var
    0x64, ...ascii('temp'), //               name
  ]),
  v('request: call function', 'request', { id: 2, op: 'call', name: 'led', arg: 'on' }, [
    0x85, 0x10, 0x02, //                     array(5), kind 16, id 2
    0x02, //                                 op 2: call
    0x63, ...ascii('led'), //                name
    0x62, ...ascii('on'), //                 arg
  ]),
  v('request: call with an empty argument', 'request', { id: 3, op: 'call', name: 'go', arg: '' }, [
    0x85, 0x10, 0x03, 0x02, 0x62, ...ascii('go'), 0x60, // arg: text(0)
  ]),
  v('request: ping', 'request', { id: 3, op: 'ping' }, [0x83, 0x10, 0x03, 0x03]),
  v('request: refresh vitals', 'request', { id: 4, op: 'vitals' }, [0x83, 0x10, 0x04, 0x04]),
  v('request: signal on', 'request', { id: 5, op: 'signal', on: true }, [0x84, 0x10, 0x05, 0x05, 0xf5]),
  v('request: reset', 'request', { id: 4294967295, op: 'reset' }, [
    0x83, 0x10, //                           array(3), kind 16
    0x1a, 0xff, 0xff, 0xff, 0xff, //         id 2^32 - 1 (uint32)
    0x06, //                                 op 6: reset
  ]),
  v('otaBegin', 'otaBegin',
    { job: 9, product: 7, version: 4, size: 65536, sha256: new Uint8Array(SHA_EMPTY), chunkSize: 1024 },
    [
      0x87, 0x11, //                         array(7), kind 17: otaBegin
      0x09, 0x07, 0x04, //                   job 9, product 7, version 4
      0x1a, 0x00, 0x01, 0x00, 0x00, //       size 65536
      0x58, 0x20, ...SHA_EMPTY, //           sha256: bytes(32), 1-byte length
      0x19, 0x04, 0x00, //                   chunkSize 1024
    ]),
  v('otaChunk', 'otaChunk', { job: 9, offset: 1024, data: new Uint8Array([0xde, 0xad, 0xbe, 0xef]) }, [
    0x84, 0x12, //                           array(4), kind 18: otaChunk
    0x09, //                                 job 9
    0x19, 0x04, 0x00, //                     offset 1024
    0x44, 0xde, 0xad, 0xbe, 0xef, //         data: bytes(4)
  ]),
  v('otaAbort', 'otaAbort', { job: 9, reason: 'aborted' }, [0x83, 0x13, 0x09, 0x07]), // reason 7: aborted
  v('cloudEvent', 'cloudEvent', { name: 'alert/fire', data: 'x' }, [
    0x83, 0x14, //                           array(3), kind 20: cloudEvent
    0x6a, ...ascii('alert/fire'), //         name: text(10)
    0x61, 0x78, //                           data "x"
  ]),
  v('cloudEvent with multi-byte UTF-8 data', 'cloudEvent', { name: 'msg', data: 'é€😀' }, [
    0x83, 0x14, 0x63, ...ascii('msg'),
    0x69, //                                 text(9)
    0xc3, 0xa9, //                           é   (2 bytes)
    0xe2, 0x82, 0xac, //                     €   (3 bytes)
    0xf0, 0x9f, 0x98, 0x80, //               😀  (4 bytes, a surrogate pair in JS)
  ]),
];

/** Accepted on input, though no encoder writes them. */
export const DECODE_ONLY: Vector[] = [
  v('non-shortest integer head', 'status', { online: true }, [0x82, 0x18, 0x07, 0xf5]), // kind 7 as uint8
  v('float16 value', 'reply', { id: 1, status: 'ok', value: 1 }, [0x84, 0x05, 0x01, 0x00, 0xf9, 0x3c, 0x00]), // half 1.0
  v('float32 value', 'reply', { id: 1, status: 'ok', value: 1.5 }, [0x84, 0x05, 0x01, 0x00, 0xfa, 0x3f, 0xc0, 0x00, 0x00]),
  v('float16 subnormal', 'reply', { id: 1, status: 'ok', value: 5.960464477539063e-8 }, [0x84, 0x05, 0x01, 0x00, 0xf9, 0x00, 0x01]),
  v('text with a 2-byte length head', 'cloudEvent', { name: 'a', data: 'b' }, [0x83, 0x14, 0x78, 0x01, 0x61, 0x61, 0x62]),
  // 8-byte heads: a number on both sides (cbor-x made them BigInts, which every check refused).
  v('integer with an 8-byte head', 'reply', { id: 1, status: 'ok', value: 5 }, [0x84, 0x05, 0x1b, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00, 0x1b, 0, 0, 0, 0, 0, 0, 0, 0x05]),
  v('negative integer with an 8-byte head', 'reply', { id: 1, status: 'ok', value: -4294967297 }, [0x84, 0x05, 0x01, 0x00, 0x3b, 0, 0, 0, 0x01, 0, 0, 0, 0]),
];

const cbor = (message: string) => ({ code: 'cbor' as const, message });
const layout = (message: string) => ({ code: 'layout' as const, message });
const value = (message: string) => ({ code: 'value' as const, message });
const limit = (message: string) => ({ code: 'limit' as const, message });

/** A hello with `n` variables named v0, v1, ... */
function helloWithVariables(n: number): number[] {
  const vars: number[] = [];
  for (let i = 0; i < n; i++) vars.push(0x62, 0x76, 0x30 + (i % 10), 0x02); // "v<digit>", int32 (names repeat past 10)
  return [0x89, 0x01, 0x61, 0x31, 0x01, 0x01, 0x98, 2 * n, ...vars, 0x80, 0x80, 0x00, 0x83, 0x00, 0xf4, 0xf6];
}

export const DECODE_ERRORS: ErrorVector[] = [
  // -- CBOR well-formedness (cbor-scan.ts)
  { name: 'empty input', bytes: [], error: cbor('empty input: expected one CBOR item') },
  { name: 'array shorter than its count', bytes: [0x82, 0x07], error: cbor('truncated CBOR item at byte 0') },
  { name: 'text shorter than its length', bytes: [0x83, 0x02, 0x64, 0x32, 0x31], error: cbor('truncated CBOR item at byte 2') },
  { name: 'uint16 head cut', bytes: [0x19, 0x01], error: cbor('truncated CBOR item at byte 0') },
  { name: 'float64 cut', bytes: [0x82, 0x05, 0xfb, 0x00], error: cbor('truncated CBOR item at byte 2') },
  { name: 'trailing byte', bytes: [0x82, 0x07, 0xf4, 0x00], error: cbor('trailing bytes after the CBOR item at byte 3') },
  { name: 'map', bytes: [0xa1, 0x01, 0x02], error: cbor('CBOR map at byte 0 is not allowed') },
  { name: 'tag', bytes: [0xc1, 0x1a, 0x5f, 0, 0, 0], error: cbor('CBOR tag at byte 0 is not allowed') },
  { name: 'indefinite array', bytes: [0x9f, 0x07, 0xf4, 0xff], error: cbor('indefinite-length item at byte 0 is not allowed') },
  { name: 'indefinite text', bytes: [0x82, 0x07, 0x7f, 0x61, 0x61, 0xff], error: cbor('indefinite-length item at byte 2 is not allowed') },
  { name: 'undefined', bytes: [0x82, 0x07, 0xf7], error: cbor('undefined at byte 2 is not allowed') },
  { name: 'simple value 16', bytes: [0x82, 0x07, 0xf0], error: cbor('simple value at byte 2 is not allowed') },
  { name: 'simple value in one byte', bytes: [0x82, 0x07, 0xf8, 0x20], error: cbor('simple value at byte 2 is not allowed') },
  { name: 'stray break', bytes: [0x82, 0x07, 0xff], error: cbor('unexpected break code at byte 2') },
  { name: 'reserved info 28', bytes: [0x82, 0x07, 0x1c], error: cbor('reserved additional information 28 at byte 2') },
  { name: 'invalid UTF-8 (bad continuation)', bytes: [0x83, 0x02, 0x62, 0xc3, 0x28, 0x00], error: cbor('invalid UTF-8 in text string at byte 3') },
  { name: 'UTF-8 overlong "/"', bytes: [0x83, 0x02, 0x62, 0xc0, 0xaf, 0x00], error: cbor('invalid UTF-8 in text string at byte 3') },
  { name: 'UTF-8 surrogate', bytes: [0x83, 0x02, 0x63, 0xed, 0xa0, 0x80, 0x00], error: cbor('invalid UTF-8 in text string at byte 3') },
  { name: 'UTF-8 cut inside a character', bytes: [0x83, 0x02, 0x62, 0x61, 0xe2, 0x00], error: cbor('invalid UTF-8 in text string at byte 4') },
  { name: 'integer 2^53', bytes: [0x84, 0x05, 0x01, 0x00, 0x1b, 0x00, 0x20, 0, 0, 0, 0, 0, 0], error: cbor('integer at byte 4 is outside the safe range') },
  { name: 'negative integer -2^53', bytes: [0x84, 0x05, 0x01, 0x00, 0x3b, 0x00, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], error: cbor('integer at byte 4 is outside the safe range') },
  { name: 'array claiming 2^32 items', bytes: [0x9a, 0xff, 0xff, 0xff, 0xff, 0x00], error: cbor('truncated CBOR item at byte 0') },
  { name: 'array claiming 2^64 - 1 items', bytes: [0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], error: cbor('truncated CBOR item at byte 0') },
  { name: 'nesting too deep', bytes: [0x81, 0x81, 0x81, 0x81, 0x81, 0x00], error: cbor('arrays nested deeper than 4 levels at byte 4') },
  // -- layout (layout.ts)
  { name: 'not an array', bytes: [0x07], error: layout('message must be a CBOR array') },
  { name: 'empty array', bytes: [0x80], error: layout('message must start with a kind code') },
  { name: 'kind is text', bytes: [0x81, 0x61, 0x61], error: layout('message must start with a kind code') },
  { name: 'unknown kind 99', bytes: [0x81, 0x18, 0x63], error: layout('unknown message kind 99') },
  { name: 'too many items', bytes: [0x83, 0x07, 0xf4, 0xf4], error: layout('status must have 2 items, got 3') },
  { name: 'too few items', bytes: [0x81, 0x07], error: layout('status must have 2 items, got 1') },
  { name: 'wrong field type', bytes: [0x82, 0x07, 0x01], error: layout('status.online: expected true or false') },
  { name: 'negative id', bytes: [0x84, 0x05, 0x20, 0x00, 0x01], error: layout('reply.id: expected an unsigned integer') },
  { name: 'fractional id', bytes: [0x84, 0x05, 0xf9, 0x3e, 0x00, 0x00, 0x01], error: layout('reply.id: expected an unsigned integer') },
  { name: 'unknown reply status', bytes: [0x84, 0x05, 0x01, 0x09, 0x01], error: layout('reply.status: unknown code 9') },
  { name: 'reply value is an array', bytes: [0x84, 0x05, 0x01, 0x00, 0x80], error: layout('reply.value: expected a boolean, number, text or null') },
  { name: 'event data is a number', bytes: [0x83, 0x02, 0x01, 0x00], error: layout('event.data: expected text, bytes or null') },
  { name: 'unknown variable type', bytes: [0x89, 0x01, 0x61, 0x31, 0x01, 0x01, 0x82, 0x61, 0x78, 0x09, 0x80, 0x80, 0x00, 0x83, 0x00, 0xf4, 0xf6],
    error: layout('hello.variables[0].type: unknown code 9') },
  { name: 'variables not in pairs', bytes: [0x89, 0x01, 0x61, 0x31, 0x01, 0x01, 0x81, 0x61, 0x78, 0x80, 0x80, 0x00, 0x83, 0x00, 0xf4, 0xf6],
    error: layout('hello.variables: expected an array of name, type pairs') },
  { name: 'function name not text', bytes: [0x89, 0x01, 0x61, 0x31, 0x01, 0x01, 0x80, 0x81, 0x01, 0x80, 0x00, 0x83, 0x00, 0xf4, 0xf6],
    error: layout('hello.functions[0]: expected text') },
  { name: 'ota state of 2 items', bytes: [0x89, 0x01, 0x61, 0x31, 0x01, 0x01, 0x80, 0x80, 0x80, 0x00, 0x82, 0x00, 0xf4],
    error: layout('hello.ota: expected an array of 3 items') },
  { name: 'unknown boot reason', bytes: [0x89, 0x01, 0x61, 0x31, 0x01, 0x01, 0x80, 0x80, 0x80, 0x05, 0x83, 0x00, 0xf4, 0xf6],
    error: layout('hello.bootReason: unknown code 5') },
  { name: 'unknown vital code', bytes: [0x82, 0x03, 0x82, 0x18, 0x63, 0x00], error: layout('vitals.values: unknown vital code 99') },
  { name: 'vital twice', bytes: [0x82, 0x03, 0x84, 0x01, 0x05, 0x01, 0x06], error: layout('vitals.values: vital code 1 appears twice') },
  { name: 'vitals not in pairs', bytes: [0x82, 0x03, 0x83, 0x01, 0x05, 0x01], error: layout('vitals.values: expected an array of code, value pairs') },
  { name: 'vital value is text', bytes: [0x82, 0x03, 0x82, 0x01, 0x61, 0x31], error: layout('vitals.values.device.system.uptime: expected a number') },
  { name: 'request of 2 items', bytes: [0x82, 0x10, 0x01], error: layout('request must have at least 3 items, got 2') },
  { name: 'var request without name', bytes: [0x83, 0x10, 0x01, 0x01], error: layout('request must have 4 items, got 3') },
  { name: 'ping with an argument', bytes: [0x84, 0x10, 0x01, 0x03, 0x00], error: layout('request must have 3 items, got 4') },
  { name: 'unknown request op', bytes: [0x83, 0x10, 0x01, 0x09], error: layout('request.op: unknown code 9') },
  { name: 'unknown OTA failure', bytes: [0x85, 0x06, 0x09, 0x03, 0x00, 0x18, 0x63], error: layout('otaStatus.reason: unknown code 99') },
  { name: 'chunk data is text', bytes: [0x84, 0x12, 0x09, 0x00, 0x61, 0x61], error: layout('otaChunk.data: expected bytes') },
  // -- values and limits (validate.ts)
  { name: 'event data over 1024 bytes', bytes: [0x83, 0x02, 0x79, 0x04, 0x01, ...repeat(0x61, 1025), 0x18, 0x3c],
    error: limit('event.data is 1025 bytes, over the limit of 1024') },
  { name: 'binary event data over 1024 bytes', bytes: [0x83, 0x02, 0x59, 0x04, 0x01, ...repeat(0, 1025), 0x00],
    error: limit('event.data is 1025 bytes, over the limit of 1024') },
  { name: '21 variables', bytes: helloWithVariables(21), error: limit('hello.variables has 21 variables, over the limit of 20') },
  { name: 'variable names repeat', bytes: helloWithVariables(11), error: value('hello.variables[10] repeats "v0"') },
  { name: 'variable name of 65 bytes', bytes: [0x84, 0x10, 0x01, 0x01, 0x78, 0x41, ...repeat(0x61, 65)],
    error: limit('request.name is 65 bytes, over the limit of 64') },
  { name: 'variable name with "/"', bytes: [0x84, 0x10, 0x01, 0x01, 0x63, 0x61, 0x2f, 0x62],
    error: value('request.name may only contain letters, digits, "_", "-" and "."') },
  { name: 'empty function name', bytes: [0x85, 0x10, 0x01, 0x02, 0x60, 0x60], error: value('request.name must not be empty') },
  { name: 'function argument over 1024 bytes', bytes: [0x85, 0x10, 0x01, 0x02, 0x61, 0x66, 0x79, 0x04, 0x01, ...repeat(0x61, 1025)],
    error: limit('request.arg is 1025 bytes, over the limit of 1024') },
  { name: 'sha256 of 31 bytes', bytes: [0x87, 0x11, 0x09, 0x07, 0x04, 0x01, 0x58, 0x1f, ...SHA_EMPTY.slice(0, 31), 0x19, 0x04, 0x00],
    error: value('otaBegin.sha256 must be 32 bytes') },
  { name: 'chunk size over 4096', bytes: [0x87, 0x11, 0x09, 0x07, 0x04, 0x01, 0x58, 0x20, ...SHA_EMPTY, 0x19, 0x10, 0x01],
    error: limit('otaBegin.chunkSize is 4097, over the limit of 4096') },
  { name: 'image over 1 MiB', bytes: [0x87, 0x11, 0x09, 0x07, 0x04, 0x1a, 0x00, 0x10, 0x00, 0x01, 0x58, 0x20, ...SHA_EMPTY, 0x19, 0x04, 0x00],
    error: limit('otaBegin.size is 1048577, over the limit of 1048576') },
  { name: 'empty chunk', bytes: [0x84, 0x12, 0x09, 0x00, 0x40], error: value('otaChunk.data must not be empty') },
  { name: 'NaN reply value', bytes: [0x84, 0x05, 0x01, 0x00, 0xfb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0], error: value('reply.value must be a finite number') },
  { name: 'failed OTA without a reason', bytes: [0x85, 0x06, 0x09, 0x03, 0x00, 0xf6], error: value('otaStatus.reason must be set exactly when state is "failed"') },
  { name: 'cloud event name with an empty level', bytes: [0x83, 0x14, 0x63, 0x61, 0x2f, 0x2f, 0xf6], error: value('cloudEvent.name must not have an empty level') },
  { name: 'cloud event name with a wildcard', bytes: [0x83, 0x14, 0x63, 0x61, 0x2f, 0x23, 0xf6],
    error: value('cloudEvent.name may only contain letters, digits, "_", "-", ".", ":" and "/"') },
  { name: 'error count 0', bytes: [0x87, 0x04, 0x05, 0x60, 0x60, 0x60, 0x00, 0x00], error: value('error.count must be at least 1') },
  { name: 'slot 2', bytes: [0x89, 0x01, 0x61, 0x31, 0x01, 0x01, 0x80, 0x80, 0x80, 0x00, 0x83, 0x02, 0xf4, 0xf6], error: value('hello.ota.slot must be 0 or 1') },
];

export const ENCODE_ERRORS: EncodeErrorVector[] = [
  { name: 'unknown kind', kind: 'nope' as Kind, body: {}, error: layout('unknown message kind "nope"') },
  { name: 'body is not an object', kind: 'status', body: null, error: layout('status: expected an object') },
  { name: 'agent is a number', kind: 'hello',
    body: { agent: 5, firmware: 1, product: 1, variables: [], functions: [], subscriptions: [], bootReason: 'none', ota: { slot: 0, trial: false, rolledBackFrom: null } },
    error: layout('hello.agent: expected text') },
  { name: 'unknown boot reason', kind: 'hello',
    body: { agent: '1', firmware: 1, product: 1, variables: [], functions: [], subscriptions: [], bootReason: 'nap', ota: { slot: 0, trial: false, rolledBackFrom: null } },
    error: layout('hello.bootReason: unknown value "nap"') },
  { name: 'unknown vital', kind: 'vitals', body: { values: { 'device.nope': 1 } }, error: layout('vitals.values: unknown vital "device.nope"') },
  { name: 'unknown op', kind: 'request', body: { id: 1, op: 'dance' }, error: layout('request.op: unknown value "dance"') },
  { name: 'negative job', kind: 'otaAbort', body: { job: -1, reason: 'aborted' }, error: layout('otaAbort.job: expected an unsigned integer') },
  { name: 'event data over the limit', kind: 'event', body: { data: 'x'.repeat(1025), ttl: 60 }, error: limit('event.data is 1025 bytes, over the limit of 1024') },
  { name: 'lone surrogate', kind: 'cloudEvent', body: { name: 'a', data: '\ud800' }, error: value('cloudEvent.data is not valid Unicode (lone surrogate)') },
  { name: 'infinite vital', kind: 'vitals', body: { values: { 'device.system.uptime': Infinity } }, error: value('vitals.values.device.system.uptime must be a finite number') },
  { name: 'ttl past 24 bits (Device OS\'s largest)', kind: 'event', body: { data: null, ttl: 16777216 }, error: limit('event.ttl is 16777216, over the limit of 16777215') },
  { name: '16 functions', kind: 'hello',
    body: { agent: '1', firmware: 1, product: 1, variables: [], functions: 'abcdefghijklmnop'.split(''), subscriptions: [], bootReason: 'none', ota: { slot: 0, trial: false, rolledBackFrom: null } },
    error: limit('hello.functions has 16 functions, over the limit of 15') },
  { name: '5 subscriptions', kind: 'hello',
    body: { agent: '1', firmware: 1, product: 1, variables: [], functions: [], subscriptions: ['a', 'b', 'c', 'd', 'e'], bootReason: 'none', ota: { slot: 0, trial: false, rolledBackFrom: null } },
    error: limit('hello.subscriptions has 5 subscriptions, over the limit of 4') },
];
