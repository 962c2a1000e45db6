/**
 * The agent: a `cloud` object shaped like Particle's `Particle` facade, over
 * the MQTT client, the OTA receiver and the boot record. Every callback of
 * the app (variable getter, function, subscription handler, timer) runs
 * guarded: an exception is reported to the cloud and never stops the agent.
 *
 * Heap on these engines grows with code (about 3.6 bytes per byte of bundle),
 * so this file favours few functions and builds wire arrays in place.
 */
import {
  CLAIM_CODE_EVENT, cloudTopic, deviceTopic, ERROR_SOURCE, eventNameProblem, isReservedEventName, KIND, LIMITS, nameProblem, OTA_FAILURE, OTA_STATE, REPLY_STATUS, RESET_REASON,
  utf8Length, VAR_TYPE, VITAL, WireValue,
} from '@flotilla/protocol/core';
import type { OtaFailure, OtaState, ReplyStatus, VarType, VarValue } from '@flotilla/protocol/core';
import type { Hal } from './hal.js';
import { BootRecord, confirmed, copy, decodeBoot, encodeBoot, NO_SLOT, runningSlot } from './boot.js';
import { cborEncode, decodeIn, Inbound, nameOf } from './wire.js';
import { Done, MqttClient } from './mqtt/client.js';
import { OtaEvent, OtaReceiver } from './ota.js';

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

/** An app timer: [id, hal timer id, ms (negative: once), the app's fn, the guarded runner]. */
type AppTimer = [number, number, number, () => void, () => void];

/** Distinct errors held for reporting at once; more are counted only. */
const ERRORS_MAX = 8;

function problem(call: string, what: string): Error {
  return new Error('cloud.' + call + ': ' + what);
}

function typeOf(v: unknown): VarType | '' {
  return typeof v === 'boolean' ? 'bool' : typeof v === 'string' ? 'string'
    : typeof v !== 'number' ? '' : Math.floor(v) === v && v >= -2147483648 && v <= 2147483647 ? 'int32' : 'double';
}

/** Cuts `s` to at most `max` UTF-8 bytes. */
function cut(s: string, max: number): string {
  while (utf8Length(s) > max || utf8Length(s) < 0) s = s.substring(0, s.length - 1);
  return s;
}

function find(list: Entry[], name: string): Entry | null {
  for (let i = 0; i < list.length; i++) if (list[i].name === name) return list[i];
  return null;
}

class Agent implements Cloud {
  readonly deviceId: string;
  readonly limits = LIMITS;
  boot: BootRecord;
  readonly hal: Hal;
  readonly product: number;
  readonly firmware: number;
  private readonly mqtt_: MqttClient;
  private readonly ota_: OtaReceiver;
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
  private vitalsPeriod_ = 0;
  private tokens_: number = LIMITS.publishBurst;
  private refilledAt_: number;
  private sent_ = 0;
  private rateLimited_ = 0;
  private reported_ = 0;
  private dead_ = false;
  private threw_ = false;
  private lastError_ = '';
  private readonly bootReason_: number;
  private readonly topicOf_: { [channel: number]: string };
  private readonly inbox_: string[];
  private trialTimer_ = -1;
  /** This run booted an image on trial (not: an image was verified during this run). */
  private onTrial_ = false;
  private readonly flushB_: () => void;

