/**
 * The agent's MQTT 3.1.1 client: one link through the HAL, reconnected with
 * exponential backoff and full jitter; a streaming parser for frames split
 * across or packed into socket chunks; QoS 0 and 1 with retransmission (DUP)
 * of unacknowledged publishes; keepalive with dead-link detection; and one
 * bounded outbound queue that drops the oldest QoS 0 message first.
 *
 * Everything is prototype methods bound once, so no closure is made per
 * message (closures cost heap on Duktape and wait for QuickJS's cycle GC).
 */
import type { Hal } from '../hal.js';
import {
  CONNACK, DISCONNECT_BYTES, encodeConnect, encodePuback, encodePublish, encodeSubscribe, PINGREQ_BYTES, PINGRESP, PUBACK, PUBLISH, SUBACK, UNSUBACK,
} from './packets.js';
import { utf8Invalid, utf8Read } from '@flotilla/protocol/core';

export type Done = (err: Error | null) => void;

export interface MqttOptions {
  clientId: string;
  username: string;
  password: string;
  willTopic: string;
  willPayload: Uint8Array;
  /** Topics to subscribe to (QoS 1) on every connection. */
  subscriptions: string[];
  /** Seconds; PINGREQ after half of it idle, link dead after a PINGRESP is that late. */
  keepalive: number;
  /** First reconnect delay and the cap, in ms; the delay doubles per failed attempt. */
  backoffMin: number;
  backoffMax: number;
  /** Messages waiting or unacknowledged, at most. */
  queueMax: number;
  /** QoS 1 publishes unacknowledged at once. */
  inflightMax: number;
  /** Resend an unacknowledged QoS 1 publish after this many ms, at most `retries` times. */
  ackTimeout: number;
  retries: number;
  /** Largest packet accepted from the broker; a larger claim closes the link. */
  maxPacket: number;
}

export interface MqttEvents {
  /** CONNACK accepted; subscriptions are on their way. */
  connected(): void;
  /** A PUBLISH; `payload` is only valid during the call. */
  message(topic: string, payload: Uint8Array): void;
  /** The link closed (or a connect failed). */
  disconnected(): void;
}

export interface MqttStats {
  attempts: number;
  disconnects: number;
  transmit: number;
  retransmit: number;
  unack: number;
  dropped: number;
  roundTrip: number;
  protocolErrors: number;
  /** Last CONNACK return code that refused us, 0 when none. */
  refusedCode: number;
}

interface Outgoing {
  topic: string;
  payload: Uint8Array;
  qos: number;
  id: number;
  done: Done | null;
  sentAt: number;
  tries: number;
}

const HOUSEKEEPING_MS = 1000;
const CONNACK_TIMEOUT_MS = 10000;

export class MqttClient {
  readonly stats: MqttStats = { attempts: 0, disconnects: 0, transmit: 0, retransmit: 0, unack: 0, dropped: 0, roundTrip: 0, protocolErrors: 0, refusedCode: 0 };
  /** 0 disconnected, 1 connecting, 2 connected (Particle's cloud connection status codes). */
  status = 0;
  private open = false;
  private stopped = true;
  private queue: Outgoing[] = [];
  private inflight: Outgoing[] = [];
  private nextId = 0;
  private rx = new Uint8Array(256);
  private rxLen = 0;
  private lastSent = 0;
  private pingSentAt = -1;
  private openedAt = 0;
  private failures = 0;
  private timer = -1;
  private reconnectTimer = -1;
  // Bound once: the HAL and timers call these.
  private readonly onOpenB: () => void;
  private readonly onDataB: (chunk: Uint8Array) => void;
  private readonly onCloseB: () => void;
  private readonly tickB: () => void;
  private readonly connectB: () => void;

  constructor(private readonly hal: Hal, private readonly o: MqttOptions, private readonly events: MqttEvents) {
    this.onOpenB = this.onOpen.bind(this);
    this.onDataB = this.onData.bind(this);
    this.onCloseB = this.onClose.bind(this);
    this.tickB = this.tick.bind(this);
    this.connectB = this.connect.bind(this);
  }

  /** Starts connecting (and keeps reconnecting until stop). */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  /** Sends DISCONNECT (no will) and stops reconnecting. */
  stop(): void {
    this.stopped = true;
    if (this.reconnectTimer >= 0) this.hal.clock.clearTimer(this.reconnectTimer);
    this.reconnectTimer = -1;
    if (this.open) {
      this.write(DISCONNECT_BYTES);
      this.hal.net.close();
    }
  }

  /** Drops the link now, as a dead link would; the client reconnects. */
  drop(): void {
    if (this.open) this.hal.net.close();
  }

