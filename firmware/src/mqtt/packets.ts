/**
 * MQTT 3.1.1 packets the agent sends, as pure encoders over Uint8Array, and
 * the fixed-header reader the parser uses. Packet ids are 1..65535.
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

export interface ConnectOptions {
  clientId: string;
  username: string;
  password: string;
  keepalive: number;
  willTopic: string;
  willPayload: Uint8Array;
}

function varintSize(n: number): number {
  return n < 128 ? 1 : n < 16384 ? 2 : n < 2097152 ? 3 : 4;
}

/** Allocates a packet with its fixed header written; returns [buffer, offset of the variable header]. */
function packet(firstByte: number, remaining: number): Uint8Array {
  const b = new Uint8Array(1 + varintSize(remaining) + remaining);
  b[0] = firstByte;
  let p = 1;
  let n = remaining;
  do {
    let digit = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) digit |= 128;
    b[p++] = digit;
  } while (n > 0);
  return b;
}

function headerLength(b: Uint8Array): number {
  let p = 1;
  while (b[p] & 128) p++;
  return p + 1;
}

function writeString(b: Uint8Array, p: number, s: string, n: number): number {
  b[p] = n >> 8;
  b[p + 1] = n & 255;
  return utf8Write(s, b, p + 2);
}

function writeBytes(b: Uint8Array, p: number, data: Uint8Array): number {
  b[p] = data.length >> 8;
  b[p + 1] = data.length & 255;
  b.set(data, p + 2);
  return p + 2 + data.length;
}

/** CONNECT, clean session, credentials and a QoS 1 will. */
export function encodeConnect(o: ConnectOptions): Uint8Array {
  const id = utf8Length(o.clientId);
  const wt = utf8Length(o.willTopic);
  const user = utf8Length(o.username);
  const pass = utf8Length(o.password);
  const remaining = 10 + 2 + id + 2 + wt + 2 + o.willPayload.length + 2 + user + 2 + pass;
  const b = packet(CONNECT << 4, remaining);
  let p = headerLength(b);
  p = writeString(b, p, 'MQTT', 4);
  b[p++] = 4; // protocol level 3.1.1
  b[p++] = 0x80 | 0x40 | 0x08 | 0x04 | 0x02; // username, password, will QoS 1, will, clean session
  b[p++] = o.keepalive >> 8;
  b[p++] = o.keepalive & 255;
  p = writeString(b, p, o.clientId, id);
  p = writeString(b, p, o.willTopic, wt);
  p = writeBytes(b, p, o.willPayload);
  p = writeString(b, p, o.username, user);
  writeString(b, p, o.password, pass);
  return b;
}

export function encodePublish(topic: string, payload: Uint8Array, qos: number, id: number, dup: boolean): Uint8Array {
  const t = utf8Length(topic);
  const b = packet((PUBLISH << 4) | (dup ? 8 : 0) | (qos << 1), 2 + t + (qos ? 2 : 0) + payload.length);
  let p = writeString(b, headerLength(b), topic, t);
  if (qos) {
    b[p++] = id >> 8;
    b[p++] = id & 255;
  }
  b.set(payload, p);
  return b;
}

export function encodePuback(id: number): Uint8Array {
  const b = packet(PUBACK << 4, 2);
  b[2] = id >> 8;
  b[3] = id & 255;
  return b;
}

/** SUBSCRIBE to each topic at QoS 1. */
export function encodeSubscribe(id: number, topicList: string[]): Uint8Array {
  let remaining = 2;
  for (let i = 0; i < topicList.length; i++) remaining += 2 + utf8Length(topicList[i]) + 1;
  const b = packet((SUBSCRIBE << 4) | 2, remaining);
  let p = headerLength(b);
  b[p++] = id >> 8;
  b[p++] = id & 255;
  for (let i = 0; i < topicList.length; i++) {
    p = writeString(b, p, topicList[i], utf8Length(topicList[i]));
    b[p++] = 1;
  }
  return b;
}

export const PINGREQ_BYTES = [PINGREQ << 4, 0];
export const DISCONNECT_BYTES = [DISCONNECT << 4, 0];
