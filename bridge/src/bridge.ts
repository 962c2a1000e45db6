/**
 * The bridge's composition root: createBridge(options) opens the store,
 * starts the MQTT broker (and, with issue 5, the HTTP API) and returns
 * { close() }. Every setting is in defaultOptions below; main.ts maps flags
 * and environment variables onto it.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomWord } from './store/secrets.js';
import { holdDataDir, ownerOnly } from './data-dir.js';
import pino from 'pino';
import { eventNameProblem, LIMITS } from '@flotilla/protocol';
import { createBroker, type Broker, type BrokerOptions } from './mqtt/broker.js';
import { connectionsFromFileLimit } from './mqtt/admission.js';
import type { WithSession } from './mqtt/session.js';
import { defaultRateLimits, RateLimiter, type RateLimits } from './http/ratelimit.js';
import { fdLogOutput, type LogOutput } from './log-output.js';
import { defaultRetention, startRetention, type RetentionOptions } from './telemetry/retention.js';
import { createWebhooks, defaultWebhookOptions, type WebhookOptions, type Webhooks } from './integrations/webhooks.js';
import { listenHttp, type HttpListener, type HttpOptions } from './http/server.js';
import type { Store } from './store/store.js';
import { openSqliteStore } from './store/sqlite/index.js';
import { openCa, type CertificateAuthority } from './identity/ca.js';
import { certificateAuth } from './identity/peer.js';
import { listenMqtts, listenWebSocket, type Listener, type TlsSetup } from './mqtt/listeners.js';
import { special } from './mqtt/ingest.js';
import { defaultOtaOptions, OtaManager, type OtaOptions } from './ota/manager.js';

export interface BridgeOptions {
  /** Where the database (flotilla.db) and uploaded firmware live. */
  dataDir: string;
  /** Address every listener binds to. */
  host: string;
  /** The HTTP API; 0 picks a free port, null turns it off. */
  httpPort: number | null;
  /** How long the HTTP API waits for a device to answer a variable read or function call (then 408). */
  callTimeoutMs: number;
  /** The HTTP listener's bounds (http/server.ts): a request's headers, and the whole request, must arrive within these. */
  http: Pick<HttpOptions, 'requestTimeoutMs' | 'headersTimeoutMs' | 'maxConnections' | 'maxConnectionsPerAddress' | 'stalledMs' | 'trustProxy'>;
  /** Event streams send a keepalive this often (Particle's clients reconnect after 15 s of silence). */
  sseKeepaliveMs: number;
  /**
   * An event stream whose reader falls this far behind (bytes written but not
   * yet taken by its socket) is ended: the client reconnects and knows it
   * missed events, and the bridge's memory stays bounded.
   */
  sseMaxBufferedBytes: number;
  /** Whether anyone may create an account with POST /v1/users; off by default: a self-hosted bridge is private. */
  signup: boolean;
  /** MQTT over TCP; 0 picks a free port. */
  mqttPort: number;
  // --- TLS and WebSocket listeners (issue 4): for each port, 0 picks a free one, null (or -1) turns it off. ---
  /** MQTT over TLS; devices authenticate with a certificate from their product's CA, or with their secret. */
  mqttsPort: number | null;
  /** MQTT over WebSocket (path /mqtt, subprotocol mqtt), without TLS: for a TLS-terminating proxy or loopback. */
  wsPort: number | null;
  /** MQTT over secure WebSocket, same TLS context and certificate rules as mqtts. */
  wssPort: number | null;
  /**
   * The server certificate and key (PEM files) for mqtts and wss. Unset: a
   * certificate issued by the bridge's own CA (<dataDir>/tls/bridge-ca.crt,
   * which devices pin), made on first start and renewed near its end.
   */
  tlsCertFile: string | undefined;
  tlsKeyFile: string | undefined;
  // --- end TLS and WebSocket listeners ---
  /** pino level: fatal, error, warn, info, debug, trace, silent. */
  logLevel: string;
  /** Where log lines (JSON, one per line) go; unset: standard output, given up once it is closed. */
  logOutput: LogOutput | undefined;
  /** The first owner, created when the database has no user; a random password is generated and printed once when unset. */
  ownerUsername: string;
  ownerPassword: string | undefined;
  /** Limits of the HTTP API (Particle's: 10,000 requests per 5 minutes per token, 100 logins per 5 minutes per address, ...). */
  rateLimits: RateLimits;
  /** Webhook delivery: attempts, backoff, time limit, when to disable (integrations/webhooks.ts). */
  webhooks: Pick<WebhookOptions, 'attempts' | 'backoffMs' | 'timeoutMs' | 'disableAfter' | 'concurrency' | 'productConcurrency' | 'queueLimit' | 'productQueueLimit' | 'allowTargets' | 'drainMs'>;
  /** OTA delivery: chunk size, window, timeouts and retry bounds, documented where they are read (ota/manager.ts). */
  ota: OtaOptions;
  /** How long vitals history, error reports and the audit log are kept (telemetry/retention.ts). */
  retention: RetentionOptions;
  /** The broker's limits, documented where the broker reads them (BrokerOptions). */
  mqtt: Pick<BrokerOptions, 'maxPacket' | 'maxBuffered' | 'connectTimeoutMs' | 'keepaliveLimit' | 'requestTimeoutMs' | 'publishRate' | 'eventRate' | 'reportRate' | 'auditRate' | 'appSubscriptionsMax' | 'appSessionsMax' | 'connectFailures' | 'admission' | 'refusalAudits' | 'expirySweepMs'>;
}

