/**
 * The HTTP API (Particle Cloud API v1): a small router over node:http. A route
 * is a method, a path pattern, a guard (access.ts: public, signed in, or an
 * action on the path's device, product or org) and a handler. The guard runs
 * here, before the handler, and is audited; the handler returns the JSON body
 * (or `{ status, body }`) or throws ApiError, which becomes the response here
 * and only here. Anything else thrown is logged and answered 500, without details.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Action } from '@flotilla/protocol';
import type { Actor } from '../policy/types.js';
import { basicCredentials, presentedClient, CLIENT_ACTOR } from './client-auth.js';
import type { RateLimiter } from './ratelimit.js';
import { StoreError, type Store } from '../store/store.js';
import { addressKey } from '../identity/address.js';
import { clientAddress, type TrustedProxies } from './proxy.js';
import { logThrottle } from '../log-throttle.js';
import type { Logger } from '../mqtt/deps.js';
import { actorOf, auditEntry, tokenProblem } from '../identity/actor.js';
import type { RequestRouter } from '../mqtt/requests.js';
import type { Broker } from '../mqtt/broker.js';
import type { Webhooks } from '../integrations/webhooks.js';
import type { EventHub } from './events.js';
import { ApiError, refusal } from './errors.js';
import { isMultipart, readBody, removeUploads, type Fields } from './body.js';
import { incomingDir } from '../ota/files.js';
import { OtaError } from '../ota/errors.js';
import type { OtaControl } from '../ota/manager.js';
import { authorize, refused, type Access, type Guard } from './access.js';

export interface ApiContext {
  store: Store;
  log: Logger;
  /** Largest request body accepted, bytes. */
  bodyLimit: number;
  /** Where uploaded firmware goes (firmware/ under it), and the largest file accepted. */
  dataDir: string;
  uploadLimit: number;
  /** OTA delivery: flashing devices, releases and rollouts (ota/manager.ts). */
  ota: OtaControl;
  /** Requests to live devices (the broker's router). */
  requests: RequestRouter;
  /** How long a variable read or function call waits for the device (then 408). */
  callTimeoutMs: number;
  /** Open event streams and the events they get. */
  events: EventHub;
  /** The live broker, for what a change in the store must do to connections now. */
  fleet: LiveFleet;
  /** Request limits, per token or per address (429 past them). */
  limiter: RateLimiter;
  /** Webhook delivery, told when a product's integrations change and of events published through the API; it says which target URLs it refuses. */
  webhooks: Pick<Webhooks, 'invalidate' | 'urlRefusal' | 'onApiEvent'>;
  /** Whether POST /v1/users lets anyone sign up (Particle's self sign-up; off for a private bridge). */
  signup: boolean;
  /** The operator's reverse proxies: from them, the client is the one X-Forwarded-For names (proxy.ts). */
  trusted: TrustedProxies;
}

/** What the API asks of the broker (mqtt/broker.ts implements it). */
export type LiveFleet = Pick<Broker, 'cutToken' | 'cutTokenHashes' | 'cutSubject' | 'refreshUser' | 'refreshDevice' | 'dropDevice' | 'sendEvent'>;

/** What a handler returns when it has taken over the response (an event stream). */
export const STREAMING = Symbol('streaming');

export interface Request {
  /** GET for a HEAD request (it runs the GET route; node:http sends no body). */
  method: string;
  /** It came as HEAD. */
  head: boolean;
  /** The raw response, for handlers that stream (they return STREAMING). */
  res: ServerResponse;
  url: URL;
  params: Record<string, string>;
  headers: IncomingMessage['headers'];
  /** Who sent it, as the per-address limits count it: the client (behind a trusted proxy, the forwarded one), an IPv6 host by its /64. */
  address: string;
  /** The bearer token it came with, if any. */
  token: string | null;
  /** When that token expires (ms since the epoch), once authentication found it valid; null: never, or no valid token. */
  tokenExpiresAt: number | null;
  /** The body, read on first call (JSON or form-encoded). */
  body(): Promise<Fields>;
}

