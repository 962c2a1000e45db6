/**
 * The agent: a `cloud` object shaped like Particle's `Particle` facade, over
 * the MQTT client, the OTA receiver and the boot record. Every callback of
 * the app (variable getter, function, subscription handler, timer) runs
 * guarded: an exception is reported to the cloud and never stops the agent.
 */
import {
  Kind, LIMITS, Message, Messages, ProtocolError, RESET_REASONS, Request, ResetReason, topics, utf8Length, validate,
  validateDeviceEventName, VarType, VarValue, VitalValues, eventNameProblem, nameProblem, kindFitsTopic,
} from '@flotilla/protocol/core';
import type { Hal } from './hal.js';
import { BootRecord, confirmed, copy, decodeBoot, encodeBoot, NO_SLOT, runningSlot } from './boot.js';
import { decodeMessage, encodeMessage } from './codec.js';
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
  /** Guarded timers: an exception in `fn` is reported, never fatal. */
  every(ms: number, fn: () => void): number;
  after(ms: number, fn: () => void): number;
  cancel(id: number): void;
  connected(): boolean;
  connect(): void;
  disconnect(): void;
}

interface Variable {
  name: string;
  type: VarType;
  value: VarValue | null;
  getter: Getter | null;
}

interface PendingError {
  source: Messages['error']['source'];
  name: string;
  message: string;
  stack: string;
  count: number;
  uptime: number;
}

interface AppTimer {
  id: number;
  halId: number;
  ms: number;
  repeat: boolean;
  fn: () => void;
  run: () => void;
}

/** Distinct errors held for reporting at once; more are counted only. */
const ERRORS_MAX = 8;

function actionable(call: string, problem: string): Error {
  return new Error(call + ': ' + problem);
}

function typeOf(v: unknown): VarType | '' {
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'number') return Math.floor(v) === v && v >= -2147483648 && v <= 2147483647 ? 'int32' : 'double';
  return '';
}

/** Does a value fit a declared type? (An int32 fits a double variable.) */
function fits(type: VarType, v: unknown): boolean {
  const t = typeOf(v);
  return t === type || (type === 'double' && t === 'int32');
}

function truncate(s: string, maxBytes: number): string {
  while (utf8Length(s) > maxBytes || utf8Length(s) < 0) s = s.substring(0, s.length - 1);
  return s;
}

class Agent implements Cloud {
  readonly deviceId: string;
  readonly limits = LIMITS;
  private readonly mqtt: MqttClient;
  private readonly ota: OtaReceiver;
  private boot: BootRecord;
  private readonly vars: Variable[] = [];
  private readonly fns: { name: string; handler: FunctionHandler }[] = [];
  private readonly subs: { prefix: string; handler: EventHandler }[] = [];
  private readonly timers: AppTimer[] = [];
  private nextTimerId = 1;
  private otaHandler: OtaHandler | null = null;
  private errors: PendingError[] = [];
  private errorTimer = -1;
  private helloTimer = -1;
  private vitalsTimer = -1;
  private vitalsPeriod = 0;
  private tokens: number;
  private refilledAt: number;
  private sent = 0;
  private rateLimited = 0;
  private errorsReported = 0;
  private crashReported = false;
  private dead = false;
  private threw = false;
  private lastError = '';
  private readonly bootReason: ResetReason;
  private readonly tReq: string;
  private readonly tOta: string;
  private readonly tEvt: string;
  private readonly trialTimer: number = -1;
  private readonly flushErrorsB: () => void;
  private readonly sendHelloB: () => void;
  private readonly vitalsTickB: () => void;

