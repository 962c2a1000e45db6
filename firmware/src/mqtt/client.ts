/**
 * The agent's MQTT 3.1.1 client: one link through the HAL, reconnected with
 * exponential backoff and full jitter; a streaming parser for frames split
 * across or packed into socket chunks; QoS 0 and 1 with retransmission (DUP)
 * of unacknowledged publishes; keepalive with dead-link detection; and one
 * bounded outbound queue that drops the oldest QoS 0 message first.
 *
 * The HAL's and the timer's callbacks are one method bound once per use, so
 * no closure is made per message (closures cost heap on Duktape and wait for
 * QuickJS's cycle GC), and few function objects exist at all.
 */
import type { Hal } from '../hal.js';
import { CONNACK, CONNECT, DISCONNECT, packet, PINGREQ, PINGRESP, PUBACK, PUBLISH, SUBACK, SUBSCRIBE, UNSUBACK } from './packets.js';
import { utf8Decode } from '@flotilla/protocol/core';

export type Done = (err: Error | null) => void;

export interface MqttOptions {
  clientId: string;
  username: string;
  password: string;
  willTopic: string;
  willPayload: Uint8Array;
  /** Topics to subscribe to (QoS 1) on every connection. */
  subscriptions: string[];
  /** Seconds; PINGREQ after half of it without sending or without hearing the broker, link dead after a PINGRESP is that late. */
  keepalive: number;
  /** First reconnect delay and the cap, in ms; the delay doubles per failed attempt. */
  backoffMin: number;
  backoffMax: number;
  /** Messages waiting or unacknowledged, at most. */
  queueMax: number;
  /** QoS 1 publishes unacknowledged at once. */
  inflightMax: number;
  /** Resend an unacknowledged QoS 1 publish after this many ms, at most `retries` times, links dropped included. */
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
  disconnected?(): void;
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
  /** Of this link only (a hello, a status): given up, not resent, when the link drops. */
  once: boolean;
  id: number;
  done: Done | null;
  sentAt: number;
  tries: number;
}

/** Added to QoS 1 in `publish`: the message is of this link only (a hello, a status), given up when the link drops. */
export const ONCE = 2;

const HOUSEKEEPING_MS = 1000;
/** The connect (TCP, TLS), then CONNACK: each given up after this long. */
const CONNACK_TIMEOUT_MS = 10000;
/** A link up this long counts as stable: the next reconnect starts from the shortest backoff. */
const STABLE_MS = 30000;

// What `ev_` does: the HAL's and the timer's callbacks are bound to it with one of these.
const OPEN = 0;
const DATA = 1;
const CLOSE = 2;
/** The one timer: housekeeping while the link is open, the reconnect while it is not. */
const TIMER = 3;
const FLUSH = 4;
const WRITE = 5;
// The public methods, in the order of API_NAMES.
const START = 6;
const STOP = 7;
const DROP = 8;
const PUBLISH_ = 9;
const PENDING = 10;
const API_NAMES = ['start', 'stop', 'drop', 'publish', 'pending'];

/**
 * The client's state and one event function, `ev_`, for everything the HAL,
 * the timer and the public methods set off: every function object costs
 * about 300 bytes of heap on Duktape, a bound one half that.
 */
export class MqttClient {
  readonly stats: MqttStats = { attempts: 0, disconnects: 0, transmit: 0, retransmit: 0, unack: 0, dropped: 0, roundTrip: 0, protocolErrors: 0, refusedCode: 0 };
  /** 0 disconnected, 1 connecting, 2 connected (Particle's cloud connection status codes). */
  status = 0;
  /** status is 2 (a field, not a getter: a getter is one more function object). */
  connected = false;
  private open_ = false;
  private stopped_ = true;
  private queue_: Outgoing[] = [];
  private inflight_: Outgoing[] = [];
  private nextId_ = 0;
  private rx_ = new Uint8Array(256);
  private rxLen_ = 0;
  private lastSent_ = 0;
  private lastHeard_ = 0;
  private pingSentAt_ = -1;
  private openedAt_ = 0;
  private connectedAt_ = 0;
  private failures_ = 0;
  private timer_ = -1;
  /** While the app hears "connected": what it queues then (the hello, the status) is sent before anything else. */
  private holding_ = false;
  // Bound once: the HAL and the timer call these.
  private readonly onOpenB_: () => void;
  private readonly onDataB_: (chunk: Uint8Array) => void;
  private readonly onCloseB_: () => void;
  private readonly timerB_: () => void;
  // The public methods: `ev_` bound to START ... PENDING in the constructor, one bound
  // function each (half the heap of a method of its own).
  /** Starts connecting (and keeps reconnecting until stop). */
  declare readonly start: () => void;
  /** Sends DISCONNECT (no will) and stops reconnecting. */
  declare readonly stop: () => void;
  /** Drops the link now, as a dead link would; the client reconnects. */
  declare readonly drop: () => void;
  /**
   * Queues a publish (`qos` 0 or 1; `ONCE | 1`: QoS 1 for this link only). Returns false (and calls `done` with the reason) when
   * the queue is full of QoS 1 messages; a full queue otherwise drops its
   * oldest QoS 0 message. `done` runs when a QoS 1 message is acknowledged or
   * given up, or when a QoS 0 message is written.
   */
  declare readonly publish: (topic: string, payload: Uint8Array, qos: number, done: Done | null) => boolean;
  /** Messages waiting or unacknowledged. */
  declare readonly pending: () => number;

