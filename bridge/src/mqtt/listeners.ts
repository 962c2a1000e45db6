/**
 * The listeners beyond plain TCP, each handing its connections to the broker
 * through the same frame guard (broker.accept):
 *
 * - mqtts: MQTT over TLS. The server asks for a client certificate but does
 *   not demand one (requestCert, rejectUnauthorized false): Node's TLS checks
 *   a presented certificate against every product CA and records the outcome
 *   on the socket (authorized / authorizationError); CONNECT then decides
 *   (identity/peer.ts): a verified certificate is the device's identity, an
 *   unverified one is refused, none falls back to the device secret or token.
 *   A new product CA is trusted at once (setSecureContext); revoking a
 *   certificate ends the connections that presented it.
 * - ws / wss: MQTT over WebSocket at path /mqtt, subprotocol "mqtt" (or
 *   "mqttv3.1"). Each WebSocket becomes a byte stream (createWebSocketStream).
 *   wss uses the same TLS context and client-certificate rules as mqtts.
 *
 * Each TCP connection is admitted (the broker's connection limits) as it
 * arrives, before its TLS or WebSocket handshake: past the limits a flood
 * of handshakes must not cost the CPU they would.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { createServer as createTlsServer, type SecureContextOptions, type Server as TlsServer, type TLSSocket } from 'node:tls';
import { WebSocketServer, createWebSocketStream } from 'ws';
import type { CertificateAuthority, ServerContext } from '../identity/ca.js';
import { fingerprintOf } from '../identity/ca.js';
import type { Ticket } from './admission.js';
import type { Logger } from './deps.js';

export interface Listener {
  readonly kind: 'mqtts' | 'ws' | 'wss';
  /** The port bound (useful with port 0). */
  readonly port: number;
  /** Stops listening and ends its connections. */
  close(): Promise<void>;
}

export interface TlsSetup {
  identity: CertificateAuthority;
  /** Key and certificate of the server (identity.serverContext()). */
  context: ServerContext;
  /** A TLS handshake not done within this many ms is dropped. */
  handshakeTimeoutMs: number;
}

export interface ListenerOptions {
  /** broker.admit: a raw connection counted against the limits, or refused (null, destroyed). */
  admit(raw: Socket): Ticket | null;
  /** broker.accept: the frame guard and aedes. */
  accept(socket: Socket, ticket?: Ticket): void;
  log: Logger;
  port: number;
  host: string;
}

/** MQTT over TLS with optional client certificates. */
export async function listenMqtts(o: ListenerOptions & { tls: TlsSetup }): Promise<Listener> {
  const server = createTlsServer({ ...tlsOptions(o.tls), handshakeTimeout: o.tls.handshakeTimeoutMs });
  const live = new TlsConnections(o.tls.identity, o.tls.context, (ctx) => server.setSecureContext(ctx));
  const admitted = admittedConnections(o.admit);
  server.on('connection', (socket: Socket) => {
    if (admitted.take(socket)) live.connection(socket);
  });
  server.on('secureConnection', (socket: TLSSocket) => {
    socket.setNoDelay(true);
    live.secure(socket);
    o.accept(socket, admitted.of(socket));
  });
  closeFailedHandshakes(server, o.log, 'mqtts');
  const port = await bind(server, o.port, o.host);
  return {
    kind: 'mqtts',
    port,
    async close() {
      live.stop();
      await closeServer(server, live.raw);
    },
  };
}

/** MQTT over WebSocket (ws), or over secure WebSocket (wss) when `tls` is given. */
export async function listenWebSocket(o: ListenerOptions & { maxPacket: number; upgradeTimeoutMs: number; tls?: TlsSetup }): Promise<Listener> {
  const raw = new Set<Socket>();
  // The upgrade request must arrive whole within the connect timeout (Node's defaults, 60 s checked every 30 s,
  // would let a silent socket hold its admission place for 90 s); no keep-alive for what is not an upgrade.
  const http = {
    headersTimeout: o.upgradeTimeoutMs, requestTimeout: o.upgradeTimeoutMs, keepAliveTimeout: 1,
    connectionsCheckingInterval: Math.min(1000, o.upgradeTimeoutMs),
  };
  const https = o.tls ? createHttpsServer({ ...http, ...tlsOptions(o.tls), handshakeTimeout: o.tls.handshakeTimeoutMs }) : null;
  const server: HttpServer = https ?? createHttpServer(http);
  const live = o.tls && https ? new TlsConnections(o.tls.identity, o.tls.context, (ctx) => https.setSecureContext(ctx)) : null;
  const admitted = admittedConnections(o.admit);
  server.on('connection', (socket: Socket) => {
    if (!admitted.take(socket)) return;
    raw.add(socket);
    socket.once('close', () => raw.delete(socket));
  });
  if (https) closeFailedHandshakes(https, o.log, 'wss');
  // Anything but the WebSocket upgrade at /mqtt.
  server.on('request', (_req, res) => {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('MQTT over WebSocket is at /mqtt\n');
  });
  const wss = new WebSocketServer({
    server,
    path: '/mqtt',
    // A WebSocket message is buffered whole before the frame guard sees it: bound it too.
    maxPayload: 2 * o.maxPacket + 64,
    perMessageDeflate: false,
    handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : protocols.has('mqttv3.1') ? 'mqttv3.1' : false),
  });
  wss.on('connection', (ws, req: IncomingMessage) => {
    const stream = createWebSocketStream(ws);
    // What the guard, aedes and identity/peer.ts read from a socket: its address, and the TLS socket under it (wss).
    Object.assign(stream, { remoteAddress: req.socket.remoteAddress, tlsSocket: live ? req.socket : undefined });
    live?.secure(req.socket as TLSSocket);
    o.accept(stream as unknown as Socket, admitted.of(req.socket));
  });
  wss.on('error', (err) => o.log.error({ err }, 'ws: server error'));
  const port = await bind(server, o.port, o.host);
  return {
    kind: o.tls ? 'wss' : 'ws',
    port,
    async close() {
      live?.stop();
      wss.close();
      await closeServer(server, raw);
    },
  };
}