  constructor(private readonly hal: Hal, private readonly o: AgentOptions) {
    this.deviceId = o.deviceId;
    this.tReq = topics.cloud.request(o.deviceId);
    this.tOta = topics.cloud.ota(o.deviceId);
    this.tEvt = topics.cloud.event(o.deviceId);
    this.boot = decodeBoot(hal.flash.readBoot());
    this.bootReason = RESET_REASONS.name(hal.system.resetReason()) || 'unknown';
    this.tokens = LIMITS.publishBurst;
    this.refilledAt = hal.clock.now();
    this.flushErrorsB = this.flushErrors.bind(this);
    this.sendHelloB = this.sendHello.bind(this);
    this.vitalsTickB = this.vitalsTick.bind(this);
    this.mqtt = new MqttClient(
      hal,
      {
        clientId: o.deviceId,
        username: o.deviceId,
        password: o.secret,
        willTopic: topics.device.status(o.deviceId),
        willPayload: encodeMessage('status', { online: false }),
        subscriptions: topics.filter.deviceInbox(o.deviceId),
        keepalive: o.keepalive !== undefined ? o.keepalive : 30,
        backoffMin: o.backoffMin !== undefined ? o.backoffMin : 1000,
        backoffMax: o.backoffMax !== undefined ? o.backoffMax : 60000,
        queueMax: o.queueMax !== undefined ? o.queueMax : 16,
        inflightMax: 4,
        ackTimeout: 10000,
        retries: 3,
        maxPacket: LIMITS.messageMaxBytes + 256,
      },
      {
        connected: this.onConnected.bind(this),
        message: this.onMessage.bind(this),
        disconnected: function () {},
      },
    );
    const self = this;
    this.ota = new OtaReceiver({
      hal: hal,
      product: o.product,
      firmware: o.firmware,
      record: function () {
        return self.boot;
      },
      persist: this.persist.bind(this),
      send: function (s, done) {
        self.send('otaStatus', s, done);
      },
      notify: function (e) {
        if (!self.otaHandler) return true;
        const r = self.guard('agent', 'onOta', self.otaHandler as (e: OtaEvent) => unknown, e);
        return r !== false;
      },
      report: function (message) {
        self.report('ota', '', message, '');
      },
      restart: function () {
        self.restart(RESET_REASONS.code('update'));
      },
    });
    if (this.boot.trial !== NO_SLOT) {
      // On trial: reach the cloud in time or let the bootloader roll back.
      this.trialTimer = hal.clock.setTimer(this.restart.bind(this, RESET_REASONS.code('update_timeout')), o.trialWindow !== undefined ? o.trialWindow : 60000);
    }
    if (this.bootReason === 'panic') this.report('crash', '', 'the previous run ended in a crash (reset reason panic)', '');
    if (o.autoConnect !== false) hal.clock.setTimer(this.connect.bind(this), 0);
  }

  // ---- registration ------------------------------------------------------

  variable(name: string, valueOrGetter: VarValue | Getter, type?: VarType): void {
    const call = 'cloud.variable("' + name + '")';
    this.checkName(call, name);
    let getter: Getter | null = null;
    let value: VarValue | null = null;
    if (typeof valueOrGetter === 'function') getter = valueOrGetter;
    else value = valueOrGetter;
    if (type === undefined) {
      const sample = getter ? this.guard('variable', name, getter, undefined) : value;
      const t = typeOf(sample);
      if (!t) throw actionable(call, 'cannot tell the type from ' + (getter ? 'the getter\'s first value' : 'the value') + '; pass it as the third argument: "bool", "int32", "double" or "string"');
      type = t;
    } else if (type !== 'bool' && type !== 'int32' && type !== 'double' && type !== 'string') {
      throw actionable(call, 'type must be "bool", "int32", "double" or "string", not "' + String(type) + '"');
    }
    if (!getter && !fits(type, value)) throw actionable(call, 'the value does not fit type ' + type);
    if (getter === null && typeof value === 'string' && utf8Length(value) > LIMITS.variableValueMaxBytes)
      throw actionable(call, 'the value is over ' + LIMITS.variableValueMaxBytes + ' bytes');
    const existing = this.find(this.vars, name);
    if (existing) {
      existing.type = type;
      existing.value = value;
      existing.getter = getter;
    } else {
      if (this.vars.length >= LIMITS.maxVariables)
        throw actionable(call, 'a device has at most ' + LIMITS.maxVariables + ' variables; remove one or combine several into one string variable');
      this.vars.push({ name: name, type: type, value: value, getter: getter });
    }
    this.helloSoon();
  }

