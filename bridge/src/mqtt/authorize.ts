/**
 * aedes' authorization hooks as thin adapters: each parses what the packet
 * asks, loads what the policy needs, and calls the pure decide(). A refused
 * PUBLISH closes the client (MQTT 3.1.1 has no negative PUBACK); a refused
 * SUBSCRIBE is answered with 0x80 and the client stays. Delivery
 * (authorizeForward) is synchronous and decides from the session and the
 * in-memory device map only.
 */
import { CLAIM_CODE_EVENT, decode, isProtocolError, kindFitsTopic, parseFilter, parseTopic, validateDeviceEventName } from '@flotilla/protocol';
import type { Action, Message, ParsedTopic } from '@flotilla/protocol';
import { decide } from '../policy/decide.js';
import { auditEntry, type Verdict } from '../identity/actor.js';
import type { DeviceRef } from './deps.js';
import type { BrokerContext } from './context.js';
import { ingest } from './ingest.js';
import { CLOUD_EVENT_OPS, deviceMessageOps, tally } from '../telemetry/data-ops.js';
import { presentClaimCode } from './claims.js';
import type { Session, WithSession } from './session.js';
import { take, takeEvent } from './budget.js';
import { heldBack } from './quarantine.js';

/** A refusal: aedes closes the client; the message says why, for the log. */
export class Refused extends Error {}

export interface PublishPacket {
  topic: string;
  payload: Buffer | Uint8Array;
  qos: number;
  retain: boolean;
}

/** What an operator's message to a device asks for, in the permission matrix's terms. */
function actionOf(msg: Message): Action {
  if (msg.kind === 'request') {
    switch (msg.op) {
      case 'var': return 'device.variable';
      case 'call': return 'device.function';
      case 'ping':
      case 'signal': return 'device.ping';
      case 'vitals': return 'device.vitals.refresh';
      case 'reset': return 'device.edit';
    }
  }
  if (msg.kind === 'cloudEvent') return 'event.publish';
  return 'device.flash'; // otaBegin, otaChunk, otaAbort
}

function parse(ctx: BrokerContext, packet: PublishPacket): { t: ParsedTopic; msg: Message } {
  const t = parsedForDelivery(ctx, packet.topic);
  if (!t) {
    try {
      parseTopic(packet.topic); // throws the parser's own reason
    } catch (e) {
      throw new Refused(isProtocolError(e) ? e.code + ': ' + e.message : String(e));
    }
  }
  try {
    return { t: t as ParsedTopic, msg: decode(packet.payload) };
  } catch (e) {
    throw new Refused(isProtocolError(e) ? e.code + ': ' + e.message : String(e));
  }
}

/** One device message into the day's usage of its product (flushed with last_heard). */
function countUsage(ctx: BrokerContext, productId: string, deviceId: string, now: number, bytes: number, msg: Message): void {
  tally(ctx.usage, productId, now, { deviceId, bytes, dataOps: deviceMessageOps(msg) });
}

/**
 * Throws Refused, returns a promise when the decision needs I/O (storing, the
 * audit log, a device not in memory), or undefined when it is made: most
 * device messages take the synchronous path.
 */
export function authorizePublish(ctx: BrokerContext, client: WithSession, packet: PublishPacket): Promise<void> | undefined {
  const s = client.session;
  if (!s) throw new Refused('no session');
  spendPacketToken(ctx, s);
  if (packet.retain) throw new Refused('retained messages are not allowed');
  const { t, msg } = parse(ctx, packet);
  if (!kindFitsTopic(msg.kind, t.root, t.channel)) throw new Refused(msg.kind + ' does not travel on ' + packet.topic);
  if (s.kind === 'device') {
    if (t.root !== 'dev' || t.deviceId !== s.deviceId) throw new Refused('a device publishes only under its own topics');
    if (t.channel === 'evt' && t.event === CLAIM_CODE_EVENT) {
      spendEventToken(ctx, s);
      ctx.heard.set(s.deviceId, Date.now());
      return presentClaimCode(ctx, s.deviceId, msg);
    }
    if (t.channel === 'evt') {
      const bad = validateDeviceEventName(t.event);
      if (bad) throw new Refused(bad.message);
      spendEventToken(ctx, s);
      s.service.events++;
    }
    if (msg.kind === 'hello' || msg.kind === 'vitals' || msg.kind === 'error') spendReportToken(ctx, s);
    // Its will (aedes hands over the CONNECT's own packet) is the broker speaking for a device gone
    // silent, maybe long ago: not traffic it sent now, so neither heard nor counted.
    if (packet !== (client as { will?: unknown }).will) {
      const now = Date.now();
      ctx.heard.set(s.deviceId, now);
      countUsage(ctx, s.ref.product.productId, s.deviceId, now, packet.payload.length, msg);
    }
    return ingest(ctx, s, msg, () => client.connected !== false);
  }
  if (t.root !== 'cloud') throw new Refused('apps publish only to cloud/<device>/ topics');
  return authorizeAppPublish(ctx, s, t.deviceId, msg, packet);
}