export type Reply = unknown | { status: number; body: unknown };
/** `access`: who asks, and the resource the route's guard found and allowed (access.ts). */
export type Handler = (req: Request, ctx: ApiContext, access: Access) => Promise<Reply> | Reply;
export interface Route {
  method: string;
  path: string;
  guard: Guard;
  handler: Handler;
  /** It takes a multipart file (streamed to disk); any other route answers a multipart body with 415 and writes nothing. */
  files?: true;
  /** The largest file it takes, when smaller than the API's uploadLimit (413 past it, with nothing left on disk). */
  fileLimit?: number;
  /** It also takes a user's username and password in Basic auth (Particle's token listing), counted by the login lock-out. */
  password?: true;
}

export function route(method: string, path: string, g: Guard, handler: Handler, options: { files?: true; fileLimit?: number; password?: true } = {}): Route {
  return { method, path, guard: g, handler, ...options };
}

interface Compiled {
  route: Route;
  parts: string[];
  /** A last `*name` segment. */
  rest: boolean;
  /** Indexes of the literal segments: compared before anything is allocated (every request tries many routes). */
  literals: number[];
}

function compile(routes: readonly Route[]): Compiled[] {
  return routes.map((route) => {
    const parts = route.path.split('/').filter(Boolean);
    const literals = parts.flatMap((p, i) => (p.startsWith(':') || p.startsWith('*') ? [] : [i]));
    return { route, parts, rest: parts.length > 0 && parts[parts.length - 1].startsWith('*'), literals };
  });
}

/** `:name` matches one segment; a last `*name` the rest of the path (one or more segments, joined by '/'). */
function match(r: Compiled, parts: string[]): Record<string, string> | null {
  if (r.rest ? parts.length < r.parts.length : r.parts.length !== parts.length) return null;
  for (const i of r.literals) if (r.parts[i] !== parts[i]) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < r.parts.length; i++) {
    const p = r.parts[i];
    if (p.startsWith('*')) params[p.slice(1)] = parts.slice(i).map(decodeURIComponent).join('/');
    else if (p.startsWith(':')) params[p.slice(1)] = decodeURIComponent(parts[i]);
  }
  return params;
}

/** The store with an audit() that writes nothing, for the guard of a refusal past its audit budget. */
function unaudited(store: Store): Store {
  return Object.create(store, { audit: { value: () => Promise.resolve() } }) as Store;
}

/** The bearer token of a request (header only: tokens in URLs end up in logs). */
function bearer(headers: IncomingMessage['headers']): string | null {
  const h = headers.authorization;
  return h && /^bearer /i.test(h) ? h.slice(7).trim() : null;
}

/** 429 with Retry-After, in the API's shape. */
export function tooMany(seconds: number): ApiError {
  return ApiError.of(429, 'Too many requests; try again in ' + seconds + ' s', { 'retry-after': String(seconds) });
}

/** Counts a token request from `address` (a login, a sign-up, a password in Basic auth: a scrypt each): 429 past the limit. */
export function countTokenRequest(limiter: RateLimiter, address: string): void {
  const wait = limiter.tokenRequest(address);
  if (wait !== null) throw tooMany(wait);
}

/** The token endpoint's route: its refusals are OAuth's (RFC 6749 §5.2) and it counts logins. */
export const OAUTH_TOKEN = '/oauth/token';

/** The methods a browser may send (the routes' and HEAD). */
const CORS_METHODS = 'GET, HEAD, POST, PUT, DELETE';

/** SQLite's codes for a database that cannot take writes for now (better-sqlite3's SqliteError.code). */
const UNAVAILABLE = /^SQLITE_(FULL|BUSY|LOCKED|IOERR|READONLY)/;

/** What a product's OAuth client may do with its credentials alone. */
const CLIENT_SCOPES: readonly Action[] = ['customer.create'];

/**
 * The API's request handler. `waiting` is true for a request whose client waits on `Expect: 100-continue`
 * (the server's 'checkContinue'): its 100 Continue goes only when the body is read, after authentication,
 * authorization and the declared length are through, so a refused upload is never sent.
 */
export type App = (req: IncomingMessage, res: ServerResponse, waiting?: boolean) => void;

