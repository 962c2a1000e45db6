/**
 * The MQTT side of the bridge: aedes with Flotilla's hooks, a frame guard in
 * front of every connection, presence (online/offline with Particle's
 * spark/status events), and revocation that cuts live sessions.
 */
import { createServer, Server, Socket } from 'node:net';
import type { EventEmitter } from 'node:events';
import { Aedes } from 'aedes';
import type { AddressInfo } from 'node:net';
import { decode, encode, isDeviceId, isReservedEventName, topics, type EventData } from '@flotilla/protocol';
import type { BrokerStore, Logger } from './deps.js';
import type { BrokerContext } from './context.js';
import { auditKey, authenticate, BAD_CREDENTIALS, ConnectLockout, NOT_AUTHORIZED, PERSISTENT_SESSION, takeOver } from './authenticate.js';
import { authorizeForward, authorizePublish, authorizeSubscribe, parsedForDelivery, Refused } from './authorize.js';
import { heldBack } from './quarantine.js';
import { DeviceSubscriptions } from './subscriptions.js';
import { boundOutbound, guardConnection } from './guard.js';
import { Window } from '../fixed-window.js';
import { logThrottle } from '../log-throttle.js';
import { full, settled, type Rate } from './budget.js';
import { EventHub, type StreamOptions } from '../http/events.js';
import { RequestRouter } from './requests.js';
import { CLOUD_EVENT_OPS, tally } from '../telemetry/data-ops.js';
import type { TokenHolder, WithSession } from './session.js';
import type { DeviceRef } from './deps.js';
import type { AuthResult, ConnectFailureLimits, Will } from './authenticate.js';
import { isClaimTopic } from './claims.js';
import { addressKey } from '../identity/address.js';
import { Admission, type AdmissionLimits, type Refusal, type Ticket } from './admission.js';
import { sha256Hex } from '../store/secrets.js';
import { StoreError } from '../store/store.js';
import { auditEntry } from '../identity/actor.js';
import type { Actor } from '../policy/types.js';

/** Whoever a refused CONNECT claimed to be: no credential held. */
const NO_CREDENTIALS: Actor = { kind: 'invalid', reason: 'unknown' };

export interface BrokerOptions {
  store: BrokerStore;
  log: Logger;
  /** Largest MQTT packet accepted, bytes: an OTA chunk at its maximum and then some. */
  maxPacket: number;
  /** A client that has not sent CONNECT within this many ms is dropped. */
  connectTimeoutMs: number;
  /**
   * Bytes a connection may hold unsent (beyond the kernel's buffers) before it is cut: a client that stops
   * reading loses its session instead of stalling delivery to everyone (guard.ts, boundOutbound).
   */
  maxBuffered: number;
  /**
   * The longest keepalive kept (seconds): a CONNECT asking for more, or for
   * none (0), gets this one, as AWS IoT does; the client is cut after 1.5 ×
   * that without a packet. (Refusing is no answer in MQTT 3.1.1: aedes' CONNACK
   * code 6 is undefined there.)
   */
  keepaliveLimit: number;
  /** How long an MQTT app's request waits for its reply. */
  requestTimeoutMs: number;
  /** Publishes per second and burst per client; more ends the session (an OTA's acks run at chunk rate). */
  publishRate: Rate;
  /** Events per second and burst per device. */
  eventRate: Rate;
  /** Hello, vitals and error reports stored per device: per second and burst; more ends the session. */
  reportRate: Rate;
  /** Audited decisions per app session (each one an audit row): per second and burst; more ends the session. */
  auditRate: Rate;
  /** Subscriptions an app's session holds at once; past them its SUBSCRIBE is refused (0x80). */
  appSubscriptionsMax: number;
  /** App sessions one account (a user, customer or API user, whichever of its tokens) holds at once; past them CONNECT is refused (5). */
  appSessionsMax: number;
  /** Wrong secrets or tokens that, within a lock's time, lock an address, or a client id at an address, out (authenticate.ts). */
  connectFailures: ConnectFailureLimits;
  /** Connections taken at once, in all and per address before CONNECT (admission.ts). */
  admission: AdmissionLimits;
  /**
   * Refused CONNECTs written to the audit log per address (an IPv6 host's /64) and window. Refusals
   * that no lock-out counts (a malformed client id, a persistent session, a bad will) cost nothing to
   * send: past the budget they are refused all the same, unaudited, and logged as a count.
   */
  refusalAudits: { limit: number; windowMs: number };
  /** How often last_heard is written (ms, default 5000). */
  heardFlushMs?: number;
  /** How often sessions and event streams whose token has expired are ended, and offline devices' refilled budgets dropped (ms, default 5000). */
  expirySweepMs?: number;
  now?: () => Date;
  // --- TLS device identity (issue 4; bridge/src/identity/peer.ts) ---
  /**
   * For a connection that presented a client certificate: the verdict on it
   * (and the session). Null: no certificate, the secret or token decides.
   */
  certificateAuth?: (ctx: BrokerContext, socket: Socket, clientId: string, username: string | undefined, will: Will | null) => Promise<AuthResult> | null;
  // --- end TLS device identity ---
}