/** A device the bridge does not know: 404, as for one the actor may not know of. */
const NO_SUCH_DEVICE: Verdict = { allow: false, status: 404, reason: 'no such device' };

/** An app's message to a device: decided by the policy, audited either way. */
async function authorizeAppPublish(
  ctx: BrokerContext, s: Extract<Session, { kind: 'operator' }>, deviceId: string, msg: Message, packet: PublishPacket,
): Promise<void> {
  const action = actionOf(msg);
  const ref = ctx.devices.get(deviceId) ?? (await ctx.store.deviceAccess(deviceId));
  const decision = ref
    ? decide(s.actor, action, { kind: 'device', deviceId, product: ref.product, customerId: ref.customerId })
    : NO_SUCH_DEVICE;
  await audit(ctx, s, action, 'device', deviceId, decision);
  if (!decision.allow) throw new Refused(action + ' on ' + deviceId + ': ' + decision.reason);
  if (msg.kind === 'request') packet.payload = Buffer.from(ctx.requests.forward(s.clientId, s, deviceId, msg));
  if (msg.kind === 'cloudEvent') tally(ctx.usage, ref!.product.productId, Date.now(), { dataOps: CLOUD_EVENT_OPS });
}

/** Records a decision. An app's count against its audit budget: past it, Refused ends the session (and this one is not recorded). */
function audit(ctx: BrokerContext, s: Session, action: string, resourceKind: string, resourceId: string, v: Verdict): Promise<void> {
  const r = ctx.rates.audits;
  if (s.kind === 'operator' && !take(s.audits, r, Date.now())) throw new Refused('decisions to record over ' + r.perSecond + '/s (bursts of ' + r.burst + ')');
  return ctx.store.audit(auditEntry(s.actor, action, resourceKind, resourceId, v, ctx.now()));
}

/** Every client's publish budget (ctx.rates.packets): a flood ends the session. */
function spendPacketToken(ctx: BrokerContext, s: Session): void {
  const r = ctx.rates.packets;
  if (!take(s.kind === 'device' ? s.budget.packets : s.packets, r, Date.now())) throw new Refused('publish rate over ' + r.perSecond + '/s');
}

/** The event rate per device (Particle's 1/s with bursts of 4 by default), across its sessions. */
function spendEventToken(ctx: BrokerContext, s: Extract<Session, { kind: 'device' }>): void {
  if (!takeEvent(s.budget, ctx.rates.events, Date.now())) throw new Refused('event rate over ' + ctx.rates.events.perSecond + '/s');
}

/**
 * What the bridge stores for a device (hello, vitals, error reports), per
 * device across its sessions: a device past it would fill the disk, so its
 * session ends. The agent keeps well under it (protocol LIMITS).
 */
function spendReportToken(ctx: BrokerContext, s: Extract<Session, { kind: 'device' }>): void {
  const r = ctx.rates.reports;
  if (!take(s.budget.reports, r, Date.now())) throw new Refused('hello, vitals and error reports over ' + r.perSecond + '/s (bursts of ' + r.burst + ')');
}

export interface Subscription {
  topic: string;
  qos: number;
}

/**
 * The subscription as granted (QoS at most 1), or null for SUBACK 0x80. A SUBSCRIBE: devices to their own inbox; apps to their own replies and to
 * device events (a filter naming one device is decided now; `+` per delivery,
 * in authorizeForward). Refusals, and decisions on one device, are audited.
 * Rejects with Refused, which ends the session, past the client's budgets.
 */