  fn(name: string, handler: FunctionHandler): void {
    const call = 'cloud.fn("' + name + '")';
    this.checkName(call, name);
    if (typeof handler !== 'function') throw actionable(call, 'the handler must be a function (arg) => integer');
    const existing = this.find(this.fns, name);
    if (existing) existing.handler = handler;
    else {
      if (this.fns.length >= LIMITS.maxFunctions)
        throw actionable(call, 'a device has at most ' + LIMITS.maxFunctions + ' functions; dispatch several commands through one function\'s argument');
      this.fns.push({ name: name, handler: handler });
    }
    this.helloSoon();
  }

  subscribe(prefix: string, handler: EventHandler): void {
    const call = 'cloud.subscribe("' + prefix + '")';
    const problem = typeof prefix === 'string' ? eventNameProblem(prefix, true) : 'must be a string';
    if (problem) throw actionable(call, 'the prefix ' + problem);
    if (typeof handler !== 'function') throw actionable(call, 'the handler must be a function (name, data)');
    if (this.subs.length >= LIMITS.maxSubscriptions)
      throw actionable(call, 'a device has at most ' + LIMITS.maxSubscriptions + ' subscriptions; subscribe to a shorter common prefix');
    this.subs.push({ prefix: prefix, handler: handler });
    this.helloSoon();
  }

  onOta(handler: OtaHandler): void {
    this.otaHandler = handler;
  }

  private checkName(call: string, name: string): void {
    const problem = typeof name === 'string' ? nameProblem(name) : 'must be a string';
    if (problem) throw actionable(call, 'the name ' + problem);
  }

  private find<T extends { name: string }>(list: T[], name: string): T | null {
    for (let i = 0; i < list.length; i++) if (list[i].name === name) return list[i];
    return null;
  }

  // ---- connection --------------------------------------------------------

  connected(): boolean {
    return this.mqtt.connected;
  }

  connect(): void {
    if (!this.dead) this.mqtt.start();
  }

  disconnect(): void {
    this.mqtt.stop();
  }

  private onConnected(): void {
    if (this.boot.trial !== NO_SLOT) {
      // Reached the cloud: the trial image is good.
      this.persist(confirmed(this.boot));
      if (this.trialTimer >= 0) this.hal.clock.clearTimer(this.trialTimer);
    }
    this.sendHello();
    this.send('status', { online: true }, null);
    this.publishVitals();
    this.flushErrors();
  }

  private helloSoon(): void {
    if (this.mqtt.connected && this.helloTimer < 0) this.helloTimer = this.hal.clock.setTimer(this.sendHelloB, 0);
  }

  private sendHello(): void {
    if (this.helloTimer >= 0) this.hal.clock.clearTimer(this.helloTimer);
    this.helloTimer = -1;
    const vars: { name: string; type: VarType }[] = [];
    for (let i = 0; i < this.vars.length; i++) vars.push({ name: this.vars[i].name, type: this.vars[i].type });
    const fns: string[] = [];
    for (let i = 0; i < this.fns.length; i++) fns.push(this.fns[i].name);
    const subs: string[] = [];
    for (let i = 0; i < this.subs.length; i++) subs.push(this.subs[i].prefix);
    const b = this.boot;
    const rolledBack = b.rolledBackFrom;
    const self = this;
    this.send(
      'hello',
      {
        agent: AGENT_VERSION, firmware: this.o.firmware, product: this.o.product, variables: vars, functions: fns, subscriptions: subs,
        bootReason: this.bootReason, ota: { slot: runningSlot(b), trial: b.trial !== NO_SLOT, rolledBackFrom: rolledBack >= 0 ? rolledBack : null },
      },
      rolledBack < 0
        ? null
        : function (err) {
            // The rollback is reported once the cloud has it.
            if (!err && self.boot.rolledBackFrom === rolledBack) {
              const next = copy(self.boot);
              next.rolledBackFrom = -1;
              self.persist(next);
            }
          },
    );
  }

  private persist(r: BootRecord): void {
    this.hal.flash.writeBoot(encodeBoot(r));
    this.boot = r;
  }

