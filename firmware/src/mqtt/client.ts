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
/** A link up this long counts as stable: the next reconnect starts from the shortest backoff. */
const STABLE_MS = 30000;

export class MqttClient {
  readonly stats: MqttStats = { attempts: 0, disconnects: 0, transmit: 0, retransmit: 0, unack: 0, dropped: 0, roundTrip: 0, protocolErrors: 0, refusedCode: 0 };
  /** 0 disconnected, 1 connecting, 2 connected (Particle's cloud connection status codes). */
  status = 0;
  private open_ = false;
  private stopped_ = true;
  private queue_: Outgoing[] = [];
  private inflight_: Outgoing[] = [];
  private nextId_ = 0;
  private rx_ = new Uint8Array(256);
  private rxLen_ = 0;
  private lastSent_ = 0;
  private pingSentAt_ = -1;
  private openedAt_ = 0;
  private connectedAt_ = 0;
  private failures_ = 0;
  private timer_ = -1;
  private reconnectTimer_ = -1;
  // Bound once: the HAL and timers call these.
  private readonly onOpenB_: () => void;
  private readonly onDataB_: (chunk: Uint8Array) => void;
  private readonly onCloseB_: () => void;
  private readonly tickB_: () => void;
  private readonly connectB_: () => void;

  constructor(private readonly hal_: Hal, private readonly o_: MqttOptions, private readonly events_: MqttEvents) {
    this.onOpenB_ = this.onOpen_.bind(this);
    this.onDataB_ = this.onData_.bind(this);
    this.onCloseB_ = this.onClose_.bind(this);
    this.tickB_ = this.tick_.bind(this);
    this.connectB_ = this.connect_.bind(this);
  }

  /** Starts connecting (and keeps reconnecting until stop). */
  start(): void {
    if (!this.stopped_) return;
    this.stopped_ = false;
    this.connect_();
  }

  /** Sends DISCONNECT (no will) and stops reconnecting. */
  stop(): void {
    this.stopped_ = true;
    if (this.reconnectTimer_ >= 0) this.hal_.clock.clearTimer(this.reconnectTimer_);
    this.reconnectTimer_ = -1;
    if (this.open_) {
      this.write_(DISCONNECT_BYTES);
      this.hal_.net.close();
    }
  }

  /** Drops the link now, as a dead link would; the client reconnects. */
  drop(): void {
    if (this.open_) this.hal_.net.close();
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
    if (this.queue_.length + this.inflight_.length >= this.o_.queueMax && !this.dropOldestQos0_()) {
      if (done) done(new Error('outbound queue full'));
      return false;
    }
    this.queue_.push({ topic: topic, payload: payload, qos: qos, id: 0, done: done, sentAt: 0, tries: 0 });
    this.flush_();
    return true;
  }

  pending(): number {
    return this.queue_.length + this.inflight_.length;
  }

  private dropOldestQos0_(): boolean {
    for (let i = 0; i < this.queue_.length; i++) {
      if (this.queue_[i].qos === 0) {
        const m = this.queue_.splice(i, 1)[0];
        this.stats.dropped++;
        if (m.done) m.done(new Error('dropped from a full outbound queue'));
        return true;
      }
    }
    return false;
  }

  private connect_(): void {
    this.reconnectTimer_ = -1;
    if (this.stopped_ || this.open_ || this.status === 1) return;
    this.status = 1;
    this.stats.attempts++;
    this.rxLen_ = 0;
    this.hal_.net.open(this.onOpenB_, this.onDataB_, this.onCloseB_);
  }

  private onOpen_(): void {
    this.open_ = true;
    // Stopped while the connect was under way: this link is not wanted.
    if (this.stopped_) return this.hal_.net.close();
    this.openedAt_ = this.hal_.clock.now();
    this.pingSentAt_ = -1;
    this.write_(
      encodeConnect({
        clientId: this.o_.clientId, username: this.o_.username, password: this.o_.password, keepalive: this.o_.keepalive,
        willTopic: this.o_.willTopic, willPayload: this.o_.willPayload,
      }),
    );
    this.armTick_();
  }

