/**
 * The agent: a `cloud` object shaped like Particle's `Particle` facade, over
 * the MQTT client, the boot record and the OTA receiver (which lives here,
 * in the agent's event method). Every callback of
 * the app (variable getter, function, subscription handler, timer) runs
 * guarded: an exception is reported to the cloud and never stops the agent.
 *
 * Heap on these engines grows with code (about 3.6 bytes per byte of bundle),
 * so this file favours few functions and builds wire arrays in place.
 */
import {
  CLAIM_CODE_EVENT, cloudTopic, deviceTopic, ERROR_SOURCE, eventNameProblem, IMAGE_HEADER_SIZE, isReservedEventName, KIND, LIMITS, nameProblem, OTA_FAILURE, OTA_STATE,
  parseImageHeader, REPLY_STATUS, RESET_REASON, utf8Length, VAR_TYPE, VITAL, WireValue,
} from '@flotilla/protocol/core';
import type { OtaFailure, VarType, VarValue } from '@flotilla/protocol/core';
import type { Hal } from './hal.js';
import { BootRecord, confirmed, copy, decodeBoot, encodeBoot, NO_SLOT, pending, runningSlot } from './boot.js';
import { cborEncode, decodeIn, Inbound, nameOf, refusedId } from './wire.js';
import { Done, MqttClient, ONCE } from './mqtt/client.js';
import { hashStarts, sha256 } from './sha256.js';

export const AGENT_VERSION = '0.1.0';

export interface AgentOptions {
  /** 24 lowercase hex characters; also the MQTT client id and username. */
  deviceId: string;
  /** The device secret (MQTT password). With mutual TLS the HAL's link carries the certificate. */
  secret: string;
  product: number;
  /** Version of this application image. */
  firmware: number;
  /** MQTT keepalive in seconds (default 30). */
  keepalive?: number;
  /** Reconnect backoff bounds in ms (defaults 1000 and 60000). */
  backoffMin?: number;
  backoffMax?: number;
  /** Outbound messages held at most, waiting or unacknowledged (default 16). */
  queueMax?: number;
  /** A trial image that has not reached the cloud after this many ms resets, and the bootloader rolls back (default 60000). */
  trialWindow?: number;
  /** Connect on the next tick after create (default true); false waits for cloud.connect(). */
  autoConnect?: boolean;
}

export interface PublishOptions {
  /** Wait for the cloud's acknowledgement (QoS 1); default true. */
  ack?: boolean;
  /** Seconds (default 60). */
  ttl?: number;
}

/** What the app's onOta handler sees. */
export interface OtaEvent {
  type: 'begin' | 'progress' | 'done' | 'failed';
  version: number;
  size: number;
  offset: number;
  reason?: OtaFailure;
}

export type Getter = () => VarValue;
export type FunctionHandler = (arg: string) => number;
export type EventHandler = (name: string, data: string | Uint8Array | null) => void;
export type OtaHandler = (event: OtaEvent) => boolean | void;

export interface Cloud {
  readonly deviceId: string;
  readonly limits: typeof LIMITS;
  /** Registers a variable: a value (type inferred) or a getter (give the type, or it is inferred from a first call). */
  variable(name: string, valueOrGetter: VarValue | Getter, type?: VarType): void;
  /** Registers a function: `handler(arg)` returns an integer (by convention 1 success, -1 failure). */
  fn(name: string, handler: FunctionHandler): void;
  /** Publishes an event; false when refused now (rate limit, full queue), with the reason passed to `done`. */
  publish(name: string, data?: string | Uint8Array | null, options?: PublishOptions, done?: Done): boolean;
  /** Subscribes to events whose names start with `prefix`. */
  subscribe(prefix: string, handler: EventHandler): void;
  /** Publishes vitals now and then every `periodSec` seconds; 0 stops the schedule. */
  vitals(periodSec: number): void;
  /** Observes OTA updates; returning false at 'begin' refuses the update. */
  onOta(handler: OtaHandler): void;
  /** Presents a claim code (given to the device during setup) to the cloud once connected; forgotten when the cloud has it. */
  setClaimCode(code: string): void;
  /** Guarded timers: an exception in `fn` is reported, never fatal. */
  every(ms: number, fn: () => void): number;
  after(ms: number, fn: () => void): number;
  cancel(id: number): void;
  connected(): boolean;
  connect(): void;
  disconnect(): void;
}

/** A registered variable (getter or value), function (handler) or subscription (prefix in `name`). */
interface Entry {
  name: string;
  type?: VarType;
  value?: VarValue;
  fn?: (a: unknown, b?: unknown) => unknown;
}

/** An error waiting to be reported: [source code, name, message, stack, count, uptime]. */
type PendingError = [number, string, string, string, number, number];

/** A token bucket: [tokens, when last refilled (ms), per second, burst]. */
type Bucket = [number, number, number, number];

/** An app timer: [id, hal timer id, ms, the app's fn, the bound runner, fires once]. */
type AppTimer = [number, number, number, () => void, () => void, boolean];

/** Distinct errors held for reporting at once; repeats of one are counted, other errors past these are dropped until they are sent. */
const ERRORS_MAX = 8;

/**
 * Seconds a verified image waits for the cloud to acknowledge "verified"
 * while the link is up: the MQTT client's ack timeout. On a loaded link the
 * statuses ahead of it drain slowly; resetting sooner loses them.
 */