  private restart(reason: number): void {
    if (this.dead) return;
    this.dead = true;
    this.mqtt.stop();
    this.hal.system.reset(reason);
  }

  /** Encodes and queues a message at QoS 1 (vitals: QoS 0, first to go when the queue is full). */
  private send<K extends Kind>(kind: K, body: Messages[K], done: Done | null): boolean {
    let topic: string;
    switch (kind) {
      case 'hello': topic = topics.device.hello(this.deviceId); break;
      case 'vitals': topic = topics.device.vitals(this.deviceId); break;
      case 'error': topic = topics.device.error(this.deviceId); break;
      case 'reply': topic = topics.device.reply(this.deviceId); break;
      case 'otaStatus': topic = topics.device.ota(this.deviceId); break;
      default: topic = topics.device.status(this.deviceId);
    }
    return this.mqtt.publish(topic, encodeMessage(kind, body), kind === 'vitals' ? 0 : 1, done);
  }

  // ---- publish -----------------------------------------------------------

  publish(name: string, data?: string | Uint8Array | null, options?: PublishOptions, done?: Done): boolean {
    const call = 'cloud.publish("' + name + '")';
    const nameError = typeof name === 'string' ? validateDeviceEventName(name) : new ProtocolError('value', 'event.name must be a string');
    if (nameError) throw actionable(call, nameError.message);
    if (data === undefined) data = null;
    if (data !== null && typeof data !== 'string' && !(data instanceof Uint8Array))
      throw actionable(call, 'data must be a string, a Uint8Array or null; convert numbers with String(x)');
    const ttl = options && options.ttl !== undefined ? options.ttl : LIMITS.eventTtlDefault;
    const body = { data: data, ttl: ttl };
    const problem = validate('event', body);
    if (problem) throw actionable(call, problem.message);
    // Token bucket: LIMITS.publishPerSecond, bursts of LIMITS.publishBurst, as Device OS.
    const now = this.hal.clock.now();
    this.tokens = Math.min(LIMITS.publishBurst, this.tokens + ((now - this.refilledAt) / 1000) * LIMITS.publishPerSecond);
    this.refilledAt = now;
    if (this.tokens < 1) {
      this.rateLimited++;
      if (done) done(new Error('rate limited: at most ' + LIMITS.publishPerSecond + ' event per second, bursts of ' + LIMITS.publishBurst));
      return false;
    }
    this.tokens -= 1;
    const ok = this.mqtt.publish(topics.device.event(this.deviceId, name), encodeMessage('event', body), options && options.ack === false ? 0 : 1, done || null);
    if (ok) this.sent++;
    return ok;
  }

  // ---- vitals ------------------------------------------------------------

  vitals(periodSec: number): void {
    if (this.vitalsTimer >= 0) this.hal.clock.clearTimer(this.vitalsTimer);
    this.vitalsTimer = -1;
    this.vitalsPeriod = periodSec > 0 ? periodSec : 0;
    if (this.mqtt.connected) this.publishVitals();
    if (this.vitalsPeriod) this.vitalsTimer = this.hal.clock.setTimer(this.vitalsTickB, this.vitalsPeriod * 1000);
  }

  private vitalsTick(): void {
    this.vitalsTimer = -1;
    if (this.mqtt.connected) this.publishVitals();
    if (this.vitalsPeriod) this.vitalsTimer = this.hal.clock.setTimer(this.vitalsTickB, this.vitalsPeriod * 1000);
  }