  constructor(hal: Hal, o: AgentOptions) {
    const id = o.deviceId;
    this.hal = hal;
    this.deviceId = id;
    this.product = o.product;
    this.firmware = o.firmware;
    this.boot = decodeBoot(hal.flash.readBoot());
    const reason = hal.system.resetReason();
    this.bootReason_ = nameOf(RESET_REASON, reason) ? reason : RESET_REASON.unknown;
    this.refilledAt_ = hal.clock.now();
    this.flushB_ = this.flush_.bind(this);
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
      { connected: this.onConnected_.bind(this), message: this.onMessage_.bind(this), disconnected: function () {} },
    );
    this.ota_ = new OtaReceiver(this);
    this.onTrial_ = this.boot.trial !== NO_SLOT;
    if (this.onTrial_)
      // On trial: reach the cloud in time, or reset and let the bootloader roll back.
      this.trialTimer_ = hal.clock.setTimer(this.restart.bind(this, RESET_REASON.update_timeout), o.trialWindow !== undefined ? o.trialWindow : 60000);
    if (this.bootReason_ === RESET_REASON.panic) this.report(ERROR_SOURCE.crash, '', 'the previous run ended in a crash (reset reason panic)', '');
    if (o.autoConnect !== false) hal.clock.setTimer(this.connect.bind(this), 0);
  }

  // ---- registration ------------------------------------------------------

  variable(name: string, valueOrGetter: VarValue | Getter, type?: VarType): void {
    const call = 'variable("' + name + '")';
    const getter = typeof valueOrGetter === 'function' ? valueOrGetter : null;
    const t = type !== undefined ? type : typeOf(getter ? this.guard_(ERROR_SOURCE.variable, name, getter) : valueOrGetter);
    if (!VAR_TYPE[t as VarType]) throw problem(call, 'give the type as the third argument: "bool", "int32", "double" or "string"');
    if (!getter && (typeOf(valueOrGetter) !== t && !(t === 'double' && typeOf(valueOrGetter) === 'int32'))) throw problem(call, 'the value is not of type ' + t);
    if (!getter && t === 'string' && utf8Length(valueOrGetter as string) > LIMITS.variableValueMaxBytes) throw problem(call, 'the value is over ' + LIMITS.variableValueMaxBytes + ' bytes');
    this.register_(call, this.vars_, { name: name, type: t as VarType, value: getter ? undefined : (valueOrGetter as VarValue), fn: getter || undefined }, LIMITS.maxVariables, 'variables; combine several into one string');
  }

  fn(name: string, handler: FunctionHandler): void {
    this.register_('fn("' + name + '")', this.fns_, { name: name, fn: handler as Entry['fn'] }, LIMITS.maxFunctions, 'functions; dispatch several commands on one argument');
  }

  subscribe(prefix: string, handler: EventHandler): void {
    this.register_('subscribe("' + prefix + '")', this.subs_, { name: prefix, fn: handler as Entry['fn'] }, LIMITS.maxSubscriptions, 'subscriptions; use a shorter common prefix');
  }

  private register_(call: string, list: Entry[], e: Entry, max: number, advice: string): void {
    const bad = typeof e.name !== 'string' ? 'must be a string' : list === this.subs_ ? eventNameProblem(e.name, true) : nameProblem(e.name);
    if (bad) throw problem(call, 'the name ' + bad);
    if (list !== this.vars_ && typeof e.fn !== 'function') throw problem(call, 'the handler must be a function');
    const existing = list === this.subs_ ? null : find(list, e.name);
    if (existing) list[list.indexOf(existing)] = e;
    else if (list.length >= max) throw problem(call, 'at most ' + max + ' ' + advice);
    else list.push(e);
    if (this.mqtt_.connected && this.helloTimer_ < 0) this.helloTimer_ = this.hal.clock.setTimer(this.sendHello_.bind(this), 0);
  }

  setClaimCode(code: string): void {
    if (typeof code !== 'string' || code.length === 0 || utf8Length(code) > LIMITS.claimCodeMaxBytes) throw new Error('setClaimCode: a code of 1..' + LIMITS.claimCodeMaxBytes + ' bytes');
    this.claimCode_ = code;
    if (this.mqtt_.connected) this.sendClaim_();
  }

  private sendClaim_(): void {
    const code = this.claimCode_;
    const self = this;
    this.mqtt_.publish(deviceTopic(this.deviceId, 'evt', CLAIM_CODE_EVENT), cborEncode([KIND.event, code, LIMITS.eventTtlDefault]), 1, function (err) {
      if (!err && self.claimCode_ === code) self.claimCode_ = '';
    });
  }

  onOta(handler: OtaHandler): void {
    this.otaHandler_ = handler;
  }

  // ---- connection --------------------------------------------------------

  connected(): boolean {
    return this.mqtt_.connected;
  }

  connect(): void {
    if (!this.dead_) this.mqtt_.start();
  }

  disconnect(): void {
    this.mqtt_.stop();
  }

  private onConnected_(): void {
    if (this.onTrial_) {
      // Reached the cloud: the trial image is good. (An image verified during this
      // run is marked too, but has not booted yet: it is not confirmed here.)
      this.onTrial_ = false;
      this.persist(confirmed(this.boot));
      this.hal.clock.clearTimer(this.trialTimer_);
    }
    this.sendHello_();
    this.send_(KIND.status, [true], null);
    if (this.claimCode_) this.sendClaim_();
    this.vitalsNow_();
    this.flush_();
  }

  private sendHello_(): void {
    this.hal.clock.clearTimer(this.helloTimer_);
    this.helloTimer_ = -1;
    const vars: WireValue[] = [];
    const fns: WireValue[] = [];
    const subs: WireValue[] = [];
    for (let i = 0; i < this.vars_.length; i++) vars.push(this.vars_[i].name, VAR_TYPE[this.vars_[i].type as VarType]);
    for (let i = 0; i < this.fns_.length; i++) fns.push(this.fns_[i].name);
    for (let i = 0; i < this.subs_.length; i++) subs.push(this.subs_[i].name);
    const b = this.boot;
    const rolledBack = b.rolledBackFrom;
    const self = this;
    this.send_(
      KIND.hello,
      [AGENT_VERSION, this.firmware, this.product, vars, fns, subs, this.bootReason_, [runningSlot(b), b.trial !== NO_SLOT, rolledBack >= 0 ? rolledBack : null]],
      rolledBack < 0 ? null : function (err) {
        // A rollback is reported once: forget it when the cloud has it.
        if (!err && self.boot.rolledBackFrom === rolledBack) {
          const next = copy(self.boot);
          next.rolledBackFrom = -1;
          self.persist(next);
        }
      },
    );
  }

  /** Persists the boot record (one atomic write) and makes it current. */
  persist(r: BootRecord): void {
    this.hal.flash.writeBoot(encodeBoot(r));
    this.boot = r;
  }

  restart(reason: number): void {
    if (this.dead_) return;
    this.dead_ = true;
    this.mqtt_.stop();
    this.hal.system.reset(reason);
  }

  /** Queues message `kind` with these fields; QoS 1 but for vitals, which a full queue drops first. */
  private send_(kind: number, fields: WireValue[], done: Done | null): boolean {
    fields.unshift(kind);
    return this.mqtt_.publish(this.topicOf_[kind], cborEncode(fields), kind === KIND.vitals ? 0 : 1, done);
  }

  // ---- publish -----------------------------------------------------------

  publish(name: string, data?: string | Uint8Array | null, options?: PublishOptions, done?: Done): boolean {
    const call = 'publish("' + name + '")';
    const bad = typeof name !== 'string' ? 'must be a string' : eventNameProblem(name) || (isReservedEventName(name) ? 'starts with the reserved prefix "spark"' : '');
    if (bad) throw problem(call, 'the name ' + bad);
    if (data === undefined) data = null;
    if (data !== null && typeof data !== 'string' && !(data instanceof Uint8Array)) throw problem(call, 'data must be a string, a Uint8Array or null; convert numbers with String(x)');
    if (data !== null && (typeof data === 'string' ? utf8Length(data) : data.length) > LIMITS.eventDataMaxBytes) throw problem(call, 'data is over ' + LIMITS.eventDataMaxBytes + ' bytes');
    const ttl = options && options.ttl !== undefined ? options.ttl : LIMITS.eventTtlDefault;
    if (!(ttl >= 0 && ttl <= LIMITS.eventTtlMax && Math.floor(ttl) === ttl)) throw problem(call, 'ttl must be a whole number of seconds up to ' + LIMITS.eventTtlMax);
    // Token bucket: LIMITS.publishPerSecond, bursts of LIMITS.publishBurst, as Device OS.
    const now = this.hal.clock.now();
    this.tokens_ = Math.min(LIMITS.publishBurst, this.tokens_ + ((now - this.refilledAt_) / 1000) * LIMITS.publishPerSecond);
    this.refilledAt_ = now;
    if (this.tokens_ < 1) {
      this.rateLimited_++;
      if (done) done(new Error('rate limited: ' + LIMITS.publishPerSecond + ' event per second, bursts of ' + LIMITS.publishBurst));
      return false;
    }
    this.tokens_--;
    const ok = this.mqtt_.publish(deviceTopic(this.deviceId, 'evt', name), cborEncode([KIND.event, data, ttl]), options && options.ack === false ? 0 : 1, done || null);
    if (ok) this.sent_++;
    return ok;
  }

  // ---- vitals ------------------------------------------------------------

  vitals(periodSec: number): void {
    this.hal.clock.clearTimer(this.vitalsTimer_);
    this.vitalsTimer_ = -1;
    this.vitalsPeriod_ = periodSec > 0 ? periodSec : 0;
    this.vitalsNow_();
  }

  /** Publishes vitals (when connected), and re-arms the schedule. */
  private vitalsNow_(): void {
    if (this.vitalsPeriod_ && this.vitalsTimer_ < 0) {
      const self = this;
      this.vitalsTimer_ = this.hal.clock.setTimer(function () {
        self.vitalsTimer_ = -1;
        self.vitalsNow_();
      }, this.vitalsPeriod_ * 1000);
    }
    if (!this.mqtt_.connected) return;
    const s = this.mqtt_.stats;
    const sys = this.hal.system;
    // Pairs of vital code and value, in the table's order (the cloud's encoder writes the same).
    const v: number[] = [
      VITAL.systemUptime, Math.floor(this.hal.clock.now() / 1000), VITAL.systemMemoryUsed, sys.memoryUsed(), VITAL.systemMemoryTotal, sys.memoryTotal(),
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
    this.send_(KIND.vitals, [v], null);
  }

  // ---- timers ------------------------------------------------------------

  every(ms: number, fn: () => void): number {
    return this.timer_(ms, fn);
  }

  after(ms: number, fn: () => void): number {
    return this.timer_(-ms, fn);
  }

  cancel(id: number): void {
    for (let i = 0; i < this.timers_.length; i++) {
      if (this.timers_[i][0] === id) {
        this.hal.clock.clearTimer(this.timers_[i][1]);
        this.timers_.splice(i, 1);
      }
    }
  }

  /** A guarded app timer; a negative `ms` fires once. */
  private timer_(ms: number, fn: () => void): number {
    if (typeof fn !== 'function') throw problem(ms < 0 ? 'after' : 'every', 'the callback must be a function');
    const self = this;
    const t: AppTimer = [++this.timerSeq_, -1, ms, fn, fn];
    // Re-armed through t[4], not its own name: a minifier turns a self-referencing
    // function into a named function expression, which Duktape built without
    // DUK_USE_FUNC_NAME_PROPERTY (a usual low-memory option) cannot resolve.
    t[4] = function () {
      if (self.dead_) return;
      if (t[2] >= 0) t[1] = self.hal.clock.setTimer(t[4], t[2]);
      else self.cancel(t[0]);
      self.guard_(ERROR_SOURCE.timer, '', t[3]);
    };
    t[1] = this.hal.clock.setTimer(t[4], ms < 0 ? -ms : ms);
    this.timers_.push(t);
    return t[0];
  }

  // ---- errors ------------------------------------------------------------

  /** Calls an app callback; an exception is reported, `threw` set, and undefined returned. */
  private guard_(source: number, name: string, fn: (a?: unknown, b?: unknown) => unknown, a?: unknown, b?: unknown): unknown {
    this.threw_ = false;
    try {
      return fn(a, b);
    } catch (e) {
      const err = e as { message?: unknown; stack?: unknown };
      this.threw_ = true;
      this.lastError_ = cut(err && err.message !== undefined ? String(err.message) : String(e), LIMITS.errorMessageMaxBytes);
      this.report(source, name, this.lastError_, err && typeof err.stack === 'string' ? err.stack : '');
      return undefined;
    }
  }

  /** Collects an error; repeats of one error travel as one report with a count. */
  report(source: number, name: string, message: string, stack: string): void {
    message = cut(message, LIMITS.errorMessageMaxBytes);
    const uptime = Math.floor(this.hal.clock.now() / 1000);
    for (let i = 0; i < this.errors_.length; i++) {
      const p = this.errors_[i];
      if (p[0] === source && p[1] === name && p[2] === message) {
        p[4]++;
        p[5] = uptime;
        return;
      }
    }
    if (this.errors_.length < ERRORS_MAX) this.errors_.push([source, cut(name, LIMITS.nameMaxBytes), message, cut(stack, LIMITS.errorStackMaxBytes), 1, uptime]);
    this.hal.clock.setTimer(this.flushB_, 0);
  }

  private flush_(): void {
    if (!this.mqtt_.connected || this.dead_) return; // sent on connect
    while (this.errors_.length) if (this.send_(KIND.error, this.errors_.shift() as WireValue[], null)) this.reported_++;
  }

  // ---- from the cloud ----------------------------------------------------

  private onMessage_(topic: string, payload: Uint8Array): void {
    if (this.dead_) return;
    let m: Inbound;
    try {
      m = decodeIn(payload);
    } catch (e) {
      return this.report(ERROR_SOURCE.agent, 'decode', (e as Error).message, '');
    }
    // Each kind on its own topic: requests on req, OTA frames on ota, events on evt.
    const expected = m.kind === 'request' ? 0 : m.kind === 'cloudEvent' ? 2 : 1;
    if (topic !== this.inbox_[expected]) return this.report(ERROR_SOURCE.agent, 'topic', m.kind + ' is not expected on ' + topic, '');
    if (m.kind === 'otaBegin') return this.ota_.begin(m);
    if (m.kind === 'otaChunk') return this.ota_.chunk(m);
    if (m.kind === 'otaAbort') return this.ota_.abort(m);
    if (m.kind === 'cloudEvent') {
      for (let i = 0; i < this.subs_.length; i++) {
        const s = this.subs_[i];
        if (m.name.substring(0, s.name.length) === s.name) this.guard_(ERROR_SOURCE.subscription, s.name, s.fn as Entry['fn'] & {}, m.name, m.data);
      }
      return;
    }
    let status: ReplyStatus = 'ok';
    let value: unknown = null;
    this.threw_ = false; // only this request's own callback counts
    const e = m.op === 'var' ? find(this.vars_, m.name) : m.op === 'call' ? find(this.fns_, m.name) : null;
    if ((m.op === 'var' || m.op === 'call') && !e) status = 'not_found';
    else if (e) {
      value = e.fn ? this.guard_(m.op === 'var' ? ERROR_SOURCE.variable : ERROR_SOURCE.function, e.name, e.fn, m.op === 'call' ? m.arg : undefined) : e.value;
      const t = typeOf(value);
      const wrong = m.op === 'call' ? t !== 'int32' : t !== e.type && !(e.type === 'double' && t === 'int32');
      if (this.threw_) {
        status = 'handler_error';
        value = this.lastError_;
      } else if (wrong) {
        status = 'handler_error';
        value = 'cloud.' + (m.op === 'call' ? 'fn' : 'variable') + '("' + e.name + '"): returned ' + (t || String(value)) + (m.op === 'call' ? '; return an integer (1 success, -1 failure)' : ', not ' + e.type);
        this.report(m.op === 'call' ? ERROR_SOURCE.function : ERROR_SOURCE.variable, e.name, value as string, '');
      } else if (t === 'string' && utf8Length(value as string) > LIMITS.variableValueMaxBytes) {
        status = 'too_large';
        value = null;
      }
    } else if (m.op === 'vitals') this.vitalsNow_();
    else if (m.op === 'signal') this.hal.system.signal((value = m.on) as boolean);
    const self = this;
    this.send_(KIND.reply, [m.id, REPLY_STATUS[status], value as WireValue], m.op !== 'reset' ? null : function () {
      self.restart(RESET_REASON.user);
    });
    // Reset once the reply has gone, or after a second without its acknowledgement.
    if (m.op === 'reset') this.hal.clock.setTimer(this.restart.bind(this, RESET_REASON.user), 1000);
  }

  // ---- for the OTA receiver ------------------------------------------------

  sendOta(job: number, state: OtaState, offset: number, reason: OtaFailure | null, done: Done | null): void {
    this.send_(KIND.otaStatus, [job, OTA_STATE[state], offset, reason ? OTA_FAILURE[reason] : null], done);
  }

  notifyOta(e: OtaEvent): boolean {
    return !this.otaHandler_ || this.guard_(ERROR_SOURCE.agent, 'onOta', this.otaHandler_ as (a?: unknown) => unknown, e) !== false;
  }

  reportOta(message: string): void {
    this.report(ERROR_SOURCE.ota, '', message, '');
  }
}

/** Creates the agent on a HAL. It connects on the next tick unless `autoConnect` is false. */
export function create(hal: Hal, options: AgentOptions): Cloud {
  return new Agent(hal, options);
}

export type { Agent };
