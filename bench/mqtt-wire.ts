/**
 * MQTT 3.1.1 on raw sockets, for the load generators (bench/broker.ts and
 * bench/api-mqtt.ts): loopback NODELAY sockets; CONNECT and SUBSCRIBE built
 * with mqtt-packet; frames split, PUBLISH and PUBACK encoded by hand
 * (mqtt-packet's parser and generator would make the load generator the
 * bottleneck).
 */
import { connect as netConnect, type Socket } from 'node:net';
import mqttPacket from 'mqtt-packet';

/** Packet types (the first byte's high nibble). */
export const CONNACK = 2;
export const PUBLISH = 3;
export const PUBACK = 4;
export const SUBACK = 9;

/** A NODELAY connection to 127.0.0.1:`port`. */
export function connectLoopback(port: number): Socket {
  return netConnect({ port, host: '127.0.0.1', noDelay: true });
}

export interface ConnectOptions {
  clientId: string;
  username?: string;
  password?: string;
  /** Seconds; 600 unless given. */
  keepalive?: number;
}

/** A clean-session CONNECT. */
export function connectPacket(o: ConnectOptions): Buffer {
  return mqttPacket.generate({
    cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: o.clientId, keepalive: o.keepalive ?? 600,
    ...(o.username !== undefined ? { username: o.username } : {}),
    ...(o.password !== undefined ? { password: Buffer.from(o.password) } : {}),
  });
}

/** A SUBSCRIBE to one topic filter. */
export function subscribePacket(topic: string, qos: 0 | 1, messageId: number): Buffer {
  return mqttPacket.generate({ cmd: 'subscribe', messageId, subscriptions: [{ topic, qos }] });
}

/** Where the topic of the PUBLISH whose body starts at `start` ends: its packet id (QoS > 0) or its payload follows. */
export function topicEnd(buf: Buffer, start: number): number {
  return start + 2 + buf.readUInt16BE(start);
}

/** The PUBACK of the QoS 1 PUBLISH whose packet id is at buf[at], buf[at + 1]. */
export function pubackFor(buf: Buffer, at: number): Buffer {
  return Buffer.from([PUBACK << 4, 2, buf[at], buf[at + 1]]);
}

/** Follows MQTT frames across chunks (the simulator's splitter, shared). */
export { Frames } from '@flotilla/simulator';

/** A QoS 1 PUBLISH, encoded by hand (mqtt-packet's generate is the load generator's main cost otherwise). */
export function publishPacket(topic: Buffer, payload: Uint8Array, messageId: number): Buffer {
  const remaining = 2 + topic.length + 2 + payload.length;
  let lenBytes = 1;
  for (let r = remaining; r > 127; r = Math.floor(r / 128)) lenBytes++;
  const buf = Buffer.allocUnsafe(1 + lenBytes + remaining);
  buf[0] = (PUBLISH << 4) | 2;
  let o = 1;
  let r = remaining;
  do {
    let b = r % 128;
    r = Math.floor(r / 128);
    if (r > 0) b |= 128;
    buf[o++] = b;
  } while (r > 0);
  buf.writeUInt16BE(topic.length, o);
  topic.copy(buf, o + 2);
  o += 2 + topic.length;
  buf.writeUInt16BE(messageId, o);
  buf.set(payload, o + 2);
  return buf;
}