  private collectVitals(): VitalValues {
    const s = this.mqtt.stats;
    const sys = this.hal.system;
    const v: VitalValues = {
      'device.system.uptime': Math.floor(this.hal.clock.now() / 1000),
      'device.system.memory.used': sys.memoryUsed(),
      'device.system.memory.total': sys.memoryTotal(),
      'device.system.reset_reason': RESET_REASONS.code(this.bootReason),
      'device.cloud.connection.status': this.mqtt.status,
      'device.cloud.connection.attempts': s.attempts,
      'device.cloud.connection.disconnects': s.disconnects,
      'device.cloud.connection.error': s.refusedCode,
      'device.cloud.coap.transmit': s.transmit,
      'device.cloud.coap.retransmit': s.retransmit,
      'device.cloud.coap.unack': s.unack,
      'device.cloud.coap.round_trip': s.roundTrip,
      'device.cloud.publish.rate_limited': this.rateLimited,
      'device.cloud.publish.sent': this.sent,
      'device.cloud.publish.dropped': s.dropped,
      'device.cloud.errors.reported': this.errorsReported,
    };
    const battery = sys.battery();
    if (battery >= 0) v['device.power.battery.charge'] = battery;
    const signal = sys.signalStrength();
    if (signal >= 0) v['device.network.signal.strength'] = signal;
    return v;
  }

  private publishVitals(): void {
    this.send('vitals', { values: this.collectVitals() }, null);
  }

  // ---- timers ------------------------------------------------------------

  every(ms: number, fn: () => void): number {
    return this.timer(ms, fn, true);
  }

  after(ms: number, fn: () => void): number {
    return this.timer(ms, fn, false);
  }

  cancel(id: number): void {
    for (let i = 0; i < this.timers.length; i++) {
      if (this.timers[i].id === id) {
        this.hal.clock.clearTimer(this.timers[i].halId);
        this.timers.splice(i, 1);
        return;
      }
    }
  }

  private timer(ms: number, fn: () => void, repeat: boolean): number {
    if (typeof fn !== 'function') throw actionable('cloud.' + (repeat ? 'every' : 'after'), 'the callback must be a function');
    const self = this;
    const t: AppTimer = {
      id: this.nextTimerId++, halId: -1, ms: ms, repeat: repeat, fn: fn,
      run: function () {
        if (self.dead) return;
        if (t.repeat) t.halId = self.hal.clock.setTimer(t.run, t.ms);
        else self.cancel(t.id);
        self.guard('timer', '', t.fn, undefined);
      },
    };
    t.halId = this.hal.clock.setTimer(t.run, ms);
    this.timers.push(t);
    return t.id;
  }

  // ---- errors ------------------------------------------------------------

  /** Calls an app callback; an exception is reported, `threw` set, and undefined returned. */
  private guard<A, B>(source: PendingError['source'], name: string, fn: (a: A, b: B) => unknown, a: A, b?: B): unknown {
    this.threw = false;
    try {
      return fn(a, b as B);
    } catch (e) {
      this.threw = true;
      const err = e as { message?: unknown; stack?: unknown } | null;
      const message = err && typeof err === 'object' && err.message !== undefined ? String(err.message) : String(e);
      this.lastError = message;
      this.report(source, name, message, err && typeof err === 'object' && typeof err.stack === 'string' ? err.stack : '');
      return undefined;
    }
  }

  private report(source: PendingError['source'], name: string, message: string, stack: string): void {
    message = truncate(message, LIMITS.errorMessageMaxBytes);
    stack = truncate(stack, LIMITS.errorStackMaxBytes);
    name = truncate(name, LIMITS.nameMaxBytes);
    const uptime = Math.floor(this.hal.clock.now() / 1000);
    for (let i = 0; i < this.errors.length; i++) {
      const p = this.errors[i];
      if (p.source === source && p.name === name && p.message === message) {
        p.count++;
        p.uptime = uptime;
        return;
      }
    }
    if (this.errors.length < ERRORS_MAX) this.errors.push({ source: source, name: name, message: message, stack: stack, count: 1, uptime: uptime });
    if (this.errorTimer < 0) this.errorTimer = this.hal.clock.setTimer(this.flushErrorsB, 0);
  }

  /** Sends what was collected; repeats of one error within a second travel as one report with a count. */
  private flushErrors(): void {
    if (this.errorTimer >= 0) this.hal.clock.clearTimer(this.errorTimer);
    this.errorTimer = -1;
    if (!this.mqtt.connected || this.dead) return; // sent on connect
    while (this.errors.length) {
      const p = this.errors.shift() as PendingError;
      if (p.source === 'crash') {
        if (this.crashReported) continue;
        this.crashReported = true;
      }
      if (this.send('error', p, null)) this.errorsReported++;
    }
  }