export interface Broker {
  aedes: Aedes;
  context: BrokerContext;
  /** Starts a TCP listener; resolves with its port. */
  listen(port: number, host: string): Promise<number>;
  /**
   * Counts a new connection against the admission limits before anything is spent on it (a TLS or
   * WebSocket handshake): its ticket, released when `raw` closes; null when refused (`raw` is destroyed).
   */
  admit(raw: Socket): Ticket | null;
  /**
   * Hands one connection's MQTT stream to aedes through the frame guard: a plain TCP socket (admitted
   * here), or a TLS socket or WebSocket stream with the ticket its listener's `admit` gave (listeners.ts).
   */
  accept(socket: Socket, ticket?: Ticket): void;
  /** Ends every MQTT session that authenticated with this token (after the store revoked it). */
  cutToken(token: string): number;
  /** The same for tokens known by their SHA-256 (hex), as the store revokes them. */
  cutTokenHashes(hashes: readonly string[]): number;
  /** Calls `listener` with every device event on the bus (topic, payload as published). */
  tap(listener: (topic: string, payload: Buffer, at: string) => void): void;
  /** An event hub fed with every device event on the bus, for the HTTP API's streams. */
  events(o: StreamOptions): EventHub;
  /** Writes what is held in memory (last_heard, usage counts) now; close() does it too. */
  flush(): Promise<void>;
  /** A user's memberships changed: their live sessions decide with the new ones from now on. */
  refreshUser(userId: string): Promise<void>;
  /** A device changed product or customer: deliveries about it are decided afresh. */
  refreshDevice(deviceId: string): Promise<void>;
  /** Ends every MQTT session of a customer or API user (deleted, or its access ended). */
  cutSubject(kind: 'customer' | 'apiUser', id: string): number;
  /** Ends the device's connection (it was removed from its product); false when it was not connected. */
  dropDevice(deviceId: string): boolean;
  /**
   * Sends a cloud event to every connected device of the product that
   * subscribed to a prefix of `name`; answers how many it went to.
   */
  sendEvent(productId: string, name: string, data: EventData): number;
  close(): Promise<void>;
}