const RESET_GRACE_S = 10;

// What `ev_` does. The MQTT client's events, the timers and the `done`
// callbacks are `ev_` bound to one of these (a bound function costs half
// the heap of a function of its own; see the class comment).
const CONNECTED = 0;
/** A PUBLISH from the cloud: (topic, payload). */
const MESSAGE = 1;
/** MESSAGE's work, which MESSAGE runs guarded (a HAL call that throws is reported, not thrown into the MQTT client). */
const INBOUND = 18;
/** Sends the errors collected (on the next tick after a report). */
const FLUSH = 2;
const HELLO = 3;
/** Publishes vitals and re-arms the schedule; (true) when the schedule's timer fired. */
const VITALS = 4;
/** Stops and resets the device: (reason). */
const RESTART = 5;
/** The cloud acknowledged the claim code: (code, err). */
const CLAIMED = 6;
/** The cloud acknowledged a hello: (the rollback it reported or -1, err). */
const HELLO_ACKED = 7;
/** An app timer fired: (timer). */
const APP_TIMER = 8;
/** Once a second after "verified": reset when the link is down or the grace is spent (its acknowledgement resets at once). */
const OTA_WAIT = 9;
/** Persists the boot record (one atomic write) and makes it current: (record). */
const PERSIST = 10;
/**
 * Queues message (kind) with (fields) and calls (done) when it is acknowledged;
 * QoS 1 but for vitals, which a full queue drops first; hello and status are
 * for the link they are sent on. Returns false when refused (counted as dropped).
 */
const SEND = 11;
/** Registers a variable, function or subscription: (message prefix, list, entry, max, advice). */
const REGISTER = 12;
/** Calls an app callback, guarded: (source, name, fn, x, y); see the branch. */
const GUARD = 13;
/** Collects an error for reporting: (source, name, message, stack). */
const REPORT = 14;
/** The wire type of a value, or '' (NaN and the infinities too: the wire has no such double): (value). */
const TYPE_OF = 15;
/** (s, max): `s` cut to at most `max` UTF-8 bytes. */
const CUT = 16;
/** (bucket): refills it to now; takes a token and returns true if it has one. */
const TAKE = 17;
/**
 * (what, s, max): throws, naming `what`, when text `s` is over `max` UTF-8 bytes or holds a lone UTF-16
 * surrogate (half a character, as substring makes of an emoji), which no wire can carry.
 */
const TEXT = 19;
// The public methods (Cloud), in the order of API_NAMES.
const VARIABLE = 20;
const FN = 21;
const SUBSCRIBE = 22;
const SET_CLAIM_CODE = 23;
const ON_OTA = 24;
const IS_CONNECTED = 25;
const CONNECT = 26;
const DISCONNECT = 27;
const PUBLISH = 28;
const SET_VITALS = 29;
const EVERY = 30;
const AFTER = 31;
const CANCEL = 32;
const API_NAMES = ['variable', 'fn', 'subscribe', 'setClaimCode', 'onOta', 'connected', 'connect', 'disconnect', 'publish', 'vitals', 'every', 'after', 'cancel'];

/** Array's join, for comparing two SHA-256 digests without a function of our own. */
const join = Array.prototype.join;

// The public methods are `ev_` bound to VARIABLE ... CANCEL in the constructor, one bound
// function each (half the heap of a method of its own): this declares them.
interface Agent extends Cloud {}

/**
 * The agent. Every function object costs about 300 bytes of heap on Duktape
 * and QuickJS (a bound function about 150), so the work is done by one large
 * method, `ev_`, by code: the public methods (bound to it, one code each),
 * everything that arrives (MQTT events and messages, OTA frames, timers,
 * acknowledgements) and the shared steps (persist the boot record, send a
 * message, guard an app callback, collect an error report).
 */
