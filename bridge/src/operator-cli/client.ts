/**
 * The bridge's HTTP API as the CLI uses it: global fetch, a bearer token,
 * JSON answers. Refusals become ApiFailure (the API's own message and the
 * HTTP status), a bridge that cannot be reached becomes Unreachable. The
 * token goes in the Authorization header only, and never into a message.
 */
import { openAsBlob } from 'node:fs';
import { basename } from 'node:path';

/** The API answered with an error status. */
export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly body: unknown,
  ) {
    super(message);
  }
}

/** No answer at all: refused, unknown host, reset, not HTTP. */
export class Unreachable extends Error {}

/** Text fields of a multipart request, and the file to stream as its `file` field. */
export interface Upload {
  fields: Record<string, string | undefined>;
  file: string;
}

/** The message of an error answer: `{ok: false, error}` (its error_description the same words) or OAuth's `{error, error_description}`. */
export function errorMessage(body: unknown, status: number): string {
  if (body !== null && typeof body === 'object') {
    const b = body as { error?: unknown; error_description?: unknown; message?: unknown };
    const error = typeof b.error === 'string' ? b.error : typeof b.message === 'string' ? b.message : null;
    const description = typeof b.error_description === 'string' ? b.error_description : null;
    if (error && description && description !== error) return `${error}: ${description}`;
    if (error || description) return (error ?? description) as string;
  }
  return status >= 500 ? 'the bridge failed' : 'refused';
}

/** Whether a token can go in a header; fetch's error for one that cannot would quote it. */
export function headerSafe(token: string): boolean {
  return /^[\x21-\x7e]+$/.test(token);
}

export class ApiClient {
  /** `base` without a trailing slash or /v1 (both are accepted, as operators copy the bridge's banner). */
  readonly base: string;

  constructor(
    base: string,
    private readonly token: string,
    private readonly fetchImpl: typeof fetch = fetch,
  ) {
    this.base = base.replace(/\/+$/, '').replace(/\/v1$/, '');
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  /** A JSON body. */
  send<T>(method: 'POST' | 'PUT' | 'DELETE', path: string, body: object): Promise<T> {
    return this.request<T>(method, path, JSON.stringify(body), 'application/json');
  }

  /** A multipart body whose file is streamed from disk, never read whole. */
  async upload<T>(method: 'POST' | 'PUT', path: string, u: Upload): Promise<T> {
    const form = new FormData();
    // Fields before the file, so the bridge has them when the file arrives.
    for (const [k, v] of Object.entries(u.fields)) if (v !== undefined) form.append(k, v);
    form.append('file', await openAsBlob(u.file), basename(u.file));
    return this.request<T>(method, path, form);
  }

  private async request<T>(method: string, path: string, body?: string | FormData, type?: string): Promise<T> {
    const url = this.base + path;
    const headers: Record<string, string> = { authorization: 'Bearer ' + this.token, accept: 'application/json' };
    if (type) headers['content-type'] = type;
    let res: Response;
    try {
      // redirect 'error': following a redirect makes undici keep the whole request body in memory to send it again
      // (nodejs/undici#4058), so a streamed upload would not stream; and the API never redirects.
      res = await this.fetchImpl(url, { method, headers, body, redirect: 'error' });
    } catch (e) {
      const why = cause(e);
      if (why === 'unexpected redirect') throw new Unreachable(`${this.base} answered with a redirect, which the bridge never does: is --api its address (http or https)?`);
      throw new Unreachable(`cannot reach the bridge at ${this.base}: ${this.redact(why)}`);
    }
    const text = await res.text().catch(() => '');
    let parsed: unknown = undefined;
    try {
      parsed = text === '' ? null : JSON.parse(text);
    } catch {
      // Not JSON: a proxy's page, or not the bridge at all.
      if (res.ok) throw new ApiFailure(res.status, `the answer from ${url} is not JSON; is --api the bridge?`, text);
    }
    if (!res.ok) throw new ApiFailure(res.status, this.redact(errorMessage(parsed, res.status)), parsed);
    return parsed as T;
  }

  /** Hides the token in a message from elsewhere. Short strings turn up by chance (and are no real token): left alone. */
  private redact(s: string): string {
    return this.token.length >= 8 ? s.split(this.token).join('***') : s;
  }
}

/** fetch rejects with "fetch failed"; the reason is in its cause (ECONNREFUSED 127.0.0.1:8080, ...). */
function cause(e: unknown): string {
  const c = (e as { cause?: { code?: string; message?: string } })?.cause;
  if (c?.message) return c.message;
  if (c?.code) return c.code;
  return e instanceof Error ? e.message : String(e);
}