export const defaultOptions: BridgeOptions = {
  dataDir: './data',
  // Loopback unless told otherwise: a fresh bridge is not on the network by accident.
  host: '127.0.0.1',
  mqttPort: 1883,
  httpPort: 8080,
  callTimeoutMs: 10000,
  // Node's defaults (300 s and 60 s) leave a slow client room to hold sockets open.
  // 1,000 connections at once: operators, their tools and event streams (within the descriptors the MQTT admission keeps back).
  // No proxy trusted: X-Forwarded-For is anyone's to send.
  http: { requestTimeoutMs: 30000, headersTimeoutMs: 15000, maxConnections: 1000, maxConnectionsPerAddress: 250, stalledMs: 60000, trustProxy: [] },
  sseKeepaliveMs: 9000,
  // About 250 events of 1 KB: a reader stalled for seconds, not a slow link.
  sseMaxBufferedBytes: 256 * 1024,
  signup: false,
  mqttsPort: 8883,
  wsPort: null,
  wssPort: null,
  tlsCertFile: undefined,
  tlsKeyFile: undefined,
  logLevel: 'info',
  logOutput: undefined,
  ownerUsername: 'owner',
  ownerPassword: undefined,
  webhooks: defaultWebhookOptions,
  rateLimits: defaultRateLimits,
  ota: defaultOtaOptions,
  // Vitals history 30 days, error reports 90, the audit log a year; swept hourly.
  retention: defaultRetention,
  mqtt: {
    maxPacket: LIMITS.messageMaxBytes + 1024,
    // 1 MB unsent (about a thousand 1 KB events) beyond the kernel's buffers: a reader stalled for seconds, not a
    // slow link (an event stream's bound is a quarter of it: an MQTT app is more often a backend taking a fleet).
    maxBuffered: 1024 * 1024,
    connectTimeoutMs: 10000,
    keepaliveLimit: 1200,
    requestTimeoutMs: 60000,
    publishRate: { perSecond: 1000, burst: 2000 },
    eventRate: { perSecond: LIMITS.publishPerSecond, burst: LIMITS.publishBurst },
    reportRate: { perSecond: LIMITS.reportPerSecond, burst: LIMITS.reportBurst },
    // An app's audited decisions: a thousand at once (subscribing to as many devices one by one), 50 a second after;
    // a session refused subscription after subscription, or calls, cannot fill the audit log at packet rate.
    auditRate: { perSecond: 50, burst: 1000 },
    // Subscriptions per app session: each costs memory in aedes' topic tree, and `+` covers any number of devices.
    appSubscriptionsMax: 1000,
    // App sessions per account: a backend's few, a dashboard's per tab; not every connection the broker has
    // (one viewer's token took them all, and devices were refused).
    appSessionsMax: 100,
    // Ten wrong secrets within 5 minutes lock that device id out at that address for 5 minutes (a misprovisioned
    // device stops costing a hash per retry); a hundred from one address, whatever the ids, lock the address.
    connectFailures: { perClient: { limit: 10, lockMs: 5 * 60000 }, perAddress: { limit: 100, lockMs: 5 * 60000 } },
    // Connections at once: what the open-file limit leaves after a reserve (null where it cannot be read). From one
    // address, a thousand not yet past CONNECT: a fleet behind one NAT reconnecting at once, not a flood of idle sockets.
    admission: { maxConnections: connectionsFromFileLimit(), maxPendingPerAddress: 1000 },
    // Refused CONNECTs audited per address: a hundred per 5 minutes, as the HTTP API's refusals of callers with no credentials.
    refusalAudits: { limit: 100, windowMs: 5 * 60000 },
    // An operator's MQTT session or event stream outlives its token's expiry by at most this.
    expirySweepMs: 5000,
  },
};