class Agent implements Cloud {
  readonly deviceId: string;
  readonly limits = LIMITS;
  private boot_: BootRecord;
  private readonly hal_: Hal;
  private readonly product_: number;
  private readonly firmware_: number;
  private readonly mqtt_: MqttClient;
  private readonly vars_: Entry[] = [];
  private readonly fns_: Entry[] = [];
  private readonly subs_: Entry[] = [];
  private timers_: AppTimer[] = [];
  private timerSeq_ = 0;
  private otaHandler_: OtaHandler | null = null;
  private claimCode_ = '';
  private errors_: PendingError[] = [];
  private helloTimer_ = -1;
  private vitalsTimer_ = -1;
  /** When vitals last went out: scheduled and requested ones are LIMITS.vitalsMinIntervalMs apart at least. */
  private vitalsAt_ = -Infinity;
  /** The error flush timer while one is set, else -1. */
  private flushTimer_ = -1;
  private vitalsPeriod_ = 0;
  /** Events: LIMITS.publishPerSecond, bursts of LIMITS.publishBurst, as Device OS. */
  private readonly events_: Bucket;
  /** Error reports: LIMITS.errorReportsPerSecond, bursts of LIMITS.errorReportBurst. */
  private readonly errorBucket_: Bucket;
  private sent_ = 0;
  private rateLimited_ = 0;
  private reported_ = 0;
  private dead_ = false;
  private threw_ = false;
  private lastError_ = '';
  private readonly bootReason_: number;
  /** The cloud has this boot's reset reason: later hellos (reconnects, new names) say none, as a reconnect is no reset. */
  private resetTold_ = false;
  private readonly topicOf_: { [channel: number]: string };
  private readonly inbox_: string[];
  private trialTimer_ = -1;
  /** This run booted an image on trial (not: an image was verified during this run). */
  private onTrial_ = false;
  /** A verified image waits for the reset: its status, said again to an abort of its job; no other OTA frame is accepted. */
  private finishing_: WireValue[] | null = null;
  private graceLeft_ = 0;
  /** The job whose slot the SHA-256 state holds (-1 none), how many of its bytes, and hashStarts then. */
  private hashJob_ = -1;
  private hashed_ = 0;
  private hashStarts_ = 0;
  private readonly flushB_: () => void;
  constructor(hal: Hal, o: AgentOptions) {
    const id = o.deviceId;
    for (let i = 0; i < API_NAMES.length; i++) (this as unknown as { [name: string]: unknown })[API_NAMES[i]] = this.ev_.bind(this, VARIABLE + i);
    this.hal_ = hal;
    this.deviceId = id;
    this.product_ = o.product;
    this.firmware_ = o.firmware;
    this.boot_ = decodeBoot(hal.flash.readBoot());
    const reason = hal.system.resetReason();
    this.bootReason_ = nameOf(RESET_REASON, reason) ? reason : RESET_REASON.unknown;
    this.events_ = [LIMITS.publishBurst, hal.clock.now(), LIMITS.publishPerSecond, LIMITS.publishBurst];
    this.errorBucket_ = [LIMITS.errorReportBurst, hal.clock.now(), LIMITS.errorReportsPerSecond, LIMITS.errorReportBurst];
    this.flushB_ = this.ev_.bind(this, FLUSH);
    this.topicOf_ = {};
    this.topicOf_[KIND.hello] = deviceTopic(id, 'hello');
    this.topicOf_[KIND.vitals] = deviceTopic(id, 'vitals');
    this.topicOf_[KIND.error] = deviceTopic(id, 'err');
    this.topicOf_[KIND.reply] = deviceTopic(id, 'reply');
    this.topicOf_[KIND.otaStatus] = deviceTopic(id, 'ota');
    this.topicOf_[KIND.status] = deviceTopic(id, 'status');
    // The three cloud → device topics, by name (a device never subscribes with a wildcard).
    this.inbox_ = [cloudTopic(id, 'req'), cloudTopic(id, 'ota'), cloudTopic(id, 'evt')];
    this.mqtt_ = new MqttClient(
      hal,
      {
        clientId: id, username: id, password: o.secret, willTopic: this.topicOf_[KIND.status], willPayload: cborEncode([KIND.status, false]), subscriptions: this.inbox_,
        keepalive: o.keepalive !== undefined ? o.keepalive : 30, backoffMin: o.backoffMin !== undefined ? o.backoffMin : 1000,
        backoffMax: o.backoffMax !== undefined ? o.backoffMax : 60000, queueMax: o.queueMax !== undefined ? o.queueMax : LIMITS.offlineQueueMax,
        inflightMax: 4, ackTimeout: 10000, retries: 3, maxPacket: LIMITS.messageMaxBytes + 256,
      },
      { connected: this.ev_.bind(this, CONNECTED), message: this.ev_.bind(this, MESSAGE) },
    );
    this.onTrial_ = this.boot_.trial !== NO_SLOT;
    if (this.onTrial_)
      // On trial: reach the cloud in time, or reset and let the bootloader roll back.
      this.trialTimer_ = hal.clock.setTimer(this.ev_.bind(this, RESTART, RESET_REASON.update_timeout), o.trialWindow !== undefined ? o.trialWindow : 60000);
    if (this.bootReason_ === RESET_REASON.panic) this.ev_(REPORT, ERROR_SOURCE.crash, '', 'the previous run ended in a crash (reset reason panic)', '');
    if (o.autoConnect !== false) hal.clock.setTimer(this.connect, 0);
  }

  // ---- everything that arrives ----------------------------------------------