  private onClose_(): void {
    const was = this.status === 2;
    this.open_ = false;
    this.status = 0;
    if (this.timer_ >= 0) this.hal_.clock.clearTimer(this.timer_);
    this.timer_ = -1;
    if (was) this.stats.disconnects++;
    // Only a link that stayed up resets the backoff: a broker that accepts and
    // then drops us at once must not get a reconnect storm.
    if (was && this.hal_.clock.now() - this.connectedAt_ >= STABLE_MS) this.failures_ = 0;
    else this.failures_++;
    // Unacknowledged QoS 1 goes back to the head of the queue, resent with DUP on the next link.
    for (let i = this.inflight_.length - 1; i >= 0; i--) this.queue_.unshift(this.inflight_[i]);
    this.inflight_ = [];
    if (was) this.events_.disconnected();
    if (this.stopped_) return;
    // Full jitter: a random delay up to the exponential bound, never below half of it.
    const bound = Math.min(this.o_.backoffMax, this.o_.backoffMin * Math.pow(2, Math.min(this.failures_, 16)));
    const delay = Math.floor(bound / 2 + (Math.random() * bound) / 2);
    this.reconnectTimer_ = this.hal_.clock.setTimer(this.connectB_, delay);
  }

  private write_(bytes: Uint8Array | number[]): void {
    this.lastSent_ = this.hal_.clock.now();
    this.hal_.net.send(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes));
  }

  private flush_(): void {
    if (this.status !== 2) return;
    while (this.queue_.length && this.inflight_.length < this.o_.inflightMax) {
      const m = this.queue_.shift() as Outgoing;
      const dup = m.tries > 0;
      if (m.qos === 1 && m.id === 0) m.id = this.takeId_();
      m.tries++;
      m.sentAt = this.hal_.clock.now();
      this.write_(encodePublish(m.topic, m.payload, m.qos, m.id, dup));
      this.stats.transmit++;
      if (dup) this.stats.retransmit++;
      if (m.qos === 1) this.inflight_.push(m);
      else if (m.done) m.done(null);
    }
  }

  private takeId_(): number {
    this.nextId_ = (this.nextId_ % 65535) + 1;
    return this.nextId_;
  }

  private armTick_(): void {
    if (this.timer_ >= 0) this.hal_.clock.clearTimer(this.timer_);
    this.timer_ = this.hal_.clock.setTimer(this.tickB_, HOUSEKEEPING_MS);
  }

  /** Once a second while the link is open: CONNACK timeout, keepalive, retransmission. */
  private tick_(): void {
    this.timer_ = -1;
    if (!this.open_) return;
    const now = this.hal_.clock.now();
    const half = (this.o_.keepalive * 1000) / 2;
    if (this.status === 1 && now - this.openedAt_ > CONNACK_TIMEOUT_MS) return this.hal_.net.close();
    if (this.pingSentAt_ >= 0 && now - this.pingSentAt_ > half) {
      // No PINGRESP within half the keepalive: the link is dead even if the socket says otherwise.
      this.stats.protocolErrors++;
      return this.hal_.net.close();
    }
    if (this.status === 2 && this.pingSentAt_ < 0 && now - this.lastSent_ >= half) {
      this.pingSentAt_ = now;
      this.write_(PINGREQ_BYTES);
    }
    for (let i = 0; i < this.inflight_.length; i++) {
      const m = this.inflight_[i];
      if (now - m.sentAt < this.o_.ackTimeout) continue;
      if (m.tries > this.o_.retries) {
        this.inflight_.splice(i--, 1);
        this.stats.unack++;
        if (m.done) m.done(new Error('not acknowledged'));
        continue;
      }
      m.tries++;
      m.sentAt = now;
      this.write_(encodePublish(m.topic, m.payload, m.qos, m.id, true));
      this.stats.transmit++;
      this.stats.retransmit++;
    }
    this.flush_();
    this.armTick_();
  }

  private onData_(chunk: Uint8Array): void {
    if (!this.open_) return;
    if (this.rxLen_ + chunk.length > this.rx_.length) {
      let size = this.rx_.length;
      while (size < this.rxLen_ + chunk.length) size *= 2;
      const grown = new Uint8Array(size);
      grown.set(this.rx_.subarray(0, this.rxLen_));
      this.rx_ = grown;
    }
    this.rx_.set(chunk, this.rxLen_);
    this.rxLen_ += chunk.length;
    let start = 0;
    while (this.open_ && this.rxLen_ - start >= 2) {
      // Remaining length: 1 to 4 bytes of 7 bits, least significant first.
      let len = 0;
      let mul = 1;
      let p = start + 1;
      let complete = false;
      while (p < this.rxLen_) {
        const b = this.rx_[p++];
        len += (b & 127) * mul;
        if (!(b & 128)) {
          complete = true;
          break;
        }
        mul *= 128;
        if (mul > 2097152) return this.protocolError_(); // a fifth length byte [MQTT-2.2.3]
      }
      if (!complete) break; // length not complete yet
      if (len > this.o_.maxPacket) return this.protocolError_();
      if (p + len > this.rxLen_) break; // body not complete yet
      const type = this.rx_[start] >> 4;
      const flags = this.rx_[start] & 15;
      if (!this.handle_(type, flags, this.rx_.subarray(p, p + len))) return this.protocolError_();
      start = p + len;
    }
    if (start > 0 && this.open_) {
      for (let i = start; i < this.rxLen_; i++) this.rx_[i - start] = this.rx_[i];
      this.rxLen_ -= start;
    }
    // Give memory back after a large packet (an OTA chunk) has passed.
    if (this.rxLen_ === 0 && this.rx_.length > 1024) this.rx_ = new Uint8Array(256);
  }

  private protocolError_(): void {
    this.stats.protocolErrors++;
    this.rxLen_ = 0;
    this.hal_.net.close();
  }

  /** Handles one packet; false means a protocol violation. */
  private handle_(type: number, flags: number, body: Uint8Array): boolean {
    if (this.status === 1 && type !== CONNACK) return false; // [MQTT-3.2.0-1] CONNACK comes first
    switch (type) {
      case CONNACK: {
        if (this.status !== 1 || body.length !== 2) return false;
        if (body[1] !== 0) {
          this.stats.refusedCode = body[1];
          // Read nothing more from this link, even what the same chunk still holds.
          this.open_ = false;
          this.hal_.net.close();
          return true;
        }
        this.status = 2;
        this.connectedAt_ = this.hal_.clock.now();
        this.write_(encodeSubscribe(this.takeId_(), this.o_.subscriptions));
        this.events_.connected();
        this.flush_();
        return true;
      }
      case PUBLISH: {
        const qos = (flags >> 1) & 3;
        if (qos > 1 || body.length < 2) return false;
        const tlen = (body[0] << 8) | body[1];
        const head = 2 + tlen + (qos ? 2 : 0);
        if (head > body.length || utf8Invalid(body, 2, 2 + tlen) >= 0) return false;
        const topic = utf8Read(body, 2, 2 + tlen);
        if (qos) this.write_(encodePuback((body[2 + tlen] << 8) | body[3 + tlen]));
        this.events_.message(topic, body.subarray(head));
        return true;
      }
      case PUBACK: {
        if (body.length !== 2) return false;
        const id = (body[0] << 8) | body[1];
        for (let i = 0; i < this.inflight_.length; i++) {
          if (this.inflight_[i].id === id) {
            const m = this.inflight_.splice(i, 1)[0];
            if (m.done) m.done(null);
            break;
          }
        }
        this.flush_();
        return true;
      }
      case PINGRESP:
        if (this.pingSentAt_ >= 0) this.stats.roundTrip = this.hal_.clock.now() - this.pingSentAt_;
        this.pingSentAt_ = -1;
        return body.length === 0;
      case SUBACK:
      case UNSUBACK:
        return body.length >= 2;
    }
    return false;
  }
}