/**
 * The tickets of a listener's TCP connections, found again from the TLS socket
 * or HTTP request over each (the same remote address and port: Node gives no
 * public link from a TLS socket to the TCP socket under it).
 */
function admittedConnections(admit: ListenerOptions['admit']) {
  const byPeer = new Map<string, Ticket>();
  const key = (s: { remoteAddress?: string; remotePort?: number }) => s.remoteAddress + ' ' + s.remotePort;
  return {
    take(raw: Socket): boolean {
      const ticket = admit(raw);
      if (!ticket) return false;
      const k = key(raw);
      byPeer.set(k, ticket);
      raw.once('close', () => byPeer.get(k) === ticket && byPeer.delete(k));
      return true;
    },
    of(socket: { remoteAddress?: string; remotePort?: number }): Ticket | undefined {
      return byPeer.get(key(socket));
    },
  };
}

/** A TLS handshake that failed or timed out ends its socket: Node only reports a timeout, leaving the socket open and holding its admission place. */
function closeFailedHandshakes(server: TlsServer, log: Logger, kind: 'mqtts' | 'wss'): void {
  server.on('tlsClientError', (err, socket) => {
    log.debug({ remote: socket.remoteAddress, err: err.message }, kind + ': handshake failed');
    socket.destroy();
  });
}

function tlsOptions(tls: TlsSetup) {
  return {
    key: tls.context.key,
    cert: tls.context.cert,
    // Always an array: an empty one trusts nobody, where no `ca` at all would trust the public roots.
    ca: tls.identity.productCas().map((c) => c.certPem),
    requestCert: true,
    rejectUnauthorized: false,
    minVersion: 'TLSv1.2' as const,
  };
}

/**
 * A TLS listener's connections. Raw sockets (handshakes included) are ended
 * on close; sockets that presented a certificate are kept by fingerprint, so
 * revoking it ends them. A new product CA is trusted from the next handshake.
 */
class TlsConnections {
  readonly raw = new Set<Socket>();
  private readonly byFingerprint = new Map<string, Set<TLSSocket>>();
  private readonly unsubscribe: () => void;

  constructor(identity: CertificateAuthority, context: ServerContext, setContext: (ctx: SecureContextOptions) => void) {
    this.unsubscribe = identity.onChange((change) => {
      if (change.kind === 'product-ca')
        setContext({ key: context.key, cert: context.cert, ca: identity.productCas().map((c) => c.certPem), minVersion: 'TLSv1.2' });
      else for (const s of this.byFingerprint.get(change.fingerprint) ?? []) s.destroy();
    });
  }

  /** Every accepted TCP connection, before its handshake. */
  connection(socket: Socket): void {
    this.raw.add(socket);
    socket.once('close', () => this.raw.delete(socket));
  }

  /** A connection whose handshake is done. */
  secure(socket: TLSSocket): void {
    const cert = socket.getPeerX509Certificate();
    if (!cert) return;
    const fp = fingerprintOf(cert);
    let set = this.byFingerprint.get(fp);
    if (!set) this.byFingerprint.set(fp, (set = new Set()));
    set.add(socket);
    socket.once('close', () => {
      set.delete(socket);
      if (set.size === 0 && this.byFingerprint.get(fp) === set) this.byFingerprint.delete(fp);
    });
  }

  stop(): void {
    this.unsubscribe();
  }
}

function bind(server: { listen(port: number, host: string, cb: () => void): unknown; once(e: 'error', cb: (e: Error) => void): unknown; address(): unknown }, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
  });
}

function closeServer(server: { close(cb: () => void): unknown }, sockets: Iterable<Socket>): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    for (const s of sockets) s.destroy();
  });
}
