/**
 * Lightweight MQTT 3.1.1 clients for bench/api.ts, on plain NODELAY sockets
 * (no mqtt.js: 100 devices, the requester and the HTTP callers share the load
 * generator's CPU, which must not be the bottleneck): the packets and frames
 * of bench/mqtt-wire.ts.
 *
 *   - RawClient: CONNECT, SUBSCRIBE, PUBLISH at QoS 0/1, PUBACKs what it
 *     receives at QoS 1; every wait bounded by a timeout.
 *   - BenchDevice: a device speaking the Flotilla protocol as the firmware
 *     agent does: subscribes to cloud/<id>/req at QoS 1, says hello (QoS 1,
 *     waits for the PUBACK: the bridge has then recorded it), answers every
 *     request with a reply on dev/<id>/reply at QoS 1.
 *   - Requester: the anchor's caller on bare aedes: publishes requests to
 *     cloud/<id>/req (QoS 1) and matches the replies it receives on
 *     dev/+/reply (QoS 1) by their correlation id.
 *
 * The devices and their payloads are the same in both setups: only who asks
 * differs (the bridge, for an HTTP caller; or the requester).
 */
import type { Socket } from 'node:net';
import { decode, encode, topics, type Message, type Messages } from '@flotilla/protocol';
import { CALL_RETURN, HELLO, VAR_VALUE } from './api-common.js';
import { closing } from './harness.js';
import { CONNACK, connectLoopback, connectPacket, Frames, PUBACK, pubackFor, PUBLISH, publishPacket, SUBACK, subscribePacket, topicEnd, type ConnectOptions } from './mqtt-wire.js';

/** Counted across every client: what the report lists as problems. */
export const mqttCounters = { unexpectedClose: 0, badMessages: 0, firstProblem: null as string | null, repliesSent: 0 };

function problem(why: string): void {
  mqttCounters.firstProblem ??= why;
}

/** Decodes what `who` received on `topic`: the message if it is a `kind`, else null (counted and noted as a problem). */
function expectMessage<K extends Message['kind']>(who: string, kind: K, topic: string, payload: Buffer): Extract<Message, { kind: K }> | null {
  let m: Message;
  try {
    m = decode(payload);
  } catch (e) {
    mqttCounters.badMessages++;
    problem(`${who}: undecodable message on ${topic}: ${(e as Error).message}`);
    return null;
  }
  if (m.kind === kind) return m as Extract<Message, { kind: K }>;
  mqttCounters.badMessages++;
  problem(`${who}: unexpected ${m.kind} on ${topic}`);
  return null;
}

export class RawClient {
  private readonly frames: Frames;
  private nextMessageId = 0;
  private readonly acks = new Map<number, () => void>();
  private subacks: ((granted: number) => void)[] = [];
  private connack: (rc: number) => void = () => {};
  onPublish: (topic: string, payload: Buffer) => void = () => {};

  private constructor(readonly socket: Socket) {
    this.frames = new Frames((type, flags, buf, start, end) => this.packet(type, flags, buf, start, end));
    socket.on('data', (c: Buffer) => this.frames.push(c));
  }

  /** Connects; resolves on CONNACK 0, rejects on a refusal, an error, a close or the timeout. */
  static open(port: number, o: ConnectOptions, timeoutMs = 10_000): Promise<RawClient> {
    const connect = connectPacket(o);
    return new Promise<RawClient>((resolve, reject) => {
      const s = connectLoopback(port);
      const c = new RawClient(s);
      let settled = false;
      const fail = (why: string): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        s.destroy();
        reject(new Error(`${o.clientId}: ${why}`));
      };
      const timer = setTimeout(() => fail(`no CONNACK within ${timeoutMs} ms`), timeoutMs);
      c.connack = (rc) => {
        if (rc !== 0) return fail('CONNACK return code ' + rc);
        settled = true;
        clearTimeout(timer);
        s.on('close', () => {
          if (!closing.now) {
            mqttCounters.unexpectedClose++;
            problem(`${o.clientId}: connection closed by the server`);
          }
        });
        resolve(c);
      };
      s.on('connect', () => s.write(connect));
      s.on('error', (e) => fail(e.message));
      s.on('close', () => fail('closed before CONNACK'));
    });
  }

  private packet(type: number, flags: number, buf: Buffer, start: number, end: number): void {
    switch (type) {
      case CONNACK:
        return this.connack(buf[start + 1]);
      case PUBLISH: {
        const qos = (flags >> 1) & 3;
        const tEnd = topicEnd(buf, start);
        const topic = buf.toString('utf8', start + 2, tEnd);
        let payloadStart = tEnd;
        if (qos > 0) {
          if (qos === 1) this.socket.write(pubackFor(buf, tEnd));
          else {
            mqttCounters.badMessages++;
            problem('PUBLISH at QoS 2 on ' + topic);
          }
          payloadStart += 2;
        }
        return this.onPublish(topic, buf.subarray(payloadStart, end));
      }
      case PUBACK: {
        const id = buf.readUInt16BE(start);
        const f = this.acks.get(id);
        if (f) {
          this.acks.delete(id);
          f();
        }
        return;
      }
      case SUBACK:
        return this.subacks.shift()?.(buf[start + 2]);
      default:
        return;
    }
  }

  private messageId(): number {
    this.nextMessageId = this.nextMessageId === 65535 ? 1 : this.nextMessageId + 1;
    return this.nextMessageId;
  }

  subscribe(topic: string, qos: 0 | 1, timeoutMs = 10_000): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no SUBACK for ${topic} within ${timeoutMs} ms`)), timeoutMs);
      this.subacks.push((granted) => {
        clearTimeout(timer);
        if (granted !== qos) reject(new Error(`SUBACK for ${topic} granted ${granted}`));
        else resolve();
      });
      this.socket.write(subscribePacket(topic, qos, this.messageId()));
    });
  }

  /** Publishes at QoS 1 without waiting for the PUBACK (the topic pre-encoded: Buffer.from(topic)). */
  publish(topic: Buffer, payload: Uint8Array): void {
    this.socket.write(publishPacket(topic, payload, this.messageId()));
  }

  /** Publishes at QoS 1; resolves on its PUBACK. */
  publishAcked(topic: string, payload: Uint8Array, timeoutMs = 10_000): Promise<void> {
    const messageId = this.messageId();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.acks.delete(messageId);
        reject(new Error(`no PUBACK for ${topic} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.acks.set(messageId, () => {
        clearTimeout(timer);
        resolve();
      });
      this.socket.write(publishPacket(Buffer.from(topic), payload, messageId));
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