export interface Bridge {
  store: Store;
  broker: Broker;
  webhooks: Webhooks;
  ota: OtaManager;
  /** Ports actually bound (useful with port 0); null for a listener that is off. */
  ports: { http: number | null; mqtt: number; mqtts: number | null; ws: number | null; wss: number | null };
  /** Device certificates: product CAs, issuing, revocation (files under <dataDir>/tls/). */
  identity: CertificateAuthority;
  /** Set when this start created the first owner with a generated password. */
  generatedOwnerPassword: string | null;
  close(): Promise<void>;
}

/** The groups of options merged one level deep: a caller gives the parts it changes. */
type OptionGroups = 'mqtt' | 'http' | 'webhooks' | 'ota';
/** What createBridge takes: any option, and any part of a group (the rest from defaultOptions). */
export type BridgeInput = Partial<Omit<BridgeOptions, OptionGroups>> & { [K in OptionGroups]?: Partial<BridgeOptions[K]> };

export async function createBridge(options: BridgeInput = {}): Promise<Bridge> {
  const o: BridgeOptions = {
    ...defaultOptions, ...options,
    mqtt: { ...defaultOptions.mqtt, ...options.mqtt }, http: { ...defaultOptions.http, ...options.http }, webhooks: { ...defaultOptions.webhooks, ...options.webhooks }, ota: { ...defaultOptions.ota, ...options.ota },
    retention: { ...defaultOptions.retention, ...options.retention },
  };
  const log = pino({ level: o.logLevel, base: { service: 'flotilla-bridge' } }, o.logOutput ?? fdLogOutput(1));
  // The database, keys and images are the bridge's alone; a directory it creates is too.
  mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
  for (const file of ownerOnly(o.dataDir)) log.warn({ file }, 'data: a secret file was readable by others; now it is its owner\'s alone');
  const hold = holdDataDir(o.dataDir);
  try {
    return await startOn(o, log, hold);
  } catch (e) {
    hold.release();
    throw e;
  }
}

