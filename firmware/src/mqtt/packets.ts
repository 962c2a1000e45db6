/**
 * MQTT 3.1.1 packets the agent sends, built by one function over Uint8Array
 * (each function object costs heap on the engines). Packet ids are 1..65535.
 */
import { utf8Length, utf8Write } from '@flotilla/protocol/core';

export const CONNECT = 1;
export const CONNACK = 2;
export const PUBLISH = 3;
export const PUBACK = 4;
export const SUBSCRIBE = 8;
export const SUBACK = 9;
export const UNSUBACK = 11;
export const PINGREQ = 12;
export const PINGRESP = 13;
export const DISCONNECT = 14;

/** A part of a packet: a string as UTF-8 after its 2-byte length, a number as one byte, a Uint8Array as is. */
export type Part = string | number | Uint8Array;

/**
 * A packet: the first byte, the remaining length (1 to 4 bytes of 7 bits,
 * least significant first), then the parts in order.
 */
export function packet(first: number, parts: Part[]): Uint8Array {
  let remaining = 0;
  let i = 0;
  for (; i < parts.length; i++) {
    const x = parts[i];
    remaining += typeof x === 'number' ? 1 : typeof x === 'string' ? 2 + utf8Length(x) : x.length;
  }
  const b = new Uint8Array(1 + (remaining < 128 ? 1 : remaining < 16384 ? 2 : remaining < 2097152 ? 3 : 4) + remaining);
  b[0] = first;
  let p = 1;
  let n = remaining;
  do {
    let digit = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) digit |= 128;
    b[p++] = digit;
  } while (n > 0);
  for (i = 0; i < parts.length; i++) {
    const x = parts[i];
    if (typeof x === 'number') b[p++] = x;
    else if (typeof x === 'string') {
      const len = utf8Length(x);
      b[p] = len >> 8;
      b[p + 1] = len & 255;
      p = utf8Write(x, b, p + 2);
    } else {
      b.set(x, p);
      p += x.length;
    }
  }
  return b;
}