export function createApp(ctx: ApiContext, routes: readonly Route[]): App {
  const table = compile(routes);
  const throttled = logThrottle();
  return (req, res, waiting = false) => {
    // The token endpoint answers in OAuth's shape: the matched route says whether this is it; a refusal
    // made before routing (a limit, a path that is no URL) goes by the path as sent.
    const shape = { oauth: (req.url?.split('?')[0] ?? '').replace(/\/+$/, '') === OAUTH_TOKEN };
    void handle(req, res, shape, waiting).catch((e: unknown) => send(res, e, shape.oauth));
  };

  async function handle(req: IncomingMessage, res: ServerResponse, shape: { oauth: boolean }, waiting: boolean): Promise<void> {
    // Any origin, as Particle's API: credentials are bearer tokens a page must hold itself, never cookies,
    // so particle-api-js in a browser works. A preflight is answered before anything else.
    res.setHeader('access-control-allow-origin', '*');
    if (req.method === 'OPTIONS') {
      res.writeHead(204, {
        'access-control-allow-methods': CORS_METHODS,
        'access-control-allow-headers': req.headers['access-control-request-headers'] ?? 'authorization, content-type',
        'access-control-max-age': '86400',
      });
      res.end();
      return;
    }
    res.setHeader('access-control-expose-headers', 'retry-after, www-authenticate');
    // RFC 9112 §3.2: an HTTP/1.1 request without Host is refused (node:http would answer it with an empty body).
    if (req.httpVersion === '1.1' && req.headers.host === undefined) throw ApiError.of(400, 'A Host header is required (HTTP/1.1)');
    // Per-address limits count a host (an IPv6 host by its /64): the client, also behind the operator's proxy.
    const address = addressKey(clientAddress(req.socket.remoteAddress ?? '', req.headers['x-forwarded-for'], ctx.trusted));
    // Request limits: a valid bearer token has a count of its own (per token, as Particle's), so callers
    // sharing an address do not starve each other; everything else (no token, client credentials, an
    // unknown token, a path that does not exist) counts against the address.
    const token = bearer(req.headers);
    const byAddress = 'address ' + address;
    const limit = (key: string) => {
      const wait = ctx.limiter.request(key);
      if (wait !== null) throw tooMany(wait);
    };
    if (token === null) limit(byAddress);
    let url: URL;
    let parts: string[];
    try {
      // A request target that is no URL at all (`GET http://[`) is the client's error, as bad percent-encoding is.
      url = new URL(req.url ?? '/', 'http://bridge');
      parts = url.pathname.split('/').filter(Boolean);
      parts.forEach((p) => decodeURIComponent(p));
    } catch {
      throw ApiError.of(400, 'The path is not a valid URL path (or not valid percent-encoding)');
    }
    // HEAD is GET without the body (node:http leaves the body out); particle-api-js checks a SIM so.
    const head = req.method === 'HEAD';
    const method = head ? 'GET' : req.method ?? 'GET';
    let found: { r: Compiled; params: Record<string, string> } | null = null;
    const allowed = new Set<string>();
    for (const r of table) {
      const params = match(r, parts);
      if (!params) continue;
      allowed.add(r.route.method);
      if (r.route.method === method) {
        found = { r, params };
        break;
      }
    }
    if (!found) {
      if (token !== null) limit(byAddress);
      if (allowed.size === 0) throw ApiError.of(404, 'Not found');
      // RFC 9110 §15.5.6: a 405 names the methods the path takes (HEAD with GET, as it is served).
      if (allowed.has('GET')) allowed.add('HEAD');
      throw ApiError.of(405, 'Method not allowed', { allow: [...allowed].sort().join(', ') });
    }
    shape.oauth = found.r.route.path === OAUTH_TOKEN;
    let body: Promise<Fields> | null = null;
    const uploads: string[] = [];
    res.once('close', () => removeUploads(uploads));
    const r = found.r.route;
    const upload = r.files ? { dir: incomingDir(ctx.dataDir), limit: Math.min(ctx.uploadLimit, r.fileLimit ?? Infinity), written: (p: string) => uploads.push(p) } : undefined;
    // A client waiting on 100 Continue is told to send once the body is to be read (node:http closes the
    // connection after an answer sent without it: the client may or may not send the body then).
    const reading = () => {
      if (waiting && !res.headersSent) res.writeContinue();
    };
    const readOnce = () => (body ??= readBody(req, ctx.bodyLimit, upload, reading));
    const request: Request = { method, head, url, res, params: found.params, headers: req.headers, address, token, tokenExpiresAt: null, body: readOnce };
    const g = r.guard;
    const actor = g.kind === 'public' ? { kind: 'anonymous' as const } : await authenticate(request, method === 'GET' ? null : readOnce, r.password ? address : null);
    if (token !== null) limit(g.kind !== 'public' && actor.kind !== 'anonymous' && actor.kind !== 'invalid' ? 'token ' + token : byAddress);
    // Refusals of callers with no valid credentials are audited up to a budget per address: anyone can make them.
    const unknown = actor.kind === 'anonymous' || actor.kind === 'invalid';
    const guardStore = unknown && g.kind !== 'public' && !ctx.limiter.unauthenticatedAudit(byAddress) ? unaudited(ctx.store) : ctx.store;
    let access: Access;
    if (g.kind === 'public') access = { actor, product: null, device: null, org: null, decision: null };
    else if (g.kind === 'signedIn') {
      if (actor.kind === 'anonymous' || actor.kind === 'invalid') {
        const verdict = { allow: false, status: 401, reason: actor.kind === 'anonymous' ? 'anonymous: no credentials' : 'invalid credentials (' + actor.reason + ')' } as const;
        await guardStore.audit(auditEntry(actor, 'signedIn', 'route', method + ' ' + r.path, verdict, new Date()));
        throw refused(verdict, 'device', actor);
      }
      access = { actor, product: null, device: null, org: null, decision: null };
    } else {
      // A multipart body is a file (a flash): its action is decided from that, unread, so a refused upload
      // is answered before it is sent (read to choose the action, it was streamed to disk first).
      // An actor who may do none of what the route's body could ask is refused unread; one who may do some is
      // let on, and the handler decides what the body turns out to ask (routes/devices.ts).
      const upload = isMultipart(req.headers);
      const orElse = upload && typeof g.action === 'function' ? ((g.action as { unread?: readonly Action[] }).unread ?? []) : [];
      access = await authorize(guardStore, actor, g, found.params, readOnce, upload ? () => Promise.resolve({ file: true }) : readOnce, orElse);
    }
    const path = r.path;
    let reply: Reply;
    if (path === OAUTH_TOKEN) {
      countTokenRequest(ctx.limiter, address);
      // Only passwords are guessable (refresh tokens, codes and client secrets are random): only the password grant locks out.
      const fields = await readOnce();
      const login = fields.grant_type === 'password' && typeof fields.username === 'string' ? ctx.limiter.passwordLogin(address, fields.username) : null;
      if (typeof login === 'number') throw tooMany(login);
      try {
        reply = await r.handler(request, ctx, access);
        login?.(true);
      } catch (e) {
        // A wrong password counts toward the lock-out; malformed requests do not.
        login?.(e instanceof ApiError && 'error' in e.body && e.body.error === 'invalid_grant' ? false : null);
        throw e;
      }
    } else if (method === 'GET' && /\/events(\/\*prefix)?$/.test(path)) {
      if (head) {
        // A stream's head: nothing follows it, so nothing is held open.
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        res.end();
        return;
      }
      const slot = ctx.limiter.stream(address);
      if (typeof slot === 'number') throw tooMany(slot);
      res.once('close', slot.close);
      try {
        reply = await r.handler(request, ctx, access);
      } finally {
        if (!res.headersSent) slot.close();
      }
    } else reply = await r.handler(request, ctx, access);
    if (reply === STREAMING) return;
    const { status, body: out } = reply !== null && typeof reply === 'object' && 'status' in reply && 'body' in reply ? (reply as { status: number; body: unknown }) : { status: 200, body: reply };
    if (status === 204) {
      res.writeHead(204);
      res.end();
      return;
    }
    json(res, status, out);
  }

  /**
   * The actor behind the bearer token: anonymous without one, invalid for an
   * unknown, expired or revoked one. A valid token's expiry goes on the request
   * (an event stream ends with its token). Basic auth is a product's OAuth
   * client, or a user's password where the route takes one (`passwordFrom`:
   * the caller's address, for the login lock-out).
   */
  async function authenticate(request: Request, body: (() => Promise<Fields>) | null, passwordFrom: string | null): Promise<Actor> {
    const headers = request.headers;
    if (/^basic /i.test(headers.authorization ?? '')) return passwordFrom === null ? clientActor(headers, {}) : userActor(headers, passwordFrom);
    const token = bearer(headers);
    if (!token) {
      // particle-api-js sends a product client's credentials as body fields (createCustomer), in a form or JSON:
      // a multipart body (an upload) is never read before its sender is known.
      const fields = body && !headers.authorization && !isMultipart(headers) ? await body() : null;
      if (fields && typeof fields.client_id === 'string') return clientActor(headers, fields);
      // Old scripts send the token as access_token (Particle's deprecated forms): say where it goes, not "no such token".
      const misplaced = request.url.searchParams.has('access_token') || (fields !== null && 'access_token' in fields);
      return misplaced ? { kind: 'invalid', reason: 'misplaced' } : { kind: 'anonymous' };
    }
    const t = await ctx.store.findToken(token);
    const problem = tokenProblem(t, new Date());
    if (problem || !t) return { kind: 'invalid', reason: problem ?? 'unknown' };
    request.tokenExpiresAt = t.expiresAt ? t.expiresAt.getTime() : null;
    return (await actorOf(ctx.store, t.subject)) ?? { kind: 'invalid', reason: 'unknown' };
  }

  /**
   * A product's OAuth client in Basic auth (Particle's simple authentication:
   * the product's app creates customers with its client credentials) acts as
   * a program of that product allowed to create and view customers.
   */
  async function clientActor(headers: IncomingMessage['headers'], fields: Fields): Promise<Actor> {
    const c = presentedClient(headers, fields);
    const client = c ? await ctx.store.verifyClient(c.id, c.secret) : null;
    // Credentials that name a client and a secret were a client's attempt: OAuth's invalid_client. Anything else reads as no credentials.
    if (!client || client.productId === null) return { kind: 'invalid', reason: c && c.secret ? 'client' : 'unknown' };
    return { kind: 'apiUser', apiUserId: CLIENT_ACTOR + client.id, scope: { productId: String(client.productId) }, scopes: CLIENT_SCOPES };
  }

  /** A user by username and password in Basic auth (curl -u name:password), as the token endpoint's password grant would log them in. */
  async function userActor(headers: IncomingMessage['headers'], address: string): Promise<Actor> {
    const c = basicCredentials(headers.authorization);
    if (!c) return { kind: 'invalid', reason: 'password' };
    // A password check is a scrypt on the pool that checks devices' secrets too: counted as the token endpoint's requests.
    countTokenRequest(ctx.limiter, address);
    const login = await ctx.limiter.passwordCheck(address, c.name, () => ctx.store.verifyPassword(c.name, c.secret));
    if ('wait' in login) throw tooMany(login.wait);
    const u = login.found;
    return (u && (await actorOf(ctx.store, { kind: 'user', id: u.id }))) || { kind: 'invalid', reason: 'password' };
  }

  /** The response for a refusal; the token endpoint's in OAuth's shape, whatever refused (RFC 6749 §5.2: a body it cannot read is invalid_request). */
  function send(res: ServerResponse, e: unknown, oauth: boolean): void {
    if (res.headersSent) return void res.destroy();
    if (oauth && e instanceof ApiError && 'ok' in e.body) {
      const error = e.status === 429 ? 'temporarily_unavailable' : e.status >= 500 ? 'server_error' : 'invalid_request';
      e = new ApiError(e.status, { error, error_description: e.body.error }, e.headers);
    }
    if (e instanceof ApiError) return json(res, e.status, e.body, e.headers);
    // The store's refusals are the caller's: a value it can never keep (400), a taken name or broken team rule (409), a missing row (404).
    if (e instanceof StoreError || e instanceof OtaError) return json(res, e.code === 'invalid' ? 400 : e.code === 'conflict' ? 409 : e.code === 'too_large' ? 413 : 404, refusal(e.message));
    // The database cannot take writes now (a full disk, another process's lock): said, and worth a retry.
    const sqlite = (e as { code?: unknown })?.code;
    if (typeof sqlite === 'string' && UNAVAILABLE.test(sqlite)) {
      throttled('db ' + sqlite, (count) => ctx.log.error({ err: e, count }, 'http: the database refused a write'));
      return json(res, 503, refusal('The database cannot be written now (' + sqlite + '); try again later'), { 'retry-after': '5' });
    }
    ctx.log.error({ err: e }, 'http: unexpected error');
    json(res, 500, refusal('Internal error'));
  }
}

export function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}