  /** The agent's work by event (the constants above); the arguments as each says. */
  private ev_(what: number, a?: any, b?: any, c?: any, d?: any, e?: any): any {
    const hal = this.hal_;
    if (what === TYPE_OF) {
      return typeof a === 'boolean' ? 'bool' : typeof a === 'string' ? 'string'
        : typeof a !== 'number' || !isFinite(a) ? '' : Math.floor(a) === a && a >= -2147483648 && a <= 2147483647 ? 'int32' : 'double';
    } else if (what === TAKE) {
      const now = hal.clock.now();
      a[0] = Math.min(a[3], a[0] + ((now - a[1]) / 1000) * a[2]);
      a[1] = now;
      if (a[0] < 1) return false;
      a[0]--;
      return true;
    } else if (what === CUT) {
      // Each UTF-16 unit is 1 to 3 bytes (a pair 4): b units at most, then a third of the excess
      // at a time, which never cuts too much; a lone surrogate at the end (-1) goes alone.
      if (a.length > b) a = a.substring(0, b);
      for (let n = utf8Length(a); n > b || n < 0; n = utf8Length(a)) a = a.substring(0, a.length - (n < 0 ? 1 : Math.ceil((n - b) / 3)));
      return a;
    } else if (what === TEXT) {
      const n = utf8Length(b);
      if (n < 0 || n > c) throw new Error(a + (n < 0 ? ' has a lone UTF-16 surrogate (half a character)' : ' is over ' + c + ' bytes'));
    } else if (what === PERSIST) {
      hal.flash.writeBoot(encodeBoot(a));
      this.boot_ = a;
    } else if (what === SEND) {
      b.unshift(a);
      const ok = this.mqtt_.publish(this.topicOf_[a], cborEncode(b), a === KIND.vitals ? 0 : a === KIND.hello || a === KIND.status ? ONCE | 1 : 1, c);
      // The agent's own message, which nobody else is told of (an app's refused publish is its caller's to count).
      if (!ok) this.mqtt_.stats.dropped++;
      return ok;
    } else if (what === VARIABLE) {
      // (name, valueOrGetter, type?)
      const call = 'cloud.variable("' + a + '"): ';
      const getter = typeof b === 'function' ? b : null;
      let t = c !== undefined ? c : this.ev_(TYPE_OF, getter ? this.ev_(GUARD, ERROR_SOURCE.variable, a, getter) : b);
      // A number stays double once it is: a reading that is sometimes whole (21, 21.5) would flip the type, and
      // each flip is a hello. A getter's number is a double: its first reading being whole says nothing of the next.
      if (c === undefined && t === 'int32') {
        for (let i = 0; i < this.vars_.length; i++) if (this.vars_[i].name === a && this.vars_[i].type === 'double') t = 'double';
        if (getter) t = 'double';
      }
      if (!Object.prototype.hasOwnProperty.call(VAR_TYPE, t)) throw new Error(call + 'give the type as the third argument: "bool", "int32", "double" or "string"');
      if (!getter && (this.ev_(TYPE_OF, b) !== t && !(t === 'double' && this.ev_(TYPE_OF, b) === 'int32'))) throw new Error(call + 'the value is not of type ' + t);
      if (!getter && t === 'string') this.ev_(TEXT, call + 'the value', b, LIMITS.variableValueMaxBytes);
      this.ev_(REGISTER, call, this.vars_, { name: a, type: t, value: getter ? undefined : b, fn: getter || undefined }, LIMITS.maxVariables, 'variables; combine several into one string');
    } else if (what === FN) {
      // (name, handler)
      this.ev_(REGISTER, 'cloud.fn("' + a + '"): ', this.fns_, { name: a, fn: b }, LIMITS.maxFunctions, 'functions; dispatch several commands on one argument');
    } else if (what === SUBSCRIBE) {
      // (prefix, handler)
      this.ev_(REGISTER, 'cloud.subscribe("' + a + '"): ', this.subs_, { name: a, fn: b }, LIMITS.maxSubscriptions, 'subscriptions; use a shorter common prefix');
    } else if (what === SET_CLAIM_CODE) {
      // (code)
      if (typeof a !== 'string' || a.length === 0 || utf8Length(a) > LIMITS.claimCodeMaxBytes) throw new Error('setClaimCode: a code of 1..' + LIMITS.claimCodeMaxBytes + ' bytes');
      this.ev_(TEXT, 'setClaimCode: the code', a, LIMITS.claimCodeMaxBytes);
      this.claimCode_ = a;
      if (this.mqtt_.connected) this.ev_(CLAIMED);
    } else if (what === ON_OTA) {
      this.otaHandler_ = a;
    } else if (what === IS_CONNECTED) {
      return this.mqtt_.connected;
    } else if (what === CONNECT) {
      if (!this.dead_) this.mqtt_.start();
    } else if (what === DISCONNECT) {
      this.mqtt_.stop();
    } else if (what === PUBLISH) {
      // (name, data?, options?, done?)
      const call = 'cloud.publish("' + a + '"): ';
      const bad = typeof a !== 'string' ? 'must be a string' : eventNameProblem(a) || (isReservedEventName(a) ? 'starts with the reserved prefix "spark"' : '');
      if (bad) throw new Error(call + 'the name ' + bad);
      if (b === undefined) b = null;
      if (b !== null && typeof b !== 'string' && !(b instanceof Uint8Array)) throw new Error(call + 'data must be a string, a Uint8Array or null; convert numbers with String(x)');
      if (typeof b === 'string') this.ev_(TEXT, call + 'data', b, LIMITS.eventDataMaxBytes);
      else if (b !== null && b.length > LIMITS.eventDataMaxBytes) throw new Error(call + 'data is over ' + LIMITS.eventDataMaxBytes + ' bytes');
      const ttl = c && c.ttl !== undefined ? c.ttl : LIMITS.eventTtlDefault;
      if (!(ttl >= 0 && ttl <= LIMITS.eventTtlMax && Math.floor(ttl) === ttl)) throw new Error(call + 'ttl must be a whole number of seconds up to ' + LIMITS.eventTtlMax);
      // The app's callback runs guarded, as every other: it is called from the MQTT client's socket handler.
      if (d) d = this.ev_.bind(this, GUARD, ERROR_SOURCE.publish, a, d);
      if (!this.ev_(TAKE, this.events_)) {
        this.rateLimited_++;
        if (d) d(new Error('rate limited: ' + LIMITS.publishPerSecond + ' event per second, bursts of ' + LIMITS.publishBurst));
        return false;
      }
      const ok = this.mqtt_.publish(deviceTopic(this.deviceId, 'evt', a), cborEncode([KIND.event, b, ttl]), c && c.ack === false ? 0 : 1, d || null);
      if (ok) this.sent_++;
      return ok;
    } else if (what === SET_VITALS) {
      // (periodSec)
      hal.clock.clearTimer(this.vitalsTimer_);
      this.vitalsTimer_ = -1;
      this.vitalsPeriod_ = a > 0 ? a : 0;
      this.ev_(VITALS);
    } else if (what === EVERY || what === AFTER) {
      // (ms, fn): a guarded app timer.
      if (typeof b !== 'function') throw new Error('cloud.' + (what === AFTER ? 'after' : 'every') + ': the callback must be a function');
      const t: AppTimer = [++this.timerSeq_, -1, a, b, b, what === AFTER];
      // Re-armed through t[4]: a function that named itself would become a named
      // function expression, which Duktape built without DUK_USE_FUNC_NAME_PROPERTY
      // (a usual low-memory option) cannot resolve.
      t[4] = this.ev_.bind(this, APP_TIMER, t);
      t[1] = hal.clock.setTimer(t[4], a);
      this.timers_.push(t);
      return t[0];
    } else if (what === CANCEL) {
      // (id)
      for (let i = 0; i < this.timers_.length; i++) {
        if (this.timers_[i][0] === a) {
          hal.clock.clearTimer(this.timers_[i][1]);
          this.timers_.splice(i, 1);
        }
      }
    } else if (what === REGISTER) {
      // (call, list, entry, max, advice); `call` is the message's prefix: 'cloud.fn("name"): '.
      const list = b as Entry[];
      const subs = list === this.subs_;
      const bad = typeof c.name !== 'string' ? 'must be a string' : subs ? eventNameProblem(c.name, true) : nameProblem(c.name);
      if (bad) throw new Error(a + 'the name ' + bad);
      if (list !== this.vars_ && typeof c.fn !== 'function') throw new Error(a + 'the handler must be a function');
      // Registering a name again replaces it; subscriptions may repeat.
      let i = 0;
      while (i < list.length && (subs || list[i].name !== c.name)) i++;
      if (i === list.length && i >= d) throw new Error(a + 'at most ' + d + ' ' + e);
      // A hello lists names and types: a value or handler replaced changes nothing the cloud holds.
      const changed = i === list.length || list[i].type !== c.type;
      list[i] = c;
      if (changed && this.mqtt_.connected && this.helloTimer_ < 0) this.helloTimer_ = hal.clock.setTimer(this.ev_.bind(this, HELLO), 0);
    } else if (what === GUARD) {
      // (source, name, fn, x, y): calls fn(x, y) for the app; an exception is reported, threw_ set, and undefined returned.
      // threw_ is set after the call: one guarded inside it (a publish's done) must not mark this one.
      try {
        const r = c(d, e);
        this.threw_ = false;
        return r;
      } catch (x) {
        const err = x as { message?: unknown; stack?: unknown };
        this.threw_ = true;
        this.lastError_ = this.ev_(CUT, err && err.message !== undefined ? String(err.message) : String(x), LIMITS.errorMessageMaxBytes);
        this.ev_(REPORT, a, b, this.lastError_, err && typeof err.stack === 'string' ? err.stack : '');
        return undefined;
      }
    } else if (what === REPORT) {
      // (source, name, message, stack): collects an error; repeats of one error travel as one report with a count.
      const message = this.ev_(CUT, c, LIMITS.errorMessageMaxBytes);
      const uptime = Math.floor(hal.clock.now() / 1000);
      for (let i = 0; i < this.errors_.length; i++) {
        const p = this.errors_[i];
        if (p[0] === a && p[1] === b && p[2] === message) {
          p[4]++;
          p[5] = uptime;
          return;
        }
      }
      if (this.errors_.length < ERRORS_MAX) this.errors_.push([a, this.ev_(CUT, b, LIMITS.nameMaxBytes), message, this.ev_(CUT, d, LIMITS.errorStackMaxBytes), 1, uptime]);
      if (this.flushTimer_ < 0) this.flushTimer_ = hal.clock.setTimer(this.flushB_, 0);
    } else if (what === CONNECTED) {
      if (this.onTrial_) {
        // Reached the cloud: the trial image is good. (An image verified during this
        // run is marked too, but has not booted yet: it is not confirmed here.)
        this.onTrial_ = false;
        this.ev_(PERSIST, confirmed(this.boot_));
        hal.clock.clearTimer(this.trialTimer_);
      }
      this.ev_(HELLO);
      this.ev_(SEND, KIND.status, [true], null);
      if (this.claimCode_) this.ev_(CLAIMED);
      // Every session starts with vitals, however soon after the last (reconnects are paced by the backoff).
      this.vitalsAt_ = -Infinity;
      this.ev_(VITALS);
      this.ev_(FLUSH);
    } else if (what === HELLO) {
      hal.clock.clearTimer(this.helloTimer_);
      this.helloTimer_ = -1;
      const vars: WireValue[] = [];
      const fns: WireValue[] = [];
      const subs: WireValue[] = [];
      for (let i = 0; i < this.vars_.length; i++) vars.push(this.vars_[i].name, VAR_TYPE[this.vars_[i].type as VarType]);
      for (let i = 0; i < this.fns_.length; i++) fns.push(this.fns_[i].name);
      for (let i = 0; i < this.subs_.length; i++) subs.push(this.subs_[i].name);
      const r = this.boot_;
      const rolledBack = r.rolledBackFrom;
      this.ev_(SEND, 
        KIND.hello,
        [AGENT_VERSION, this.firmware_, this.product_, vars, fns, subs, this.resetTold_ ? RESET_REASON.none : this.bootReason_, [runningSlot(r), r.trial !== NO_SLOT, rolledBack >= 0 ? rolledBack : null]],
        this.ev_.bind(this, HELLO_ACKED, rolledBack),
      );
    } else if (what === HELLO_ACKED) {
      if (!b) this.resetTold_ = true;
      // A rollback is reported once: forget it when the cloud has it.
      if (!b && a >= 0 && this.boot_.rolledBackFrom === a) {
        const next = copy(this.boot_);
        next.rolledBackFrom = -1;
        this.ev_(PERSIST, next);
      }
    } else if (what === CLAIMED) {
      // Without arguments: send the claim code; with them, the cloud's acknowledgement.
      if (a === undefined) {
        const code = this.claimCode_;
        this.mqtt_.publish(deviceTopic(this.deviceId, 'evt', CLAIM_CODE_EVENT), cborEncode([KIND.event, code, LIMITS.eventTtlDefault]), 1, this.ev_.bind(this, CLAIMED, code));
      } else if (!b && this.claimCode_ === a) this.claimCode_ = '';
    } else if (what === RESTART) {
      if (this.dead_) return;
      this.dead_ = true;
      this.mqtt_.stop();
      hal.system.reset(a);
    } else if (what === FLUSH) {
      hal.clock.clearTimer(this.flushTimer_);
      this.flushTimer_ = -1;
      if (!this.mqtt_.connected || this.dead_) return; // sent on connect
      // At the error report rate; the rest wait (their repeats counted) for the next token.
      const b = this.errorBucket_;
      while (this.errors_.length && this.ev_(TAKE, b)) if (this.ev_(SEND, KIND.error, this.errors_.shift() as WireValue[], null)) this.reported_++;
      if (this.errors_.length) this.flushTimer_ = hal.clock.setTimer(this.flushB_, Math.ceil(((1 - b[0]) * 1000) / b[2]));
    } else if (what === VITALS) {
      if (a) this.vitalsTimer_ = -1;
      if (this.vitalsPeriod_ && this.vitalsTimer_ < 0) this.vitalsTimer_ = hal.clock.setTimer(this.ev_.bind(this, VITALS, true), this.vitalsPeriod_ * 1000);
      // Connected, and not within LIMITS.vitalsMinIntervalMs of the last (a refresh then finds them fresh).
      const now = hal.clock.now();
      if (!this.mqtt_.connected || now - this.vitalsAt_ < LIMITS.vitalsMinIntervalMs) return;
      this.vitalsAt_ = now;
      const s = this.mqtt_.stats;
      const sys = hal.system;
      // Pairs of vital code and value, in the table's order (the cloud's encoder writes the same).
      const v: number[] = [
        VITAL.systemUptime, Math.floor(now / 1000), VITAL.systemMemoryUsed, sys.memoryUsed(), VITAL.systemMemoryTotal, sys.memoryTotal(),
        VITAL.systemResetReason, this.bootReason_, VITAL.cloudConnectionStatus, this.mqtt_.status, VITAL.cloudConnectionAttempts, s.attempts,
        VITAL.cloudConnectionDisconnects, s.disconnects, VITAL.cloudConnectionError, s.refusedCode, VITAL.cloudCoapTransmit, s.transmit,
        VITAL.cloudCoapRetransmit, s.retransmit, VITAL.cloudCoapUnack, s.unack, VITAL.cloudCoapRoundTrip, s.roundTrip,
        VITAL.cloudPublishRateLimited, this.rateLimited_, VITAL.cloudPublishSent, this.sent_, VITAL.cloudPublishDropped, s.dropped,
        VITAL.cloudErrorsReported, this.reported_,
      ];
      const signal = sys.signalStrength();
      const battery = sys.battery();
      if (signal >= 0) v.push(VITAL.networkSignalStrength, signal);
      if (battery >= 0) v.push(VITAL.powerBatteryCharge, battery);
      // A HAL reading that is no number (undefined, NaN) is left out: the cloud would refuse the whole report.
      for (let i = v.length - 2; i >= 0; i -= 2) if (typeof v[i + 1] !== 'number' || !isFinite(v[i + 1])) v.splice(i, 2);
      this.ev_(SEND, KIND.vitals, [v], null);
    } else if (what === APP_TIMER) {
      const t = a as AppTimer;
      if (this.dead_) return;
      if (!t[5]) t[1] = hal.clock.setTimer(t[4], t[2]);
      else this.ev_(CANCEL, t[0]);
      this.ev_(GUARD, ERROR_SOURCE.timer, '', t[3]);
    } else if (what === OTA_WAIT) {
      if (!this.mqtt_.connected || --this.graceLeft_ <= 0) this.ev_(RESTART, RESET_REASON.update);
      else hal.clock.setTimer(this.ev_.bind(this, OTA_WAIT), 1000);
    } else if (what === MESSAGE) {
      try {
        this.ev_(INBOUND, a, b);
      } catch (x) {
        this.ev_(REPORT, ERROR_SOURCE.agent, 'message', String((x && (x as Error).message) || x), '');
      }
    } else if (!this.dead_) {
      // INBOUND: (topic, payload) from the cloud.
      let m: Inbound;
      try {
        m = decodeIn(b);
      } catch (e) {
        // A request this agent cannot read (an op from a newer cloud, a field out of bounds) is also
        // answered, so its caller hears why at once instead of timing out.
        if (refusedId >= 0) this.ev_(SEND, KIND.reply, [refusedId, REPLY_STATUS.bad_request, (e as Error).message], null);
        return this.ev_(REPORT, ERROR_SOURCE.agent, 'decode', (e as Error).message, '');
      }
      // Each kind on its own topic: requests on req, OTA frames on ota, events on evt.
      if (a !== this.inbox_[m.kind === 'request' ? 0 : m.kind === 'cloudEvent' ? 2 : 1]) return this.ev_(REPORT, ERROR_SOURCE.agent, 'topic', m.kind + ' is not expected on ' + a, '');
      if (m.kind === 'cloudEvent') {
        for (let i = 0; i < this.subs_.length; i++) {
          const s = this.subs_[i];
          if (m.name.substring(0, s.name.length) === s.name) this.ev_(GUARD, ERROR_SOURCE.subscription, s.name, s.fn as Entry['fn'] & {}, m.name, m.data);
        }
        return;
      }
      if (m.kind === 'request') {
        let status: number = REPLY_STATUS.ok;
        let value: unknown = null;
        this.threw_ = false; // only this request's own callback counts
        const call = m.op === 'call';
        const list = call ? this.fns_ : m.op === 'var' ? this.vars_ : null;
        let e: Entry | null = null;
        for (let i = 0; list && !e && i < list.length; i++) if (list[i].name === (m as { name: string }).name) e = list[i];
        if (list && !e) status = REPLY_STATUS.not_found;
        else if (e) {
          const source = call ? ERROR_SOURCE.function : ERROR_SOURCE.variable;
          value = e.fn ? this.ev_(GUARD, source, e.name, e.fn, call ? (m as { arg: string }).arg : undefined) : e.value;
          const t = this.ev_(TYPE_OF, value);
          const n = t === 'string' ? utf8Length(value as string) : 0;
          if (this.threw_) {
            status = REPLY_STATUS.handler_error;
            value = this.lastError_;
          } else if (n < 0 || (call ? t !== 'int32' : t !== e.type && !(e.type === 'double' && t === 'int32'))) {
            status = REPLY_STATUS.handler_error;
            value = 'cloud.' + (call ? 'fn' : 'variable') + '("' + e.name + '"): returned '
              + (n < 0 ? 'text with a lone UTF-16 surrogate (half a character)' : (t || String(value)) + (call ? '; return an integer (1 success, -1 failure)' : ', not ' + e.type));
            this.ev_(REPORT, source, e.name, value as string, '');
          } else if (n > LIMITS.variableValueMaxBytes) {
            status = REPLY_STATUS.too_large;
            value = null;
          }
        } else if (m.op === 'vitals') this.ev_(VITALS);
        else if (m.op === 'signal') hal.system.signal((value = m.on) as boolean);
        const reset = m.op === 'reset' ? this.ev_.bind(this, RESTART, RESET_REASON.user) : null;
        this.ev_(SEND, KIND.reply, [m.id, status, value as WireValue], reset);
        // Reset once the reply has gone, or after a second without its acknowledgement.
        if (reset) hal.clock.setTimer(reset, 1000);
        return;
      }
      // ---- over the air (otaBegin, otaChunk, otaAbort) ----
      /*
       * The OTA receiver: begin → the offset already held (resume) → chunks written
       * to the slot that is not running, each persisted and acknowledged → SHA-256
       * of the slot read back, and the image header checked → the slot marked for
       * one trial boot → reset. Duplicates are acknowledged and ignored; a chunk
       * past the held offset (out of order, or one missing before it) is not
       * written, and the ack of the held offset makes the cloud resend from there.
       * Out-of-range or oversize chunks and a bad SHA-256 end the job without
       * touching the running image. Every frame gets one status.
       */
      const flash = hal.flash;
      const r = this.boot_;
      const j = r.job;
      const slot = 1 - runningSlot(r);
      const handler = this.otaHandler_;
      let state: number = OTA_STATE.offset;
      let failure: OtaFailure | '' = '';
      let offset = j ? j.offset : 0;
      let version = j ? j.version : 0;
      let size = j ? j.size : 0;
      let sha = j ? j.sha256 : null;
      /** What the app hears of this frame ('' nothing). */
      let type: OtaEvent['type'] | '' = '';
      /** The flash operation under way, for the report if it throws. */
      let op = '';
      let verify = false;
      try {
        if (m.kind === 'otaBegin') {
          version = m.version;
          size = m.size;
          offset = 0;
          failure =
            this.finishing_ || r.trial !== NO_SLOT ? 'busy'
            : m.product !== this.product_ ? 'wrong_product'
            : m.version === this.firmware_ ? 'bad_version'
            : m.size > flash.slotSize() ? 'too_large' : '';
          if (failure) {
            // refused
          } else if (j && j.job === m.job && j.size === m.size && j.version === m.version && j.chunkSize === m.chunkSize && join.call(j.sha256) === join.call(m.sha256)) {
            // The same job again (link drop, or power cut): resume from what is persisted;
            // all of it held already (power lost before the check): check it now.
            offset = j.offset;
            verify = offset === size;
          } else if (handler && this.ev_(GUARD, ERROR_SOURCE.agent, 'onOta', handler as (a?: unknown) => unknown, { type: 'begin', version: version, size: size, offset: 0 }) === false) {
            failure = 'busy';
          } else {
            op = 'erase';
            this.hashJob_ = -1;
            flash.erase(slot);
            const next = copy(r);
            next.job = { job: m.job, version: version, size: size, chunkSize: m.chunkSize, offset: 0, sha256: m.sha256 };
            op = 'boot';
            this.ev_(PERSIST, next);
            op = '';
          }
        } else if (m.kind === 'otaChunk') {
          if (!j || j.job !== m.job || this.finishing_) return; // a stale job's chunk
          const end = m.offset + m.data.length;
          if (m.data.length > j.chunkSize || end > size) failure = 'bad_chunk';
          else if (m.offset === offset) {
            // (Duplicate, behind, or out of order, ahead: keep what we hold, say where we are.)
            op = 'write';
            flash.write(slot, m.offset, m.data);
            const next = copy(r);
            next.job!.offset = offset = end;
            op = 'boot';
            this.ev_(PERSIST, next);
            op = '';
            verify = end === size;
            type = 'progress';
          }
        } else {
          // Too late for the job just verified: the image is marked and the device resets into it.
          if (this.finishing_ && this.finishing_[0] === m.job) return this.ev_(SEND, KIND.otaStatus, this.finishing_, null);
          failure = 'aborted';
          if (!j || j.job !== m.job) offset = -1; // not ours: no offset, nothing to tell the app
        }
        if (type || verify) {
          // Hash the slot as flash holds it, 256 bytes at a time, as far as it is written: chunk by
          // chunk, so the check at the end has nothing left to read (one pass over a 1 MiB image took
          // 12.5 s on Duktape, the device deaf meanwhile). After a restart, or when the app hashed
          // something in between (the state is one), from the start again.
          op = 'verify';
          if (this.hashJob_ !== m.job || this.hashed_ > offset || this.hashStarts_ !== hashStarts) {
            this.hashJob_ = m.job;
            this.hashed_ = 0;
          }
          for (let n = 0; this.hashed_ < offset; this.hashed_ += n) {
            n = Math.min(256, offset - this.hashed_);
            sha256(flash.read(slot, this.hashed_, n), this.hashed_ ? 3 : 2);
          }
          this.hashStarts_ = hashStarts;
          op = '';
        }
        if (verify) {
          this.hashJob_ = -1;
          failure = join.call(sha256(new Uint8Array(0), 1) as Uint8Array) !== join.call(sha!) ? 'bad_sha' : 'bad_chunk';
          // The bytes are what the cloud meant to send; are they an image for this device?
          if (failure === 'bad_chunk') {
            try {
              const h = parseImageHeader(flash.read(slot, 0, Math.min(IMAGE_HEADER_SIZE, size)));
              failure = h.product !== this.product_ ? 'wrong_product' : h.version !== version ? 'bad_version' : h.bodySize + IMAGE_HEADER_SIZE !== size ? 'bad_chunk' : '';
            } catch (e) {
              // not an image: bad_chunk
            }
          }
          if (!failure) {
            op = 'boot';
            this.ev_(PERSIST, pending(this.boot_, slot, version));
            op = '';
            state = OTA_STATE.verified;
            this.finishing_ = [m.job, state, size, null];
            type = 'done';
          }
        }
      } catch (e) {
        if (!op) throw e;
        this.ev_(REPORT, ERROR_SOURCE.ota, '', op + ': ' + String((e as Error).message || e), '');
        failure = 'flash_error';
      }
      if (failure) {
        // The job ends: forget it, tell the cloud why, and the app.
        const b = this.boot_;
        if (b.job && b.job.job === m.job) {
          const next = copy(b);
          next.job = null;
          this.ev_(PERSIST, next);
        }
        state = OTA_STATE.failed;
        type = offset < 0 ? '' : 'failed';
        if (offset < 0) offset = 0;
      }
      // Once verified, reset when the cloud has the status; without it, as soon as the link is
      // down, or after RESET_GRACE_S. The image is marked already: a power cut now boots it.
      this.ev_(SEND, KIND.otaStatus, [m.job, state, verify ? size : offset, failure ? OTA_FAILURE[failure] : null], state === OTA_STATE.verified ? this.ev_.bind(this, RESTART, RESET_REASON.update) : null);
      if (type && handler) {
        const e: OtaEvent = { type: type, version: version, size: size, offset: verify ? size : offset };
        if (failure) e.reason = failure;
        this.ev_(GUARD, ERROR_SOURCE.agent, 'onOta', handler as (a?: unknown) => unknown, e);
      }
      if (state === OTA_STATE.verified) {
        this.graceLeft_ = RESET_GRACE_S;
        this.hal_.clock.setTimer(this.ev_.bind(this, OTA_WAIT), 1000);
      }
    }
  }
}

/** Creates the agent on a HAL. It connects on the next tick unless `autoConnect` is false. */
export function create(hal: Hal, options: AgentOptions): Cloud {
  return new Agent(hal, options);
}

export type { Agent };