  // ---- requests from the cloud -------------------------------------------

  private onMessage(topic: string, payload: Uint8Array): void {
    if (this.dead) return;
    let msg: Message;
    try {
      msg = decodeMessage(payload);
    } catch (e) {
      this.report('agent', 'decode', (e as Error).message, '');
      return;
    }
    const channel = topic === this.tReq ? 'req' : topic === this.tOta ? 'ota' : topic === this.tEvt ? 'evt' : '';
    if (!channel || !kindFitsTopic(msg.kind, 'cloud', channel)) {
      this.report('agent', 'topic', msg.kind + ' is not expected on ' + topic, '');
      return;
    }
    switch (msg.kind) {
      case 'request': return this.onRequest(msg);
      case 'otaBegin': return this.ota.begin(msg);
      case 'otaChunk': return this.ota.chunk(msg);
      case 'otaAbort': return this.ota.abort(msg);
      case 'cloudEvent':
        for (let i = 0; i < this.subs.length; i++) {
          const s = this.subs[i];
          if (msg.name.substring(0, s.prefix.length) === s.prefix) this.guard('subscription', s.prefix, s.handler, msg.name, msg.data);
        }
        return;
    }
  }

  private reply(id: number, status: Messages['reply']['status'], value: VarValue | null): void {
    this.send('reply', { id: id, status: status, value: value }, null);
  }

  private onRequest(r: Request): void {
    switch (r.op) {
      case 'var': {
        const v = this.find(this.vars, r.name);
        if (!v) return this.reply(r.id, 'not_found', null);
        const value = v.getter ? this.guard('variable', v.name, v.getter, undefined) : v.value;
        if (this.threw && v.getter) return this.reply(r.id, 'handler_error', this.errorText());
        if (!fits(v.type, value)) {
          const message = 'cloud.variable("' + v.name + '"): the getter returned ' + (typeOf(value) || typeof value) + ', not ' + v.type;
          this.report('variable', v.name, message, '');
          return this.reply(r.id, 'handler_error', message);
        }
        if (typeof value === 'string' && utf8Length(value) > LIMITS.variableValueMaxBytes) return this.reply(r.id, 'too_large', null);
        return this.reply(r.id, 'ok', value as VarValue);
      }
      case 'call': {
        const f = this.find(this.fns, r.name);
        if (!f) return this.reply(r.id, 'not_found', null);
        const result = this.guard('function', f.name, f.handler, r.arg);
        if (this.threw) return this.reply(r.id, 'handler_error', this.errorText());
        if (typeOf(result) !== 'int32') {
          const message = 'cloud.fn("' + f.name + '"): the handler returned ' + (result === undefined ? 'undefined' : String(result)) + '; return an integer (1 success, -1 failure)';
          this.report('function', f.name, message, '');
          return this.reply(r.id, 'handler_error', message);
        }
        return this.reply(r.id, 'ok', result as number);
      }
      case 'ping':
        return this.reply(r.id, 'ok', null);
      case 'vitals':
        this.publishVitals();
        return this.reply(r.id, 'ok', null);
      case 'signal':
        this.hal.system.signal(r.on);
        return this.reply(r.id, 'ok', r.on);
      case 'reset': {
        const self = this;
        // Reset once the reply has gone (or after a second).
        const user = RESET_REASONS.code('user');
        this.send('reply', { id: r.id, status: 'ok', value: null }, function () {
          self.restart(user);
        });
        this.hal.clock.setTimer(function () {
          self.restart(user);
        }, 1000);
        return;
      }
    }
  }

  /** The message of the exception guard just caught, for a handler_error reply. */
  private errorText(): string {
    return truncate(this.lastError, LIMITS.variableValueMaxBytes);
  }
}

/** Creates the agent on a HAL. It connects on the next tick unless `autoConnect` is false. */
export function create(hal: Hal, options: AgentOptions): Cloud {
  return new Agent(hal, options);
}