/** The bridge on a data directory it holds (holdDataDir): released when it closes. */
async function startOn(o: BridgeOptions, log: pino.Logger, hold: { release(): void }): Promise<Bridge> {
  const store = await openSqliteStore({ file: join(o.dataDir, 'flotilla.db'), onError: (what, e) => log.error({ err: e }, 'store: ' + what) });
  // No session outlives its process: devices a killed bridge left online are offline until they connect again.
  const stale = await store.setAllOffline();
  if (stale > 0) log.info({ devices: stale }, 'devices left online by the last run marked offline');
  const identity = await openCa(join(o.dataDir, 'tls'));
  const broker = await createBroker({ store, log, ...o.mqtt, certificateAuth: certificateAuth(identity) });
  // Device events on the bus feed the event streams and the webhooks; both publish back into a product.
  const events = broker.events({ keepaliveMs: o.sseKeepaliveMs, maxBufferedBytes: o.sseMaxBufferedBytes });
  const webhooks = createWebhooks({
    ...o.webhooks, store, log, devices: broker.context.devices,
    emit(product, name, data) {
      // Streams take any name; devices only what the protocol carries (a name of at most 64
      // bytes): "hook-sent/" and the like make a long event's name longer, so those reach streams only.
      events.deliverApi([product], name, data, 60);
      if (!eventNameProblem(name)) broker.sendEvent(product.productId, name, data);
    },
  });
  broker.tap((topic, payload, at) => webhooks.onEvent(topic, payload, at));
  const ota = new OtaManager({
    store, log, dataDir: o.dataDir,
    publish: (topic, payload, qos) => broker.context.publish(topic, payload, qos),
    deviceEvent: (deviceId, name, data) => special(broker.context, deviceId, name, data),
  }, o.ota);
  await ota.start();
  broker.context.ota = ota;
  // Read a product's integrations when one of its devices connects, not on the publish path.
  broker.aedes.on('client', (client) => {
    const s = (client as unknown as WithSession).session;
    if (s?.kind === 'device') webhooks.warm(s.ref.product);
  });
  const listeners: Listener[] = [];
  let http: HttpListener | null = null;
  let mqtt: number;
  let generatedOwnerPassword: string | null = null;
  try {
    mqtt = await broker.listen(o.mqttPort, o.host);
    const on = (port: number | null): port is number => port !== null && port >= 0;
    let tls: TlsSetup | undefined;
    if (on(o.mqttsPort) || on(o.wssPort)) {
      const context = await identity.serverContext({ certFile: o.tlsCertFile, keyFile: o.tlsKeyFile, names: [o.host] });
      tls = { identity, context, handshakeTimeoutMs: o.mqtt.connectTimeoutMs };
    }
    const common = { admit: broker.admit, accept: broker.accept, log, host: o.host };
    if (on(o.mqttsPort)) listeners.push(await listenMqtts({ ...common, port: o.mqttsPort, tls: tls! }));
    if (on(o.wsPort)) listeners.push(await listenWebSocket({ ...common, port: o.wsPort, maxPacket: o.mqtt.maxPacket, upgradeTimeoutMs: o.mqtt.connectTimeoutMs }));
    if (on(o.wssPort)) listeners.push(await listenWebSocket({ ...common, port: o.wssPort, maxPacket: o.mqtt.maxPacket, upgradeTimeoutMs: o.mqtt.connectTimeoutMs, tls }));
    if (on(o.httpPort))
      http = await listenHttp({
        port: o.httpPort, host: o.host, log, store, bodyLimit: 1024 * 1024, ...o.http,
        dataDir: o.dataDir, uploadLimit: o.ota.imageMaxBytes, ota,
        requests: broker.context.requests, callTimeoutMs: o.callTimeoutMs, events, fleet: broker, signup: o.signup, webhooks, limiter: new RateLimiter(o.rateLimits),
      });
    // Only once every listener is bound: a start that fails (a port in use) must not use up the first owner's printed password.
    if (!(await store.hasUsers())) {
      const password = o.ownerPassword ?? (generatedOwnerPassword = randomWord(12));
      await store.createUser(o.ownerUsername, password);
      log.info({ username: o.ownerUsername }, 'created the first owner');
    }
  } catch (e) {
    await http?.close();
    await Promise.all(listeners.map((l) => l.close()));
    webhooks.close();
    await ota.close();
    await broker.close();
    await store.close();
    throw e;
  }
  const retention = startRetention(store, log, o.retention);
  const port = (kind: Listener['kind']) => listeners.find((l) => l.kind === kind)?.port ?? null;
  const ports = { http: (http as HttpListener | null)?.port ?? null, mqtt, mqtts: port('mqtts'), ws: port('ws'), wss: port('wss') };
  log.info({ host: o.host, ...ports }, 'bridge listening');
  let closing: Promise<void> | null = null;
  return {
    store,
    broker,
    webhooks,
    ota,
    ports,
    identity,
    generatedOwnerPassword,
    close() {
      // The same promise to every caller: a second close (a signal during the first) waits for the first to end.
      return (closing ??= (async () => {
        try {
          await (http as HttpListener | null)?.close();
          await Promise.all(listeners.map((l) => l.close()));
          // No new device events come now: what is queued is given drainMs to go (a routine restart loses little of it).
          await webhooks.drain();
          webhooks.close();
          await retention.stop();
          await ota.close();
          await broker.close();
          await store.close();
        } finally {
          hold.release();
        }
        log.info('bridge closed');
      })());
    },
  };
}