/** The reply a benchmark device gives to a request (what the firmware agent would give for this app). */
export function replyTo(req: Messages['request']): Messages['reply'] {
  return { id: req.id, status: 'ok', value: req.op === 'call' ? CALL_RETURN : req.op === 'var' ? VAR_VALUE : null };
}

/** A device on the Flotilla protocol: connected, subscribed, hello acknowledged. */
export async function openDevice(port: number, id: string, secret: string): Promise<RawClient> {
  const c = await RawClient.open(port, { clientId: id, username: id, password: secret });
  const replyTopic = Buffer.from(topics.device.reply(id));
  c.onPublish = (topic, payload) => {
    const m = expectMessage(id, 'request', topic, payload);
    if (!m) return;
    // The PUBACK of the request went out just before (same tick): Nagle is off, so each is its own segment, as on a device.
    c.publish(replyTopic, encode('reply', replyTo(m)));
    mqttCounters.repliesSent++;
  };
  await c.subscribe(topics.cloud.request(id), 1);
  await c.publishAcked(topics.device.hello(id), encode('hello', HELLO));
  return c;
}

/** Opens `ids.length` devices, at most `inFlight` connecting at once. */
export async function openDevices(port: number, ids: string[], secrets: string[], inFlight: number): Promise<RawClient[]> {
  const out: RawClient[] = new Array(ids.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < ids.length) {
      const i = next++;
      out[i] = await openDevice(port, ids[i], secrets[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, ids.length) }, worker));
  return out;
}

type RequestBody = Messages['request'] extends infer R ? (R extends unknown ? Omit<R, 'id'> : never) : never;

/** The anchor's caller: one MQTT connection, requests matched to replies by id. */
export class Requester {
  private seq = 0;
  private readonly topics = new Map<string, Buffer>();
  private readonly pending = new Map<number, { resolve: (r: Messages['reply']) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();

  private constructor(private readonly c: RawClient) {
    c.onPublish = (topic, payload) => {
      const m = expectMessage('requester', 'reply', topic, payload);
      if (!m) return;
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      clearTimeout(p.timer);
      p.resolve(m);
    };
  }

  static async open(port: number, clientId: string): Promise<Requester> {
    const c = await RawClient.open(port, { clientId });
    await c.subscribe('dev/+/reply', 1);
    return new Requester(c);
  }

  /** Sends a request to device `deviceId` (as the bridge does: QoS 1 on cloud/<id>/req); resolves with its reply. */
  ask(deviceId: string, body: RequestBody, timeoutMs: number): Promise<Messages['reply']> {
    // uint32 ids, as the bridge's request router: the same payload sizes.
    do this.seq = (this.seq + 1) % 0x100000000;
    while (this.seq === 0 || this.pending.has(this.seq));
    const id = this.seq;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`no reply from ${deviceId} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.c.publish(this.topicOf(deviceId), encode('request', { ...body, id } as Messages['request']));
    });
  }

  private topicOf(deviceId: string): Buffer {
    let t = this.topics.get(deviceId);
    if (!t) this.topics.set(deviceId, (t = Buffer.from(topics.cloud.request(deviceId))));
    return t;
  }

  close(): void {
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
    this.c.close();
  }
}
