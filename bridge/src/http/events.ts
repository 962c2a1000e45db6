/**
 * Server-sent event streams, as Particle's: every device event (spark/status
 * included) from the broker's message bus, to each open stream whose scope
 * (all devices, one device, a product, an org) and name prefix match, if its
 * actor may watch that device. Wire format:
 *   event: <name>\ndata: {"data":...,"ttl":60,"published_at":"<ISO>","coreid":"<device id>"}\n\n
 * A comment line every keepaliveMs (Particle's clients reconnect after 15 s of silence).
 * A stream whose reader falls maxBufferedBytes behind is ended, not buffered
 * for without bound: its client reconnects, and knows it missed events.
 *
 * A stream lives no longer than what opened it, as an operator's MQTT session:
 * the broker ends it when its token is revoked or expires, or its customer or
 * API user is deleted, and a change of its user's memberships applies to the
 * next event (mqtt/broker.ts).
 */
import type { ServerResponse } from 'node:http';
import { decode, isProtocolError, parseTopic } from '@flotilla/protocol';
import { decide } from '../policy/decide.js';
import type { Memberships, ProductRef } from '../policy/types.js';
import { claimerId, type DeviceRef } from '../store/store.js';
import type { TokenHolder } from '../mqtt/session.js';
import { heldBack } from '../mqtt/quarantine.js';
import { claimedBy, inPersonalSpace } from './access.js';
import type { Logger } from '../mqtt/deps.js';

export interface StreamOptions {
  /** A comment line this often, when nothing else was sent. */
  keepaliveMs: number;
  /** Bytes written to a stream and not yet taken by its socket past which it is ended. */
  maxBufferedBytes: number;
}

/** 'all': everything the actor may watch; 'mine': that, in the actor's personal space only, and the devices a user claimed (/v1/devices/events, as GET /v1/devices). */
export type StreamScope =
  | { kind: 'all' }
  | { kind: 'mine' }
  /** productFields: opened under a product's or an org's path, it carries what their streams do. */
  | { kind: 'device'; deviceId: string; productFields?: boolean }
  | { kind: 'product'; productId: string }
  | { kind: 'org'; orgId: string };

interface Stream extends TokenHolder {
  scope: StreamScope;
  prefix: string;
  res: ServerResponse;
  /** "product/customer" → may watch (decide() remembered per stream). */
  may: Map<string, boolean>;
}

/**
 * Particle's event: the fields of every stream, and with `product`, those product and org streams add.
 * `at`: when the bridge took the event, the same on every stream that shows it.
 */
function eventLine(name: string, data: unknown, ttl: number, at: string, coreid: string, product?: { ref: DeviceRef | null; productId: string }): string {
  const e: Record<string, unknown> = { data, ttl, published_at: at, coreid };
  if (product) {
    e.userid = product.ref ? claimerId(product.ref) : null;
    e.version = product.ref?.firmwareVersion ?? null;
    e.public = false;
    e.productID = Number(product.productId);
  }
  return 'event: ' + name + '\ndata: ' + JSON.stringify(e) + '\n\n';
}

/** Product and org streams, and a device's under their paths: Particle's product streams carry userid, version, public and productID. */
const productScoped = (s: Stream): boolean => s.scope.kind === 'product' || s.scope.kind === 'org' || (s.scope.kind === 'device' && s.scope.productFields === true);

/**
 * Whether an event of `product` is in the stream's scope: from device `deviceId` claimed by
 * `ownerUserId`, or (both null) published through the API.
 */
function inScope(s: Stream, product: ProductRef, deviceId: string | null, ownerUserId: string | null): boolean {
  const sc = s.scope;
  if (sc.kind === 'device') return sc.deviceId === deviceId;
  if (sc.kind === 'product') return sc.productId === product.productId;
  if (sc.kind === 'org') return sc.orgId === product.orgId;
  return sc.kind === 'all' || inPersonalSpace(s.actor, product) || claimedBy(s.actor, ownerUserId);
}

