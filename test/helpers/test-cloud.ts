/**
 * The cloud side of a device test, before the bridge exists: a real mqtt.js
 * client subscribed to everything devices publish, decoding with the cloud
 * codec, and sending requests and OTA frames the way the bridge will.
 */
import mqtt, { MqttClient } from 'mqtt';
import { decode, encode, Kind, Message, Messages, parseTopic, topics } from '@flotilla/protocol';

/** Omit over each member of a union (TypeScript's Omit flattens the union first). */
type OmitEach<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

export interface Received {
  deviceId: string;
  topic: string;
  event?: string;
  msg: Message;
  /** The payload as it arrived. */
  raw: Uint8Array;
}

export class TestCloud {
  readonly received: Received[] = [];
  /** Every message ever received, never consumed (for checks over a whole run). */
  readonly all: Received[] = [];
  private waiters: { pred: (r: Received) => boolean; resolve: (r: Received) => void }[] = [];
  private nextId = 1;

  private constructor(readonly client: MqttClient) {
    client.on('message', (topic, payload) => {
      const t = parseTopic(topic);
      if (t.root !== 'dev') return;
      const r: Received = { deviceId: t.deviceId, topic, event: t.channel === 'evt' ? t.event : undefined, msg: decode(payload), raw: new Uint8Array(payload) };
      this.received.push(r);
      this.all.push(r);
      this.waiters = this.waiters.filter((w) => {
        if (!w.pred(r)) return true;
        w.resolve(r);
        return false;
      });
    });
  }

  static async connect(port: number): Promise<TestCloud> {
    const client = mqtt.connect({ host: '127.0.0.1', port, clientId: 'test-cloud', reconnectPeriod: 0 });
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
    });
    (client.stream as unknown as { setNoDelay?: (b: boolean) => void }).setNoDelay?.(true);
    await client.subscribeAsync(topics.filter.allDevices(), { qos: 1 });
    return new TestCloud(client);
  }

  /** The next message (already received or future) matching `pred`; fails after `ms`. */
  next(pred: (r: Received) => boolean, ms = 5000, what = 'a message'): Promise<Received> {
    const seen = this.received.find(pred);
    if (seen) {
      this.received.splice(this.received.indexOf(seen), 1);
      return Promise.resolve(seen);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new Error('timed out after ' + ms + ' ms waiting for ' + what));
      }, ms);
      const done = (r: Received) => {
        clearTimeout(timer);
        this.received.splice(this.received.indexOf(r), 1);
        resolve(r);
      };
      this.waiters.push({ pred, resolve: done });
    });
  }

  kind<K extends Kind>(deviceId: string, kind: K, ms?: number, where?: (m: { kind: K } & Messages[K]) => boolean): Promise<{ kind: K } & Messages[K]> {
    return this.next((r) => r.deviceId === deviceId && r.msg.kind === kind && (!where || where(r.msg as never)), ms, kind + ' from ' + deviceId).then(
      (r) => r.msg as unknown as { kind: K } & Messages[K],
    );
  }

  send<K extends 'request' | 'otaBegin' | 'otaChunk' | 'otaAbort' | 'cloudEvent'>(deviceId: string, kind: K, body: Messages[K]): void {
    const topic = kind === 'request' ? topics.cloud.request(deviceId) : kind === 'cloudEvent' ? topics.cloud.event(deviceId) : topics.cloud.ota(deviceId);
    this.client.publish(topic, Buffer.from(encode(kind, body)), { qos: 1 });
  }

  /** Sends a request and waits for its reply. */
  async request(deviceId: string, req: OmitEach<Messages['request'], 'id'>, ms = 5000): Promise<Messages['reply']> {
    const id = this.nextId++;
    this.send(deviceId, 'request', { ...req, id } as Messages['request']);
    return this.kind(deviceId, 'reply', ms, (m) => m.id === id);
  }

  close(): Promise<void> {
    return this.client.endAsync();
  }
}