export async function authorizeSubscribe(ctx: BrokerContext, client: WithSession, sub: Subscription): Promise<Subscription | null> {
  const s = client.session;
  if (!s) return null;
  // Each filter is work, as a message is: a flood of them ends the session (Refused), as a flood of publishes does.
  spendPacketToken(ctx, s);
  const granted = { topic: sub.topic, qos: Math.min(sub.qos, 1) };
  const refuse = async (status: number, reason: string): Promise<null> => {
    // A refusal is stored (the audit log): a device's count against what it may make the bridge store, so it cannot fill the disk.
    if (s.kind === 'device') spendReportToken(ctx, s);
    await audit(ctx, s, 'mqtt.subscribe', 'topic', sub.topic, { allow: false, status, reason });
    return null;
  };
  if (s.kind === 'device') return s.inbox.indexOf(sub.topic) >= 0 ? granted : refuse(403, 'a device subscribes to its own inbox only');
  let f;
  try {
    f = parseFilter(sub.topic);
  } catch (e) {
    return refuse(400, isProtocolError(e) ? e.message : 'not a protocol topic filter');
  }
  if (!s.filters.has(sub.topic) && s.filters.size >= ctx.appSubscriptionsMax) return refuse(429, 'more than ' + ctx.appSubscriptionsMax + ' subscriptions in one session');
  const grant = (): Subscription => {
    s.filters.add(sub.topic);
    return granted;
  };
  if (f.root === 'app') return f.clientId === s.clientId ? grant() : refuse(403, 'the replies of another client id');
  if (f.deviceId === '+') return grant();
  const ref = ctx.devices.get(f.deviceId) ?? (await ctx.store.deviceAccess(f.deviceId));
  const v = ref ? watching(s, f.deviceId, ref) : NO_SUCH_DEVICE;
  await audit(ctx, s, 'device.events', 'device', f.deviceId, v);
  return v.allow ? grant() : null;
}

/**
 * The policy on this app seeing the device's events, remembered for the
 * session: the verdict depends only on the device's product and claiming
 * customer, so one decision serves every device of that pair (a SUBSCRIBE's
 * decision serves its deliveries too).
 */
function watching(s: Extract<Session, { kind: 'operator' }>, deviceId: string, ref: DeviceRef): Verdict {
  const v = decide(s.actor, 'device.events', { kind: 'device', deviceId, product: ref.product, customerId: ref.customerId });
  s.watch.set(watchKey(ref), v.allow);
  return v;
}

const watchKey = (ref: DeviceRef): string => ref.product.productId + '/' + (ref.customerId ?? '');

/** May this app see the device's events? Decided once per product and claiming customer. */
function mayWatch(s: Extract<Session, { kind: 'operator' }>, deviceId: string, ref: DeviceRef): boolean {
  return s.watch.get(watchKey(ref)) ?? watching(s, deviceId, ref).allow;
}

/** Synchronous, on every delivery: the packet, or null to keep it from this client. */
export function authorizeForward(ctx: BrokerContext, client: WithSession, packet: { topic: string }): { topic: string } | null {
  const s = client.session;
  if (!s) return null;
  if (s.kind === 'device') return s.inbox.indexOf(packet.topic) >= 0 ? packet : null;
  const t = parsedForDelivery(ctx, packet.topic);
  if (!t) return null; // $SYS and anything else that is not a protocol topic
  if (t.root === 'app') return t.clientId === s.clientId ? packet : null;
  if (t.root !== 'dev' || t.channel !== 'evt' || t.event === CLAIM_CODE_EVENT) return null;
  const ref = ctx.devices.get(t.deviceId);
  return ref && !heldBack(ref, t.event) && mayWatch(s, t.deviceId, ref) ? packet : null;
}

/**
 * parseTopic, remembered: a device publishes on the same few topics over and
 * over, and each is delivered to every subscriber. Bounded: cleared when full.
 */
export function parsedForDelivery(ctx: BrokerContext, topic: string): ParsedTopic | null {
  let t = ctx.topicCache.get(topic);
  if (t === undefined) {
    try {
      t = parseTopic(topic);
    } catch {
      t = null;
    }
    if (ctx.topicCache.size >= 50000) ctx.topicCache.clear();
    ctx.topicCache.set(topic, t);
  }
  return t;
}
