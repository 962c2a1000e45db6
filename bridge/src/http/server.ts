/**
 * The HTTP listener of the bridge, hardened from the start: request and header
 * timeouts, a header size cap, a cap on connections at once, and one JSON
 * shape for what it does not serve.
 * The operator API (Particle Cloud API v1): app.ts and routes/.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { logThrottle } from '../log-throttle.js';
import { addressKey } from '../identity/address.js';
import { createApp, type ApiContext } from './app.js';
import { trustedProxies } from './proxy.js';
import { refusal } from './errors.js';
import { routes } from './routes/index.js';

export interface HttpOptions extends Omit<ApiContext, 'trusted'> {
  port: number;
  host: string;
  /** A request must arrive whole within this (Node's default is 300 s: slowloris room). */
  requestTimeoutMs: number;
  headersTimeoutMs: number;
  /**
   * Connections at once (event streams, keep-alive sockets); past it a new one is closed unread, so a
   * flood of them cannot take the file descriptors the MQTT broker and the database need.
   */
  maxConnections: number;
  /** Of those, from one address (an IPv6 host's /64): one client cannot hold them all. */
  maxConnectionsPerAddress: number;
  /**
   * A connection whose pipelined requests wait behind answers its client has not taken, with no
   * answer going out for this long, is closed: one whose client never reads held its place for
   * good. (One long answer on a slow link is not cut: node:http holds requests back only behind
   * unread answers. An event stream whose reader stops is cut by its own buffer bound.)
   */
  stalledMs: number;
  /** Addresses and ranges of the operator's reverse proxies (X-Forwarded-For is taken from them only); none by default. */
  trustProxy: readonly string[];
}

export interface HttpListener {
  port: number;
  close(): Promise<void>;
}

export async function listenHttp(o: HttpOptions): Promise<HttpListener> {
  const trusted = trustedProxies(o.trustProxy);
  const app = createApp({ ...o, trusted }, routes);
  const server: Server = createServer(
    {
      requestTimeout: o.requestTimeoutMs, headersTimeout: o.headersTimeoutMs, keepAliveTimeout: 5000, maxHeaderSize: 16 * 1024,
      // The app refuses a request without Host in the API's shape (node:http's own answer has no body).
      requireHostHeader: false,
      // Node checks those timeouts only this often (30 s by default): a timeout would act up to 30 s late.
      connectionsCheckingInterval: Math.min(1000, o.headersTimeoutMs),
    },
    app,
  );
  // Expect: 100-continue: the app says Continue when it reads the body, so an upload refused by its token,
  // its rights or its declared size is answered before it is sent (node:http says Continue at once).
  server.on('checkContinue', (req, res) => app(req, res, true));
  server.maxConnections = o.maxConnections;
  const throttled = logThrottle();
  const perAddress = new Map<string, number>();
  // node:http pauses reading a connection whose answers pile up unread (pipelined requests): paused, with
  // no answer written since the last look, it is stalled since then. bytesWritten counts answers as they
  // are queued, so it moves only when node:http goes on, that is when the client has read.
  const watched = new Map<Socket, { written: number; since: number }>();
  const watchdog = setInterval(() => {
    const now = Date.now();
    for (const [socket, w] of watched) {
      if (!socket.isPaused() || socket.bytesWritten !== w.written) {
        w.written = socket.bytesWritten;
        w.since = now;
      } else if (now - w.since >= o.stalledMs) socket.destroy();
    }
  }, Math.min(1000, o.stalledMs));
  watchdog.unref();
  server.on('connection', (socket: Socket) => {
    watched.set(socket, { written: 0, since: Date.now() });
    socket.once('close', () => watched.delete(socket));
    // A trusted proxy carries many clients: it has no share of its own (the clients are counted per request).
    if (trusted(socket.remoteAddress ?? '')) return;
    const key = addressKey(socket.remoteAddress ?? '');
    const n = (perAddress.get(key) ?? 0) + 1;
    if (n > o.maxConnectionsPerAddress) {
      throttled('address', (count) => o.log.warn({ remote: key, refused: count, maxConnectionsPerAddress: o.maxConnectionsPerAddress }, 'http: connections refused: one address holds its share'));
      socket.destroy();
      return;
    }
    perAddress.set(key, n);
    socket.once('close', () => {
      const left = (perAddress.get(key) ?? 1) - 1;
      if (left > 0) perAddress.set(key, left);
      else perAddress.delete(key);
    });
  });
  server.on('drop', (d?: { remoteAddress?: string }) =>
    throttled('full', (count) => o.log.warn({ remote: d?.remoteAddress, refused: count, maxConnections: o.maxConnections }, 'http: connections refused: the API holds its maximum')),
  );
  server.on('clientError', (err: Error & { code?: string }, socket) => {
    o.log.debug({ err: err.message, code: err.code }, 'http: client error');
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    // The precise refusal, in the API's error shape: headers too large, a request too slow, or anything else malformed.
    const [status, why] = err.code === 'HPE_HEADER_OVERFLOW' ? ['431 Request Header Fields Too Large', 'The request line and headers are larger than 16 KB']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? ['408 Request Timeout', 'The request did not arrive in time'] : ['400 Bad Request', 'Malformed HTTP request'];
    const body = JSON.stringify(refusal(why));
    socket.end('HTTP/1.1 ' + status + '\r\ncontent-type: application/json; charset=utf-8\r\naccess-control-allow-origin: *\r\nconnection: close\r\ncontent-length: ' + Buffer.byteLength(body) + '\r\n\r\n' + body);
    // Closed once the answer is out, not only half: a client that never closes its side would keep its place for good.
    (socket as Socket).destroySoon();
  });
  // An Expect the server cannot meet (anything but 100-continue): 417 in the API's shape, not node:http's empty one.
  server.on('checkExpectation', (req, res) => {
    const body = JSON.stringify(refusal('Expect ' + String(req.headers.expect) + ' is not supported'));
    res.writeHead(417, { 'content-type': 'application/json; charset=utf-8', 'access-control-allow-origin': '*', connection: 'close', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        o.events.close();
        clearInterval(watchdog);
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