export class EventHub {
  private readonly streams = new Set<Stream>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    /** The broker's map of devices it has seen: the product and customer of a device, synchronously. */
    private readonly devices: Map<string, DeviceRef>,
    private readonly o: StreamOptions,
    private readonly log: Logger,
  ) {
    this.timer = setInterval(() => {
      for (const s of this.streams) this.send(s, ':\n');
    }, o.keepaliveMs);
    this.timer.unref();
  }

  /** Writes to a stream, or ends it when its reader is too far behind. */
  private send(s: Stream, text: string): void {
    if (s.res.writableLength + Buffer.byteLength(text) <= this.o.maxBufferedBytes) {
      s.res.write(text);
      return;
    }
    this.streams.delete(s);
    this.log.info({ buffered: s.res.writableLength }, 'events: a stream whose reader fell behind was ended');
    // Destroyed, not ended: what it holds unsent is dropped with it.
    s.res.destroy();
  }

  /** Opens a stream on `res` for the holder of a token; it ends when the client goes, or end() ends it. */
  open(holder: TokenHolder, scope: StreamScope, prefix: string, res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.write(':ok\n\n');
    const s: Stream = { actor: holder.actor, tokenHash: holder.tokenHash, expiresAt: holder.expiresAt, scope, prefix, res, may: new Map() };
    this.streams.add(s);
    res.once('close', () => this.streams.delete(s));
  }

  /** Ends the streams `which` picks (the client sees the stream end; coming back needs a valid token); answers how many. */
  end(which: (holder: TokenHolder) => boolean): number {
    let n = 0;
    for (const s of this.streams) {
      if (!which(s)) continue;
      this.streams.delete(s);
      s.res.end();
      n++;
    }
    return n;
  }

  /** A user's memberships changed: their streams decide with the new ones from the next event. */
  refreshUser(userId: string, memberships: Memberships): void {
    for (const s of this.streams) {
      if (s.actor.kind !== 'user' || s.actor.userId !== userId) continue;
      s.actor = { kind: 'user', userId, memberships };
      s.may.clear();
    }
  }

  /** A device's product, owner or customer changed (a claim, a product moved to an org): every stream decides afresh. */
  forgetDecisions(): void {
    for (const s of this.streams) s.may.clear();
  }

  /** One message from the bus (called for every dev/+/evt/# publish); `at`: when the bridge took it, as its webhooks see it. */
  deliver(topic: string, payload: Uint8Array, at = new Date().toISOString()): void {
    if (this.streams.size === 0) return;
    let deviceId: string;
    let name: string;
    let data: unknown;
    let ttl: number;
    try {
      const t = parseTopic(topic);
      if (t.root !== 'dev' || t.channel !== 'evt') return;
      const m = decode(payload);
      if (m.kind !== 'event') return;
      deviceId = t.deviceId;
      name = t.event;
      data = m.data instanceof Uint8Array ? Buffer.from(m.data).toString('base64') : m.data;
      ttl = m.ttl;
    } catch (e) {
      if (isProtocolError(e)) return;
      throw e;
    }
    const ref = this.devices.get(deviceId);
    if (!ref || heldBack(ref, name)) return;
    let line: string | undefined;
    let productLine: string | undefined;
    for (const s of this.streams) {
      if (!name.startsWith(s.prefix)) continue;
      if (!inScope(s, ref.product, deviceId, ref.ownerUserId)) continue;
      const key = ref.product.productId + '/' + (ref.customerId ?? '');
      let ok = s.may.get(key);
      if (ok === undefined) {
        ok = decide(s.actor, 'device.events', { kind: 'device', deviceId, product: ref.product, customerId: ref.customerId }).allow;
        s.may.set(key, ok);
      }
      if (!ok) continue;
      if (productScoped(s)) this.send(s, (productLine ??= eventLine(name, data, ttl, at, deviceId, { ref, productId: ref.product.productId })));
      else this.send(s, (line ??= eventLine(name, data, ttl, at, deviceId)));
    }
  }

  /**
   * One event published through the API into `products` (one, or a user's
   * personal space): once to each stream with one of them in its scope whose
   * actor may watch that product's events. Particle marks such events with
   * coreid "api".
   */
  deliverApi(products: readonly ProductRef[], name: string, data: string | null, ttl: number, at = new Date().toISOString()): void {
    // Every name the protocol carries fits on an event: line; a bridge-made one (a webhook's response topic) that would not is dropped.
    if (/[\r\n]/.test(name)) return;
    let line: string | undefined;
    /** Product streams' lines, which name the product: one per product, whatever the number of streams. */
    const productLines = new Map<ProductRef, string>();
    for (const s of this.streams) {
      if (!name.startsWith(s.prefix)) continue;
      const product = products.find((p) => inScope(s, p, null, null) && decide(s.actor, 'device.events', { kind: 'product', product: p }).allow);
      if (!product) continue;
      if (productScoped(s)) {
        let l = productLines.get(product);
        if (l === undefined) productLines.set(product, (l = eventLine(name, data, ttl, at, 'api', { ref: null, productId: product.productId })));
        this.send(s, l);
      } else this.send(s, (line ??= eventLine(name, data, ttl, at, 'api')));
    }
  }

  close(): void {
    clearInterval(this.timer);
    for (const s of this.streams) s.res.end();
    this.streams.clear();
  }
}