  constructor(private readonly hal_: Hal, private readonly o_: MqttOptions, private readonly events_: MqttEvents) {
    for (let i = 0; i < API_NAMES.length; i++) (this as unknown as { [name: string]: unknown })[API_NAMES[i]] = this.ev_.bind(this, START + i);
    this.onOpenB_ = this.ev_.bind(this, OPEN);
    this.onDataB_ = this.ev_.bind(this, DATA);
    this.onCloseB_ = this.ev_.bind(this, CLOSE);
    this.timerB_ = this.ev_.bind(this, TIMER);
  }

  /** The client's work, by event (the constants above); the arguments as each says. */
  private ev_(what: number, x?: any, y?: any, z?: any, w?: any): any {
    const hal = this.hal_;
    const o = this.o_;
    const stats = this.stats;
    const now = hal.clock.now();
    if (what === WRITE) {
      // (bytes)
      this.lastSent_ = now;
      try {
        hal.net.send(x);
      } catch (e) {
        // A link that cannot take bytes is dead: reconnect (the caller sees the close).
        stats.protocolErrors++;
        if (this.open_) hal.net.close();
      }
    } else if (what === START) {
      if (!this.stopped_) return;
      this.stopped_ = false;
      // Still open (stopped, and the close not yet through): its close reconnects; a connect under way goes on.
      if (!this.open_ && this.status !== 1) this.ev_(TIMER);
    } else if (what === STOP) {
      this.stopped_ = true;
      if (this.open_) {
        this.ev_(WRITE, packet(DISCONNECT << 4, []));
        hal.net.close();
      } else if (this.status !== 1) {
        // The pending reconnect, if any (a connect under way keeps its timeout: its link is closed when it opens).
        hal.clock.clearTimer(this.timer_);
        this.timer_ = -1;
      }
    } else if (what === DROP) {
      if (this.open_) hal.net.close();
    } else if (what === PUBLISH_) {
      // (topic, payload, qos, done)
      if (this.queue_.length + this.inflight_.length >= o.queueMax) {
        let i = 0;
        while (i < this.queue_.length && this.queue_[i].qos !== 0) i++;
        if (i === this.queue_.length) {
          if (w) w(new Error('outbound queue full'));
          return false;
        }
        const m = this.queue_.splice(i, 1)[0];
        stats.dropped++;
        if (m.done) m.done(new Error('dropped from a full outbound queue'));
      }
      const m: Outgoing = { topic: x, payload: y, qos: z & 1, once: (z & ONCE) > 0, id: 0, done: w, sentAt: 0, tries: 0 };
      // What is for this link (the hello first) goes ahead of what waits from the last one, in the order given.
      let i = this.queue_.length;
      if (m.once) for (i = 0; i < this.queue_.length && this.queue_[i].once; ) i++;
      this.queue_.splice(i, 0, m);
      this.ev_(FLUSH);
      return true;
    } else if (what === PENDING) {
      return this.queue_.length + this.inflight_.length;
    } else if (what === TIMER && !this.open_) {
      // Reconnect (or the first connect); or a connect the host has not ended in time: given up (its onClose follows).
      this.timer_ = -1;
      if (this.status === 1) return hal.net.close();
      if (this.stopped_) return;
      this.status = 1;
      stats.attempts++;
      this.rxLen_ = 0;
      // Armed before open: a host may call onOpen or onClose at once.
      this.timer_ = hal.clock.setTimer(this.timerB_, CONNACK_TIMEOUT_MS);
      hal.net.open(this.onOpenB_, this.onDataB_, this.onCloseB_);
    } else if (what === OPEN) {
      hal.clock.clearTimer(this.timer_);
      this.open_ = true;
      // Stopped while the connect was under way: this link is not wanted.
      if (this.stopped_) return hal.net.close();
      this.openedAt_ = this.lastHeard_ = now;
      this.pingSentAt_ = -1;
      // CONNECT, clean session, credentials and a QoS 1 will.
      this.ev_(WRITE, packet(CONNECT << 4, [
        'MQTT', 4, 0x80 | 0x40 | 0x08 | 0x04 | 0x02, o.keepalive >> 8, o.keepalive & 255, // level 3.1.1; username, password, will QoS 1, will, clean session
        o.clientId, o.willTopic, o.willPayload.length >> 8, o.willPayload.length & 255, o.willPayload, o.username, o.password,
      ]));
      this.timer_ = hal.clock.setTimer(this.timerB_, HOUSEKEEPING_MS);
    } else if (what === CLOSE) {
      const was = this.connected;
      this.open_ = false;
      this.status = 0;
      this.connected = false;
      hal.clock.clearTimer(this.timer_);
      this.timer_ = -1;
      if (was) stats.disconnects++;
      // Only a link that stayed up resets the backoff: a broker that accepts and
      // then drops us at once must not get a reconnect storm.
      if (was && now - this.connectedAt_ >= STABLE_MS) this.failures_ = 0;
      else this.failures_++;
      // Unacknowledged QoS 1 goes back to the head of the queue, resent with DUP on the next link;
      // what was for this link only is given up (the next link says it again).
      const all = this.inflight_.concat(this.queue_);
      this.queue_ = [];
      this.inflight_ = [];
      for (let i = 0; i < all.length; i++) {
        if (!all[i].once) this.queue_.push(all[i]);
        else if (all[i].done) all[i].done!(new Error('not acknowledged'));
      }
      if (was && this.events_.disconnected) this.events_.disconnected();
      if (this.stopped_) return;
      // Equal jitter: a random delay between half the exponential bound and the bound, so a fleet
      // cut off at once comes back spread out, and no device retries at once.
      const bound = Math.min(o.backoffMax, o.backoffMin * Math.pow(2, Math.min(this.failures_, 16)));
      this.timer_ = hal.clock.setTimer(this.timerB_, Math.floor(bound / 2 + (Math.random() * bound) / 2));
    } else if (what === TIMER) {
      // Once a second while the link is open: CONNACK timeout, keepalive, retransmission.
      // Armed again first: a write below that fails must not end the housekeeping.
      this.timer_ = hal.clock.setTimer(this.timerB_, HOUSEKEEPING_MS);
      const half = (o.keepalive * 1000) / 2;
      if (this.status === 1 && now - this.openedAt_ > CONNACK_TIMEOUT_MS) return hal.net.close();
      if (this.pingSentAt_ >= 0 && now - this.pingSentAt_ > half) {
        // No PINGRESP within half the keepalive: the link is dead even if the socket says otherwise.
        stats.protocolErrors++;
        return hal.net.close();
      }
      // Idle, or sending into a link that says nothing back (half-open): ask.
      if (this.connected && this.pingSentAt_ < 0 && (now - this.lastSent_ >= half || now - this.lastHeard_ >= half)) {
        this.pingSentAt_ = now;
        this.ev_(WRITE, packet(PINGREQ << 4, []));
      }
      for (let i = 0; i < this.inflight_.length; i++) {
        const m = this.inflight_[i];
        if (now - m.sentAt < o.ackTimeout) continue;
        if (m.tries > o.retries) {
          this.inflight_.splice(i--, 1);
          stats.unack++;
          if (m.done) m.done(new Error('not acknowledged'));
          continue;
        }
        m.tries++;
        m.sentAt = now;
        this.ev_(WRITE, packet((PUBLISH << 4) | 8 | (m.qos << 1), [m.topic, m.id >> 8, m.id & 255, m.payload]));
        stats.transmit++;
        stats.retransmit++;
      }
      this.ev_(FLUSH);
    } else if (what === FLUSH) {
      while (this.connected && !this.holding_ && this.queue_.length && this.inflight_.length < o.inflightMax) {
        const m = this.queue_.shift() as Outgoing;
        const dup = m.tries > 0;
        if (m.tries > o.retries) {
          // Sent on link after link and never acknowledged (one the broker ends the session for): given up.
          stats.unack++;
          if (m.done) m.done(new Error('not acknowledged'));
          continue;
        }
        if (m.qos === 1 && m.id === 0) m.id = this.nextId_ = (this.nextId_ % 65535) + 1;
        m.tries++;
        m.sentAt = now;
        // In flight before it is written: a write that fails closes the link, which puts it back.
        if (m.qos === 1) this.inflight_.push(m);
        this.ev_(WRITE, packet((PUBLISH << 4) | (dup ? 8 : 0) | (m.qos << 1), m.qos ? [m.topic, m.id >> 8, m.id & 255, m.payload] : [m.topic, m.payload]));
        stats.transmit++;
        if (dup) stats.retransmit++;
        if (m.qos === 0 && m.done) m.done(null);
      }
    } else if (this.open_) {
      // DATA: frames split across or packed into chunks.
      const chunk = x!;
      if (this.rxLen_ + chunk.length > this.rx_.length) {
        let size = this.rx_.length;
        while (size < this.rxLen_ + chunk.length) size *= 2;
        const grown = new Uint8Array(size);
        grown.set(this.rx_.subarray(0, this.rxLen_));
        this.rx_ = grown;
      }
      this.rx_.set(chunk, this.rxLen_);
      this.rxLen_ += chunk.length;
      this.lastHeard_ = now;
      let start = 0;
      // Finally: a packet handled is gone from the buffer even when its handling threw.
      try {
        while (this.open_ && this.rxLen_ - start >= 2) {
          // Remaining length: 1 to 4 bytes of 7 bits, least significant first.
          let len = 0;
          let mul = 1;
          let p = start + 1;
          let complete = false;
          let ok = true;
          while (p < this.rxLen_) {
            const b = this.rx_[p++];
            len += (b & 127) * mul;
            if (!(b & 128)) {
              complete = true;
              break;
            }
            mul *= 128;
            if (mul > 2097152) break; // a fifth length byte [MQTT-2.2.3]
          }
          if (mul > 2097152 || len > o.maxPacket) ok = false;
          else if (!complete || p + len > this.rxLen_) break; // length or body not complete yet
          else {
            // One packet; ok false means a protocol violation.
            const type = this.rx_[start] >> 4;
            const flags = this.rx_[start] & 15;
            const body = this.rx_.subarray(p, p + len);
            start = p + len;
            if (this.status === 1 && type !== CONNACK) ok = false; // [MQTT-3.2.0-1] CONNACK comes first
            else if (type === CONNACK) {
              ok = this.status === 1 && body.length === 2;
              if (ok && body[1] !== 0) {
                stats.refusedCode = body[1];
                // Read nothing more from this link, even what the same chunk still holds.
                this.open_ = false;
                hal.net.close();
              } else if (ok) {
                this.status = 2;
                this.connected = true;
                this.connectedAt_ = now;
                // SUBSCRIBE to each topic at QoS 1.
                const id = (this.nextId_ = (this.nextId_ % 65535) + 1);
                const parts: (string | number)[] = [id >> 8, id & 255];
                for (let i = 0; i < o.subscriptions.length; i++) parts.push(o.subscriptions[i], 1);
                this.ev_(WRITE, packet((SUBSCRIBE << 4) | 2, parts));
                if (this.connected) {
                  this.holding_ = true;
                  try {
                    this.events_.connected();
                  } finally {
                    // Also when the app's handler threw: what it queued goes now, not at the next housekeeping.
                    this.holding_ = false;
                    this.ev_(FLUSH);
                  }
                }
              }
            } else if (type === PUBLISH) {
              const qos = (flags >> 1) & 3;
              const tlen = body.length < 2 ? 0 : (body[0] << 8) | body[1];
              const head = 2 + tlen + (qos ? 2 : 0);
              const topic = qos < 2 && body.length >= 2 && head <= body.length ? utf8Decode(body, 2, 2 + tlen, true) : 0;
              ok = typeof topic === 'string';
              if (ok) {
                if (qos) this.ev_(WRITE, packet(PUBACK << 4, [body[2 + tlen], body[3 + tlen]]));
                this.events_.message(topic as string, body.subarray(head));
              }
            } else if (type === PUBACK) {
              ok = body.length === 2;
              const id = (body[0] << 8) | body[1];
              for (let i = 0; ok && i < this.inflight_.length; i++) {
                if (this.inflight_[i].id === id) {
                  const m = this.inflight_.splice(i, 1)[0];
                  if (m.done) m.done(null);
                  break;
                }
              }
              if (ok) this.ev_(FLUSH);
            } else if (type === PINGRESP) {
              if (this.pingSentAt_ >= 0) stats.roundTrip = now - this.pingSentAt_;
              this.pingSentAt_ = -1;
              ok = body.length === 0;
            } else if (type === SUBACK) {
              ok = body.length >= 3;
              // A filter refused (0x80): no request or update could reach us on this link. Said in
              // cloud.connection.error; the link is dropped and tried again after the backoff.
              for (let i = 2; ok && i < body.length; i++) {
                if (body[i] === 128) {
                  stats.refusedCode = 128;
                  ok = false;
                }
              }
            } else ok = type === UNSUBACK && body.length >= 2;
          }
          if (!ok) {
            stats.protocolErrors++;
            start = this.rxLen_;
            hal.net.close();
            break;
          }
        }
      } finally {
        if (start > 0 && this.open_) {
          for (let i = start; i < this.rxLen_; i++) this.rx_[i - start] = this.rx_[i];
          this.rxLen_ -= start;
        } else if (!this.open_) this.rxLen_ = 0;
      }
      // Give memory back after a large packet (an OTA chunk) has passed.
      if (this.rxLen_ === 0 && this.rx_.length > 1024) this.rx_ = new Uint8Array(256);
    }
  }
}
