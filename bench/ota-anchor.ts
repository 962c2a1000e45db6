/**
 * The anchor's devices for bench/ota.ts: raw MQTT 3.1.1 clients on NODELAY
 * loopback sockets (bench/mqtt-wire.ts), one per device, each subscribed at
 * QoS 1 to its own inbox cloud/<id>/ota. What a device does with the image,
 * and nothing more: PUBACK each QoS 1 delivery; answer begin with offset 0;
 * for each chunk at the offset it holds, count its bytes and acknowledge the
 * new offset with a QoS 1 otaStatus on dev/<id>/ota (the agent's message);
 * the last byte is acknowledged as "verified", as the agent does after its
 * SHA-256 check. No flash, no SHA-256, no reboot. The same devices can log in
 * to the bridge and say hello (BridgeLogin), to measure the bridge without
 * the simulated agents' own work.
 */
import type { Socket } from 'node:net';
import { decode, deviceTopic, encode, type Messages } from '@flotilla/protocol';
import { trackConnections } from './harness.js';
import { CONNACK, connectLoopback, connectPacket, Frames, pubackFor, PUBLISH, publishPacket, SUBACK, subscribePacket, topicEnd } from './mqtt-wire.js';

export interface AnchorDevices {
  /** Devices holding the whole image, and when each got its last byte (Date.now()). */
  complete(): number;
  completedAt(): number[];
  /** Sessions that ended after their SUBACK (none expected). */
  dropped(): number;
  close(): void;
}

/**
 * To a bridge instead of bare aedes: each device logs in with its secret and, once subscribed, says
 * hello (QoS 1) as the agent does, running `hello.firmware`, so the bridge's OTA manager sends it the
 * release. The chunks are then taken and acknowledged as against bare aedes.
 */
export interface BridgeLogin {
  secrets: string[];
  hello: Messages['hello'];
}

/** Connects `ids` to the broker at `port` (at most `inFlight` awaiting their SUBACK); resolves when all are subscribed. */
export async function openAnchorDevices(port: number, ids: string[], inFlight: number, deadlineMs: number, login: BridgeLogin | null = null): Promise<AnchorDevices> {
  const sockets: Socket[] = [];
  const doneAt: number[] = [];
  let dropped = 0;
  let closing = false;
  let next = 0;
  let ready = 0;

  const open = (id: string, secret: string | null, onReady: () => void, onFail: (e: Error) => void): void => {
    const s = connectLoopback(port);
    sockets.push(s);
    trackConnections(s);
    const ackTopic = Buffer.from(deviceTopic(id, 'ota'));
    let mid = 0;
    let subscribed = false;
    let job = 0;
    let size = -1;
    let held = 0;
    const ack = (state: 'offset' | 'verified', offset: number): Buffer => {
      mid = (mid % 65535) + 1;
      return publishPacket(ackTopic, encode('otaStatus', { job, state, offset, reason: null }), mid);
    };
    const frames = new Frames((type, flags, buf, start, end) => {
      if (type === PUBLISH) {
        const qos = (flags >> 1) & 3;
        const te = topicEnd(buf, start);
        const out: Buffer[] = qos ? [pubackFor(buf, te)] : [];
        const m = decode(buf.subarray(qos ? te + 2 : te, end));
        if (m.kind === 'otaBegin') {
          job = m.job;
          size = m.size;
          held = 0;
          out.push(ack('offset', 0));
        } else if (m.kind === 'otaChunk' && m.job === job && size >= 0) {
          // In order: take it; a duplicate or a gap: say where we are, as the agent does.
          if (m.offset === held) held += m.data.length;
          if (held === size) {
            doneAt.push(Date.now());
            size = -1;
            out.push(ack('verified', held));
          } else out.push(ack('offset', held));
        }
        if (out.length) s.write(out.length === 1 ? out[0] : Buffer.concat(out));
      } else if (type === CONNACK) {
        if (buf[start + 1] !== 0) onFail(new Error(`anchor device ${id}: CONNACK return code ${buf[start + 1]}`));
        else s.write(subscribePacket(`cloud/${id}/ota`, 1, 1));
      } else if (type === SUBACK) {
        if (buf[start + 2] !== 1) return onFail(new Error(`anchor device ${id}: SUBACK granted ${buf[start + 2]}`));
        subscribed = true;
        if (login) {
          mid = (mid % 65535) + 1;
          s.write(publishPacket(Buffer.from(deviceTopic(id, 'hello')), encode('hello', login.hello), mid));
        }
        onReady();
      }
    });
    s.on('connect', () => s.write(connectPacket({ clientId: id, keepalive: 600, ...(secret !== null ? { username: id, password: secret } : {}) })));
    s.on('data', (c: Buffer) => frames.push(c));
    s.on('error', (e) => {
      if (!subscribed) onFail(e);
    });
    s.on('close', () => {
      if (subscribed && !closing) dropped++;
    });
  };

  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`anchor devices: ${ready}/${ids.length} subscribed within ${deadlineMs} ms`)), deadlineMs);
    const launch = (): void => {
      for (; next < ids.length && next - ready < inFlight; next++)
        open(ids[next], login ? login.secrets[next] : null, () => {
          if (++ready === ids.length) {
            clearTimeout(timer);
            resolve();
          } else launch();
        }, (e) => {
          clearTimeout(timer);
          reject(e);
        });
    };
    launch();
  });

  return {
    complete: () => doneAt.length,
    completedAt: () => [...doneAt],
    dropped: () => dropped,
    close() {
      closing = true;
      for (const s of sockets) s.destroy();
    },
  };
}