  get connected(): boolean {
    return this.status === 2;
  }

  /**
   * Queues a publish. Returns false (and calls `done` with the reason) when
   * the queue is full of QoS 1 messages; a full queue otherwise drops its
   * oldest QoS 0 message. `done` runs when a QoS 1 message is acknowledged or
   * given up, or when a QoS 0 message is written.
   */
  publish(topic: string, payload: Uint8Array, qos: number, done: Done | null): boolean {
    if (this.queue.length + this.inflight.length >= this.o.queueMax && !this.dropOldestQos0()) {
      if (done) done(new Error('outbound queue full'));
      return false;
    }
    this.queue.push({ topic: topic, payload: payload, qos: qos, id: 0, done: done, sentAt: 0, tries: 0 });
    this.flush();
    return true;
  }

  pending(): number {
    return this.queue.length + this.inflight.length;
  }

  private dropOldestQos0(): boolean {
    for (let i = 0; i < this.queue.length; i++) {
      if (this.queue[i].qos === 0) {
        const m = this.queue.splice(i, 1)[0];
        this.stats.dropped++;
        if (m.done) m.done(new Error('dropped from a full outbound queue'));
        return true;
      }
    }
    return false;
  }

  private connect(): void {
    this.reconnectTimer = -1;
    if (this.stopped || this.open || this.status === 1) return;
    this.status = 1;
    this.stats.attempts++;
    this.rxLen = 0;
    this.hal.net.open(this.onOpenB, this.onDataB, this.onCloseB);
  }

  private onOpen(): void {
    this.open = true;
    this.openedAt = this.hal.clock.now();
    this.pingSentAt = -1;
    this.write(
      encodeConnect({
        clientId: this.o.clientId, username: this.o.username, password: this.o.password, keepalive: this.o.keepalive,
        willTopic: this.o.willTopic, willPayload: this.o.willPayload,
      }),
    );
    this.armTick();
  }

  private onClose(): void {
    const was = this.status === 2;
    this.open = false;
    this.status = 0;
    if (this.timer >= 0) this.hal.clock.clearTimer(this.timer);
    this.timer = -1;
    if (was) this.stats.disconnects++;
    else this.failures++;
    // Unacknowledged QoS 1 goes back to the head of the queue, resent with DUP on the next link.
    for (let i = this.inflight.length - 1; i >= 0; i--) this.queue.unshift(this.inflight[i]);
    this.inflight = [];
    if (was) this.events.disconnected();
    if (this.stopped) return;
    // Full jitter: a random delay up to the exponential bound, never below half of it.
    const bound = Math.min(this.o.backoffMax, this.o.backoffMin * Math.pow(2, Math.min(this.failures, 16)));
    const delay = Math.floor(bound / 2 + (Math.random() * bound) / 2);
    this.reconnectTimer = this.hal.clock.setTimer(this.connectB, delay);
  }