export async function createBroker(o: BrokerOptions): Promise<Broker> {
  const servers: Server[] = [];
  const sockets = new Set<Socket>();
  let aedes: Aedes;
  const context: BrokerContext = {
    store: o.store,
    log: o.log,
    devices: new Map<string, DeviceRef>(),
    rates: { events: o.eventRate, packets: o.publishRate, reports: o.reportRate, audits: o.auditRate },
    appSubscriptionsMax: o.appSubscriptionsMax,
    budgets: new Map(),
    auditBudgets: new Map(),
    heard: new Map<string, number>(),
    subscriptions: new DeviceSubscriptions(),
    rolledBack: new Map(),
    usage: new Map(),
    topicCache: new Map(),
    requests: new RequestRouter((topic, payload, qos) => context.publish(topic, payload, qos), o.requestTimeoutMs),
    now: o.now ?? (() => new Date()),
    ota: null,
    publish(topic, payload, qos) {
      aedes.publish({ cmd: 'publish', topic, payload: Buffer.from(payload), qos, retain: false, dup: false }, () => {});
    },
  };

  const lockout = new ConnectLockout(o.connectFailures);
  /** Accounts (auditKey) → the clients of their app sessions, registered or about to be. */
  const appSessions = new Map<string, Set<object>>();
  const refusalAudits = new Window(o.refusalAudits.windowMs, Date.now());
  const admission = new Admission(o.admission);
  const tickets = new WeakMap<object, Ticket>();
  // Refusals and connection errors are logged at most once per kind every 10 s, with how many there were since: a flood must not become one of log lines.
  const throttled = logThrottle();
  const refused = (why: Refusal, remote: string | undefined): void =>
    throttled('refused ' + why, (count) =>
      o.log.warn({ remote, refused: count, open: admission.size, limits: o.admission }, why === 'full' ? 'mqtt: connections refused: the broker holds its maximum' : 'mqtt: connections refused: too many from one address before CONNECT'),
    );
  // Clients that sent an empty client id: aedes makes one up, but MQTT 3.1.1 cannot tell the client
  // which, and an app's id is its reply address (app/<clientId>/reply), so judge them by the empty id.
  const idless = new WeakSet<object>();

  aedes = await Aedes.createBroker({
    connectTimeout: o.connectTimeoutMs,
    preConnect(client, packet, done) {
      if (!packet.clientId) idless.add(client);
      // Clamped, not refused: MQTT 3.1.1 has no refusal code for it (aedes' own keepaliveLimit, which refused, is left unset).
      if (!packet.keepalive || packet.keepalive > o.keepaliveLimit) packet.keepalive = o.keepaliveLimit;
      done(null, true);
    },
    // Device ids are 24 characters, app client ids up to 64: aedes' default of 23 would refuse both.
    maxClientsIdLength: 64,
    authenticate(client, username, password, done) {
      // aedes has stored the CONNECT's will on the client by now: judge it here, where the client can be told.
      const will = (client as unknown as { _will?: { topic: string; payload: Buffer; retain?: boolean; qos?: number } })._will ?? null;
      // TLS device identity: a client certificate, when one was presented, decides (identity/peer.ts).
      const socket = (client as unknown as { conn: Socket }).conn;
      const address = socket.remoteAddress ?? '';
      const clean = (client as unknown as { clean?: boolean }).clean !== false;
      const id = idless.has(client) ? '' : client.id;
      // Either the refusal of a locked-out client, or the attempt to end with the outcome (every path ends it).
      // Counted by host: an IPv6 host's /64, not each of its addresses.
      const from = addressKey(address);
      const attempt = lockout.begin(from, id);
      const [locked, settle] = typeof attempt === 'function' ? [null, attempt] : [attempt, null];
      const checked: Promise<AuthResult> = locked
        ? Promise.resolve(locked)
        : !clean
          ? Promise.resolve(PERSISTENT_SESSION)
          : (o.certificateAuth?.(context, socket, id, username, will) ?? authenticate(context, id, username, password, will)).then((r) =>
              takeOver(clients(aedes)[id]?.session, r),
            );
      checked.then(
        (r) => {
          const locks = settle ? settle(r) : null;
          if (!r.ok) {
            // Refusals while locked out are not written: the one that locked is, and says so.
            if (locked) unaudited(address);
            else refuseConnect(id, address, from, r, locks);
            const err = Object.assign(new Error(r.reason), { returnCode: r.code });
            return done(err as never, false);
          }
          const session = r.session;
          // A link that closed while it was checked: aedes registers nothing for it, and its close has fired.
          const gone = (socket as Partial<Socket>).destroyed === true;
          if (session.kind === 'operator' && !gone) {
            // One account's app sessions (with any of its tokens) take at most appSessionsMax of the broker's
            // connections; a reconnect under a client id it holds replaces that session and is not counted twice.
            const key = auditKey(session.actor);
            const held = appSessions.get(key) ?? new Set<object>();
            const replaced = clients(aedes)[id];
            if (held.size - (replaced && held.has(replaced) ? 1 : 0) >= o.appSessionsMax) {
              const full = { ok: false, code: NOT_AUTHORIZED, reason: 'the account holds its maximum of ' + o.appSessionsMax + ' MQTT sessions' } as const;
              refuseConnect(id, address, from, full, null, session.actor);
              return done(Object.assign(new Error(full.reason), { returnCode: full.code }) as never, false);
            }
            appSessions.set(key, held.add(client));
            socket.once('close', () => {
              held.delete(client);
              if (held.size === 0 && appSessions.get(key) === held) appSessions.delete(key);
            });
          }
          (client as unknown as WithSession).session = session;
          if (session.kind === 'device' && !gone) {
            // Until aedes registers it: a connection that closes first (mid-authentication) leaves no takeover behind.
            takingOver.set(session.deviceId, client);
            socket.once('close', () => {
              if (takingOver.get(session.deviceId) === client) takingOver.delete(session.deviceId);
            });
          }
          done(null, true);
        },
        (e) => {
          settle?.(null);
          done(e as never, false);
        },
      );
    },
    authorizePublish(client, packet, done) {
      if (!client) return done(null); // the bridge's own publishes
      let pending: Promise<void> | undefined;
      try {
        pending = authorizePublish(context, client as unknown as WithSession, packet as never);
      } catch (e) {
        return refusePublish(client.id, packet.topic, e as Error, done);
      }
      // No closure on the common path: most messages are decided without I/O.
      if (!pending) return done(null);
      pending.then(
        () => done(null),
        (e: Error) => refusePublish(client.id, packet.topic, e, done),
      );
    },
    authorizeSubscribe(client, sub, done) {
      authorizeSubscribe(context, client as unknown as WithSession, sub).then(
        (granted) => {
          // Any token may ask for what it may not have, as fast as it reconnects: logged at most once per 10 s, with a count (the audit log has each).
          if (!granted) throttled('subscription refused', (count) => o.log.info({ clientId: client.id, topic: sub.topic, refused: count }, 'mqtt: subscription refused'));
          done(null, granted as never);
        },
        (e: Error) => {
          // Past its budgets the session ends (aedes closes a client whose SUBSCRIBE fails); anything else refuses the one filter.
          if (!(e instanceof Refused)) return done(null, null as never);
          throttled('subscribe budget', (count) => o.log.warn({ clientId: client.id, topic: sub.topic, reason: e.message, ended: count }, 'mqtt: subscribing past the budget, session ended'));
          done(e, null as never);
        },
      );
    },
    authorizeForward(client, packet) {
      return authorizeForward(context, client as unknown as WithSession, packet) ? packet : null;
    },
  });

  // last_heard, in one transaction every few seconds.
  async function flushHeard(): Promise<void> {
    if (context.usage.size > 0) {
      const rows = [...context.usage.values()].map((u) => ({ ...u, devices: [...u.devices] }));
      context.usage.clear();
      await o.store.recordUsage(rows).catch((e) => o.log.error({ err: e }, 'store: usage not saved'));
    }
    if (context.heard.size === 0) return;
    const batch = [...context.heard].map(([id, at]) => [id, new Date(at)] as const);
    context.heard.clear();
    await o.store.touchMany(batch).catch((e) => o.log.error({ err: e }, 'store: last heard not saved'));
  }
  const heardTimer = setInterval(() => void flushHeard(), o.heardFlushMs ?? 5000);
  heardTimer.unref();
  const expiryTimer = setInterval(() => {
    // A session or an event stream ends with its token: expiry is checked at connect, then here.
    const now = (o.now ? o.now() : new Date()).getTime();
    cut((h) => h.expiresAt !== null && h.expiresAt <= now);
    // An offline device's budget, once refilled, is what a fresh one would be.
    const at = Date.now();
    for (const [id, b] of context.budgets) if (!clients(aedes)[id] && settled(b, context.rates, at)) context.budgets.delete(id);
    if (context.auditBudgets.size > 0) {
      const open = new Set<string>();
      for (const c of Object.values(clients(aedes))) if (c.session?.kind === 'operator') open.add(auditKey(c.session.actor));
      for (const [key, b] of context.auditBudgets) if (!open.has(key) && full(b, context.rates.audits, at)) context.auditBudgets.delete(key);
    }
  }, o.expirySweepMs ?? 5000);
  expiryTimer.unref();

  /**
   * A refused CONNECT, logged and audited within the budget of its address (`from`; the one that starts
   * a lock always), else only counted in the log.
   */
  function refuseConnect(clientId: string, address: string, from: string, r: Extract<AuthResult, { ok: false }>, locks: string | null, actor?: Actor): void {
    if (!locks && !refusalAudits.take(from, o.refusalAudits.limit, Date.now()).ok) return unaudited(address);
    o.log.info({ clientId, remote: address, reason: r.reason }, 'mqtt: connect refused');
    auditRefusal(clientId, address, r, locks, actor);
  }

  function unaudited(address: string): void {
    throttled('refused unaudited', (count) => o.log.info({ remote: address, count }, 'mqtt: connect refused (past the audit budget or locked out: not audited)'));
  }

  /** A refused CONNECT in the audit log: who it claimed to be, from where, why, and the lock-out it started. */
  function auditRefusal(clientId: string, address: string, r: Extract<AuthResult, { ok: false }>, locks: string | null, actor: Actor = NO_CREDENTIALS): void {
    if (locks) o.log.warn({ clientId, remote: address }, 'mqtt: ' + locks);
    const reason = r.reason + (address ? ' (from ' + address + ')' : '') + (locks ? '; ' + locks : '');
    const verdict = { allow: false, status: r.code === BAD_CREDENTIALS ? 401 : 403, reason } as const;
    o.store
      .audit(auditEntry(actor, 'mqtt.connect', isDeviceId(clientId) ? 'device' : 'client', clientId, verdict, context.now()))
      .catch((e: unknown) => o.log.error({ err: e }, 'store: audit not saved'));
  }

  function refusePublish(clientId: string, topic: string, e: Error, done: (err: Error) => void): void {
    // Once every 10 s with how many, and the last one's reason: a client that reconnects to publish what it may not wrote a
    // line each time. One key, not one per reason: a reason names the client's own topic, and keys it chose would crowd out the rest.
    throttled('publish refused', (count) => o.log.info({ clientId, topic, reason: e.message, refused: count }, 'mqtt: publish refused'));
    done(e);
  }

  const hubs: EventHub[] = [];

  /** A cloud event to every connected device of the product subscribed to a prefix of `name`; how many it went to. */
  function toDevices(productId: string, name: string, data: EventData | (() => EventData)): number {
    let n = 0;
    let payload: Uint8Array | null = null;
    for (const deviceId of context.subscriptions.matching(productId, name)) {
      // Still of the product (it may have moved since its hello).
      if (context.devices.get(deviceId)?.product.productId !== productId) continue;
      payload ??= encode('cloudEvent', { name, data: typeof data === 'function' ? data() : data });
      context.publish(topics.cloud.event(deviceId), payload, 1);
      n++;
    }
    if (n > 0) tally(context.usage, productId, Date.now(), { dataOps: n * CLOUD_EVENT_OPS });
    return n;
  }

  // Devices talk to each other as on Particle: an event a device publishes reaches the subscriptions of its
  // product's devices, its own too. Not the cloud's own events (spark/...), which no device publishes, and
  // not a quarantined device's.
  // Only the product's subscribed devices are looked at, and the event is decoded only for one that matches.
  aedes.subscribe(topics.filter.deviceEvents(), (packet, cb) => {
    cb();
    // The claim code's event is spark/device/claim/code: a reserved name, never relayed.
    const t = parsedForDelivery(context, packet.topic);
    if (!t || t.root !== 'dev' || t.channel !== 'evt' || isReservedEventName(t.event)) return;
    const ref = context.devices.get(t.deviceId);
    if (!ref || heldBack(ref, t.event) || !context.subscriptions.anyIn(ref.product.productId)) return;
    try {
      toDevices(ref.product.productId, t.event, () => {
        const m = decode(packet.payload as Buffer);
        if (m.kind !== 'event') throw new Error('not an event');
        return m.data;
      });
    } catch {
      // authorizePublish let only valid events onto the bus: nothing to relay otherwise.
    }
  }, () => {});

  /**
   * When the bridge took each event off the bus: the streams and the webhooks each subscribe, and the
   * same packet reaches both, so both show the one time (Particle's published_at), not a clock each.
   */
  const taken = new WeakMap<object, string>();
  function takenAt(packet: object): string {
    let at = taken.get(packet);
    if (at === undefined) taken.set(packet, (at = new Date().toISOString()));
    return at;
  }

  /** Devices authenticated on a new connection that aedes has not registered yet → that connection's client. */
  const takingOver = new Map<string, object>();

  // Why a connection ended badly (a malformed packet, no CONNECT in time, a keepalive missed, a
  // broken link): what an operator asks first about a device that keeps dropping. Refusals by the
  // hooks are logged where they are decided.
  const failed = (stage: 'session' | 'connection') => (client: { id?: string; conn?: object } | null, err: Error & { code?: string }) => {
    if (err instanceof Refused) return;
    const kind = err.code ?? err.message;
    throttled(stage + ' ' + kind, (count) =>
      o.log[err.code && BROKEN_LINK.has(err.code) ? 'debug' : 'info'](
        { clientId: client?.id || undefined, remote: (client?.conn as Partial<Socket> | undefined)?.remoteAddress, err: err.message, count },
        stage === 'session' ? 'mqtt: session ended by an error' : 'mqtt: connection dropped before its session began',
      ),
    );
  };
  aedes.on('clientError', failed('session'));
  aedes.on('connectionError', failed('connection'));

  // An app's filters, as it holds them: one it drops no longer counts against appSubscriptionsMax.
  aedes.on('unsubscribe', (unsubscribed, client) => {
    const s = (client as unknown as WithSession | null)?.session;
    if (s?.kind === 'operator') for (const t of unsubscribed) s.filters.delete(t);
  });

  // Presence: a device is online while a session of it is connected here.
  aedes.on('client', (client) => {
    tickets.get((client as unknown as { conn: object }).conn)?.accepted();
    const s = (client as unknown as WithSession).session;
    if (s?.kind !== 'device') return;
    takingOver.delete(s.deviceId);
    context.devices.set(s.deviceId, s.ref);
    // The socket's (a WebSocket stream is given its request's: listeners.ts); an IPv4 client on a dual-stack listener without the ::ffff: prefix.
    const ip = (client.conn as Partial<Socket> | undefined)?.remoteAddress?.replace(/^::ffff:(?=\d+\.)/, '') ?? null;
    presence(s.deviceId, true, ip);
  });
  aedes.on('clientDisconnect', (client) => {
    const s = (client as unknown as WithSession).session;
    if (s?.kind === 'operator') context.requests.dropSession(s);
    if (s?.kind !== 'device') return;
    // A newer connection of the same device replaced this one: it is still online.
    const current = clients(aedes)[s.deviceId];
    if (current && current !== (client as unknown)) return;
    // A new session of this device is replacing this one (aedes closes the old one
    // before it registers the new): no offline, unless the new one never arrives.
    if (takingOver.has(s.deviceId)) {
      setTimeout(() => {
        if (!clients(aedes)[s.deviceId]) {
          takingOver.delete(s.deviceId);
          offline(s.deviceId);
        }
      }, 2000).unref();
      return;
    }
    offline(s.deviceId);
  });

  /** A device's last session ended: what it subscribed to goes, and it is offline. */
  function offline(deviceId: string): void {
    // The device stays in context.devices: its offline event (and any later one about it)
    // is delivered asynchronously, and delivery decides from that map.
    context.subscriptions.delete(deviceId);
    context.rolledBack.delete(deviceId);
    presence(deviceId, false);
  }

  function presence(deviceId: string, online: boolean, ip: string | null = null): void {
    if (!online) context.ota?.offline(deviceId);
    // Throttled: on a full disk every reconnect of every device fails it (hundreds a second).
    o.store.setOnline(deviceId, online, context.now(), ip).catch((e) => {
      // A device removed while connected: its session ends after its row went, and there is nothing left to mark.
      if (!online && e instanceof StoreError && e.code === 'not_found') return;
      throttled('setOnline', (count) => o.log.error({ err: e, deviceId, count }, 'store: setOnline failed'));
    });
    // Particle's special event, to whoever may watch the device's events.
    context.publish(topics.device.event(deviceId, 'spark/status'), encode('event', { data: online ? 'online' : 'offline', ttl: 60 }), 0);
  }

  function admit(raw: Socket): Ticket | null {
    const ticket = admission.admit(raw.remoteAddress);
    if (typeof ticket === 'string') {
      refused(ticket, raw.remoteAddress);
      raw.destroy();
      return null;
    }
    raw.once('close', () => ticket.release());
    return ticket;
  }

  function accept(socket: Socket, admitted?: Ticket): void {
    const ticket = admitted ?? admit(socket);
    if (!ticket) return;
    tickets.set(socket, ticket);
    sockets.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      // The stream over a raw socket may close first (a WebSocket's close handshake).
      ticket.release();
    });
    guardConnection(socket, o.maxPacket, (verdict) =>
      throttled('guard ' + verdict, (count) => o.log.info({ remote: socket.remoteAddress, verdict, count }, 'mqtt: connection refused by the frame guard')),
    );
    boundOutbound(socket, o.maxBuffered, () =>
      throttled('slow reader', (count) => o.log.warn({ remote: socket.remoteAddress, maxBuffered: o.maxBuffered, count }, 'mqtt: connection cut: it stopped reading (unsent bytes past maxBuffered)')),
    );
    const client = aedes.handle(socket as never) as unknown as { _parser: EventEmitter };
    // Before aedes sees each packet (its SUBACK says the QoS asked for, not the one authorizeSubscribe grants).
    client._parser.prependListener('packet', askNoMoreThanGranted);
  }

  /** Ends the operator sessions and the HTTP event streams `which` picks; answers how many. */
  function cut(which: (holder: TokenHolder) => boolean): number {
    let n = 0;
    for (const c of Object.values(clients(aedes))) {
      if (c.session?.kind === 'operator' && which(c.session)) {
        c.close();
        n++;
      }
    }
    for (const h of hubs) n += h.end(which);
    return n;
  }

  /** Ends everything opened with one of these tokens (SHA-256 hex). */
  function cutTokenHashes(hashes: readonly string[]): number {
    const set = new Set(hashes);
    return cut((h) => set.has(h.tokenHash));
  }

  return {
    aedes,
    context,
    admit,
    accept,
    async listen(port, host) {
      const server = createServer({ noDelay: true }, accept);
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => resolve());
      });
      return (server.address() as AddressInfo).port;
    },
    cutToken(token) {
      return cutTokenHashes([sha256Hex(token)]);
    },
    cutTokenHashes,
    flush: flushHeard,
    tap(listener) {
      aedes.subscribe(topics.filter.deviceEvents(), (packet, cb) => {
        if (isClaimTopic(packet.topic)) return cb();
        listener(packet.topic, packet.payload as Buffer, takenAt(packet));
        cb();
      }, () => {});
    },
    events(streams) {
      const hub = new EventHub(context.devices, streams, o.log);
      aedes.subscribe(topics.filter.deviceEvents(), (packet, cb) => {
        if (isClaimTopic(packet.topic)) return cb();
        hub.deliver(packet.topic, packet.payload as Buffer, takenAt(packet));
        cb();
      }, () => {});
      hubs.push(hub);
      return hub;
    },
    async refreshUser(userId) {
      const memberships = await o.store.memberships(userId);
      for (const c of Object.values(clients(aedes))) {
        const s = c.session;
        if (s?.kind === 'operator' && s.actor.kind === 'user' && s.actor.userId === userId) {
          s.actor = { kind: 'user', userId, memberships };
          s.watch.clear();
        }
      }
      for (const h of hubs) h.refreshUser(userId, memberships);
    },
    async refreshDevice(deviceId) {
      const ref = await o.store.deviceAccess(deviceId);
      if (ref && context.devices.has(deviceId)) context.devices.set(deviceId, ref);
      for (const c of Object.values(clients(aedes))) if (c.session?.kind === 'operator') c.session.watch.clear();
      for (const h of hubs) h.forgetDecisions();
    },
    cutSubject(kind, id) {
      return cut(({ actor: a }) => (kind === 'customer' && a.kind === 'customer' && a.customerId === id) || (kind === 'apiUser' && a.kind === 'apiUser' && a.apiUserId === id));
    },
    dropDevice(deviceId) {
      const c = clients(aedes)[deviceId];
      if (!c || c.session?.kind !== 'device') return false;
      c.close();
      return true;
    },
    sendEvent: toDevices,
    async close() {
      clearInterval(heardTimer);
      clearInterval(expiryTimer);
      for (const h of hubs) h.close();
      context.requests.close();
      for (const s of servers) s.close();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await flushHeard();
    },
  };
}

/** A link that broke under the session (a device's network, not the bridge): routine in a fleet, logged at debug. */
const BROKEN_LINK = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH']);

/**
 * Messages travel at QoS 0 or 1 here (no QoS 2 handshake is kept): a filter
 * asked for at 2 is granted 1 [MQTT-3.9.3-1], and the SUBACK must say so.
 */
function askNoMoreThanGranted(packet: { cmd: string; subscriptions?: { qos: number }[] }): void {
  if (packet.cmd !== 'subscribe' || !packet.subscriptions) return;
  for (const s of packet.subscriptions) if (s.qos > 1) s.qos = 1;
}

/** aedes' connected clients by id (present at runtime, missing from its type definitions). */
function clients(aedes: Aedes): Record<string, WithSession & { close(): void }> {
  return (aedes as unknown as { clients: Record<string, WithSession & { close(): void }> }).clients;
}
