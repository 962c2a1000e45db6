/**
 * The HTTP API (Particle Cloud API v1): a small router over node:http. Routes
 * are `[method, path pattern, handler]`; a handler returns the JSON body (or
 * `{ status, body }`) or throws ApiError, which becomes the response here and
 * only here. Anything else thrown is logged and answered 500, without details.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Actor } from '../policy/types.js';
import type { Store } from '../store/store.js';
import type { Logger } from '../mqtt/deps.js';
import { actorOf } from '../identity/actor.js';
import type { RequestRouter } from '../mqtt/requests.js';
import type { EventHub } from './events.js';
import { ApiError } from './errors.js';
import { readBody, type Fields } from './body.js';

export interface ApiContext {
  store: Store;
  log: Logger;
  /** Largest request body accepted, bytes. */
  bodyLimit: number;
  /** Requests to live devices (the broker's router). */
  requests: RequestRouter;
  /** How long a variable read or function call waits for the device (then 408). */
  callTimeoutMs: number;
  /** Open event streams and the events they get. */
  events: EventHub;
}

/** What a handler returns when it has taken over the response (an event stream). */
export const STREAMING = Symbol('streaming');

export interface Request {
  method: string;
  /** The raw response, for handlers that stream (they return STREAMING). */
  res: ServerResponse;
  url: URL;
  params: Record<string, string>;
  headers: IncomingMessage['headers'];
  /** The body, read on first call (JSON or form-encoded). */
  body(): Promise<Fields>;
  /** The actor behind the bearer token; 401 without a valid one. */
  actor(): Promise<Actor>;
}

export type Reply = unknown | { status: number; body: unknown };
export type Handler = (req: Request, ctx: ApiContext) => Promise<Reply> | Reply;
export type Route = readonly [method: string, pattern: string, handler: Handler];

interface Compiled {
  method: string;
  parts: string[];
  handler: Handler;
}

function compile(routes: readonly Route[]): Compiled[] {
  return routes.map(([method, pattern, handler]) => ({ method, parts: pattern.split('/').filter(Boolean), handler }));
}

/** `:name` matches one segment; a last `*name` the rest of the path (one or more segments, joined by '/'). */
function match(r: Compiled, parts: string[]): Record<string, string> | null {
  const rest = r.parts.length > 0 && r.parts[r.parts.length - 1].startsWith('*');
  if (rest ? parts.length < r.parts.length : r.parts.length !== parts.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < r.parts.length; i++) {
    const p = r.parts[i];
    if (p.startsWith('*')) params[p.slice(1)] = parts.slice(i).map(decodeURIComponent).join('/');
    else if (p.startsWith(':')) params[p.slice(1)] = decodeURIComponent(parts[i]);
    else if (p !== parts[i]) return null;
  }
  return params;
}

/** The bearer token of a request (header only: tokens in URLs end up in logs). */
function bearer(headers: IncomingMessage['headers']): string | null {
  const h = headers.authorization;
  return h && /^bearer /i.test(h) ? h.slice(7).trim() : null;
}

const UNAUTHORIZED = () => new ApiError(401, { error: 'invalid_token', error_description: 'The access token was not found, has expired or was revoked' }, { 'www-authenticate': 'Bearer' });

export function createApp(ctx: ApiContext, routes: readonly Route[]): (req: IncomingMessage, res: ServerResponse) => void {
  const table = compile(routes);
  return (req, res) => {
    void handle(req, res).catch((e: unknown) => send(res, e));
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://bridge');
    const parts = url.pathname.split('/').filter(Boolean);
    const method = req.method ?? 'GET';
    let found: { r: Compiled; params: Record<string, string> } | null = null;
    let pathKnown = false;
    for (const r of table) {
      const params = match(r, parts);
      if (!params) continue;
      pathKnown = true;
      if (r.method === method) {
        found = { r, params };
        break;
      }
    }
    if (!found) throw pathKnown ? ApiError.of(405, 'Method not allowed') : ApiError.of(404, 'Not found');
    let body: Promise<Fields> | null = null;
    let actor: Promise<Actor> | null = null;
    const request: Request = {
      method, url, res, params: found.params, headers: req.headers,
      body: () => (body ??= readBody(req, ctx.bodyLimit)),
      actor: () => (actor ??= authenticate(req.headers)),
    };
    const reply = await found.r.handler(request, ctx);
    if (reply === STREAMING) return;
    const { status, body: out } = reply !== null && typeof reply === 'object' && 'status' in reply && 'body' in reply ? (reply as { status: number; body: unknown }) : { status: 200, body: reply };
    json(res, status, out);
  }

  async function authenticate(headers: IncomingMessage['headers']): Promise<Actor> {
    const token = bearer(headers);
    if (!token) throw UNAUTHORIZED();
    const t = await ctx.store.findToken(token);
    if (!t || t.revokedAt || (t.expiresAt && t.expiresAt <= new Date())) throw UNAUTHORIZED();
    const actor = await actorOf(ctx.store, t.subject);
    if (!actor) throw UNAUTHORIZED();
    return actor;
  }

  function send(res: ServerResponse, e: unknown): void {
    if (res.headersSent) return void res.destroy();
    if (e instanceof ApiError) return json(res, e.status, e.body, e.headers);
    ctx.log.error({ err: e }, 'http: unexpected error');
    json(res, 500, { ok: false, error: 'Internal error' });
  }
}

export function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}