  private write(bytes: Uint8Array | number[]): void {
    this.lastSent = this.hal.clock.now();
    this.hal.net.send(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes));
  }

  private flush(): void {
    if (this.status !== 2) return;
    while (this.queue.length && this.inflight.length < this.o.inflightMax) {
      const m = this.queue.shift() as Outgoing;
      const dup = m.tries > 0;
      if (m.qos === 1 && m.id === 0) m.id = this.takeId();
      m.tries++;
      m.sentAt = this.hal.clock.now();
      this.write(encodePublish(m.topic, m.payload, m.qos, m.id, dup));
      this.stats.transmit++;
      if (dup) this.stats.retransmit++;
      if (m.qos === 1) this.inflight.push(m);
      else if (m.done) m.done(null);
    }
  }

  private takeId(): number {
    this.nextId = (this.nextId % 65535) + 1;
    return this.nextId;
  }

  private armTick(): void {
    if (this.timer >= 0) this.hal.clock.clearTimer(this.timer);
    this.timer = this.hal.clock.setTimer(this.tickB, HOUSEKEEPING_MS);
  }

  /** Once a second while the link is open: CONNACK timeout, keepalive, retransmission. */
  private tick(): void {
    this.timer = -1;
    if (!this.open) return;
    const now = this.hal.clock.now();
    const half = (this.o.keepalive * 1000) / 2;
    if (this.status === 1 && now - this.openedAt > CONNACK_TIMEOUT_MS) return this.hal.net.close();
    if (this.pingSentAt >= 0 && now - this.pingSentAt > half) {
      // No PINGRESP within half the keepalive: the link is dead even if the socket says otherwise.
      this.stats.protocolErrors++;
      return this.hal.net.close();
    }
    if (this.status === 2 && this.pingSentAt < 0 && now - this.lastSent >= half) {
      this.pingSentAt = now;
      this.write(PINGREQ_BYTES);
    }
    for (let i = 0; i < this.inflight.length; i++) {
      const m = this.inflight[i];
      if (now - m.sentAt < this.o.ackTimeout) continue;
      if (m.tries > this.o.retries) {
        this.inflight.splice(i--, 1);
        this.stats.unack++;
        if (m.done) m.done(new Error('not acknowledged'));
        continue;
      }
      m.tries++;
      m.sentAt = now;
      this.write(encodePublish(m.topic, m.payload, m.qos, m.id, true));
      this.stats.transmit++;
      this.stats.retransmit++;
    }
    this.flush();
    this.armTick();
  }

  private onData(chunk: Uint8Array): void {
    if (!this.open) return;
    if (this.rxLen + chunk.length > this.rx.length) {
      let size = this.rx.length;
      while (size < this.rxLen + chunk.length) size *= 2;
      const grown = new Uint8Array(size);
      grown.set(this.rx.subarray(0, this.rxLen));
      this.rx = grown;
    }
    this.rx.set(chunk, this.rxLen);
    this.rxLen += chunk.length;
    let start = 0;
    while (this.open && this.rxLen - start >= 2) {
      // Remaining length: 1 to 4 bytes of 7 bits, least significant first.
      let len = 0;
      let mul = 1;
      let p = start + 1;
      let complete = false;
      while (p < this.rxLen) {
        const b = this.rx[p++];
        len += (b & 127) * mul;
        if (!(b & 128)) {
          complete = true;
          break;
        }
        mul *= 128;
        if (mul > 2097152) return this.protocolError(); // a fifth length byte [MQTT-2.2.3]
      }
      if (!complete) break; // length not complete yet
      if (len > this.o.maxPacket) return this.protocolError();
      if (p + len > this.rxLen) break; // body not complete yet
      const type = this.rx[start] >> 4;
      const flags = this.rx[start] & 15;
      if (!this.handle(type, flags, this.rx.subarray(p, p + len))) return this.protocolError();
      start = p + len;
    }
    if (start > 0 && this.open) {
      for (let i = start; i < this.rxLen; i++) this.rx[i - start] = this.rx[i];
      this.rxLen -= start;
    }
    // Give memory back after a large packet (an OTA chunk) has passed.
    if (this.rxLen === 0 && this.rx.length > 1024) this.rx = new Uint8Array(256);
  }

  private protocolError(): void {
    this.stats.protocolErrors++;
    this.rxLen = 0;
    this.hal.net.close();
  }

  /** Handles one packet; false means a protocol violation. */
  private handle(type: number, flags: number, body: Uint8Array): boolean {
    if (this.status === 1 && type !== CONNACK) return false; // [MQTT-3.2.0-1] CONNACK comes first
    switch (type) {
      case CONNACK: {
        if (this.status !== 1 || body.length !== 2) return false;
        if (body[1] !== 0) {
          this.stats.refusedCode = body[1];
          this.hal.net.close();
          return true;
        }
        this.status = 2;
        this.failures = 0;
        this.write(encodeSubscribe(this.takeId(), this.o.subscriptions));
        this.events.connected();
        this.flush();
        return true;
      }
      case PUBLISH: {
        const qos = (flags >> 1) & 3;
        if (qos > 1 || body.length < 2) return false;
        const tlen = (body[0] << 8) | body[1];
        const head = 2 + tlen + (qos ? 2 : 0);
        if (head > body.length || utf8Invalid(body, 2, 2 + tlen) >= 0) return false;
        const topic = utf8Read(body, 2, 2 + tlen);
        if (qos) this.write(encodePuback((body[2 + tlen] << 8) | body[3 + tlen]));
        this.events.message(topic, body.subarray(head));
        return true;
      }
      case PUBACK: {
        if (body.length !== 2) return false;
        const id = (body[0] << 8) | body[1];
        for (let i = 0; i < this.inflight.length; i++) {
          if (this.inflight[i].id === id) {
            const m = this.inflight.splice(i, 1)[0];
            if (m.done) m.done(null);
            break;
          }
        }
        this.flush();
        return true;
      }
      case PINGRESP:
        if (this.pingSentAt >= 0) this.stats.roundTrip = this.hal.clock.now() - this.pingSentAt;
        this.pingSentAt = -1;
        return body.length === 0;
      case SUBACK:
      case UNSUBACK:
        return body.length >= 2;
    }
    return false;
  }
}
