/**
 * The devices a fleet needs, and their secrets: from a credentials file, and
 * the rest registered through the operator API with a token (Particle's
 * device import, `POST /v1/products/:product/devices`, which in Flotilla
 * answers each new device's secret once). New credentials are written back
 * to the file, so the next run brings the same devices back.
 *
 * Everything that can be wrong (the token, the product, the file) is found
 * here, before any device starts.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { isDeviceId } from '@flotilla/protocol';

export interface DeviceCredentials {
  id: string;
  secret: string;
}

export interface CredentialsFile {
  /** The product's id and slug (a file serves one product). */
  product: { id: number; slug: string };
  devices: DeviceCredentials[];
}

export interface ProvisionOptions {
  /** The operator API, e.g. http://127.0.0.1:8080. */
  api: string;
  /** A token allowed settings.view and device.add on the product (null: the file must hold enough devices). */
  token: string | null;
  /** The product's slug or id. */
  product: string;
  count: number;
  /** Credentials file to read and extend (null: none). */
  file: string | null;
  /** Aborted: the API call under way ends, and provisioning with a ProvisionError (devices registered so far are in the file). */
  signal?: AbortSignal;
  /** How long one API call may take (default API_TIMEOUT_MS). */
  timeoutMs?: number;
}

export class ProvisionError extends Error {
  /** `status`: the operator API's refusal, when it was one (401: the token). */
  constructor(message: string, readonly status?: number) {
    super(message);
    this.name = 'ProvisionError';
  }
}

/** The import route takes at most this many ids at once. */
const BATCH = 1000;

/** How long one API call may take: a bridge that accepts the connection and never answers must not hang the simulator. */
export const API_TIMEOUT_MS = 30_000;

/** The credentials file, when there is one; refused when it holds another product's devices. */
function saved(o: Pick<ProvisionOptions, 'file' | 'product'>): CredentialsFile | null {
  const c = o.file && existsSync(o.file) ? readCredentials(o.file) : null;
  if (c && c.product.slug !== o.product && String(c.product.id) !== o.product) throw new ProvisionError(`${o.file} holds devices of product "${c.product.slug}", not "${o.product}"`);
  return c;
}

async function lookUp(api: Api, product: string): Promise<CredentialsFile['product']> {
  const found = (await api.call('GET', '/v1/products/' + encodeURIComponent(product))) as { product: { id: number; slug: string } };
  return { id: found.product.id, slug: found.product.slug };
}

/** The product's id and slug, from the credentials file when it has them, else from the API (with the token). */
export async function productOf(o: Omit<ProvisionOptions, 'count'>): Promise<CredentialsFile['product']> {
  const c = saved(o);
  if (c) return c.product;
  if (!o.token) throw new ProvisionError(`the id of product "${o.product}" is needed and ${o.file ? o.file + ' does not exist' : 'no credentials file was given'}; give a token (--token or FLOTILLA_TOKEN) to look it up`);
  return lookUp(new Api(o.api, o.token, o.signal, o.timeoutMs), o.product);
}

export async function provision(o: ProvisionOptions): Promise<CredentialsFile> {
  const have = saved(o);
  if (have && have.devices.length >= o.count) return { product: have.product, devices: have.devices.slice(0, o.count) };
  if (!o.token)
    throw new ProvisionError(`${o.count} devices are needed and ${o.file ? o.file + ' holds ' + (have ? have.devices.length : 0) : 'no credentials file was given'}; give a token (--token or FLOTILLA_TOKEN) to register the others`);

  const api = new Api(o.api, o.token, o.signal, o.timeoutMs);
  // A stop does not cut a registration short: the bridge registers the batch whatever, and its secrets
  // are answered once. The batch is taken and saved, then the stop is heeded (it left devices registered
  // that could never connect, their secrets lost).
  const registrar = new Api(o.api, o.token, undefined, o.timeoutMs);
  const out: CredentialsFile = { product: await lookUp(api, o.product), devices: have ? have.devices.slice() : [] };
  // Written once before anything is registered: a file that cannot be written is said now, not after the bridge has made devices whose secrets then have nowhere to go.
  if (o.file) save(o.file, out);
  while (out.devices.length < o.count) {
    if (o.signal?.aborted) throw new ProvisionError(`stopped while registering devices: ${out.devices.length} registered${o.file ? ', saved in ' + o.file : ''}`);
    const ids = Array.from({ length: Math.min(BATCH, o.count - out.devices.length) }, () => randomBytes(12).toString('hex'));
    const r = (await registrar.call('POST', '/v1/products/' + out.product.id + '/devices', { ids })) as { secrets?: Record<string, string> };
    for (const id of ids) {
      const secret = r.secrets?.[id];
      if (!secret) throw new ProvisionError(`the bridge did not register device ${id} (no secret in its answer): is it a Flotilla bridge?`);
      out.devices.push({ id, secret });
    }
    if (o.file) save(o.file, out);
  }
  return out;
}

/** writeCredentials, its failure said as the simulator says what went wrong. */
function save(file: string, c: CredentialsFile): void {
  try {
    writeCredentials(file, c);
  } catch (e) {
    throw new ProvisionError(`cannot write the credentials file ${file}: ${(e as Error).message}`);
  }
}

/** Reads and checks a credentials file. */
export function readCredentials(file: string): CredentialsFile {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ProvisionError(`credentials file ${file}: ${(e as Error).message}`);
  }
  const bad = (what: string): never => {
    throw new ProvisionError(`credentials file ${file}: ${what} (expected {"product": {"id", "slug"}, "devices": [{"id", "secret"}]})`);
  };
  const f = json as CredentialsFile;
  if (typeof f !== 'object' || f === null || typeof f.product !== 'object' || f.product === null) return bad('no product');
  if (!Number.isInteger(f.product.id) || typeof f.product.slug !== 'string') bad('product needs a numeric id and a slug');
  if (!Array.isArray(f.devices)) bad('devices must be a list');
  f.devices.forEach((d, i) => {
    if (typeof d !== 'object' || d === null || !isDeviceId(d.id)) bad(`devices[${i}].id is not a device id (24 lowercase hex characters)`);
    if (typeof d.secret !== 'string' || d.secret === '') bad(`devices[${i}].secret is missing`);
  });
  return { product: { id: f.product.id, slug: f.product.slug }, devices: f.devices.map((d) => ({ id: d.id, secret: d.secret })) };
}

/** Replaces the file atomically; only its owner may read it (it holds secrets). */
export function writeCredentials(file: string, c: CredentialsFile): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file + '.tmp', JSON.stringify(c, null, 1) + '\n', { mode: 0o600 });
  renameSync(file + '.tmp', file);
}

/**
 * A signal that aborts when `stop` does or after `ms` (a TimeoutError), held by a timer of our own:
 * on Node 20, AbortSignal.any over AbortSignal.timeout loses the timeout once a garbage collection
 * runs (nodejs/node#57736), and a request to an API that never answers then waited for good.
 */
function deadline(stop: AbortSignal | undefined, ms: number): { signal: AbortSignal; done(): void } {
  const c = new AbortController();
  const timer = setTimeout(() => c.abort(new DOMException('no answer within ' + ms + ' ms', 'TimeoutError')), ms);
  const onStop = () => c.abort(stop!.reason);
  if (stop?.aborted) onStop();
  else stop?.addEventListener('abort', onStop, { once: true });
  return {
    signal: c.signal,
    done() {
      clearTimeout(timer);
      stop?.removeEventListener('abort', onStop);
    },
  };
}

/** The operator API, as far as the simulator uses it; its refusals become ProvisionErrors that say what to do. */
class Api {
  constructor(
    private readonly base: string,
    private readonly token: string,
    private readonly signal?: AbortSignal,
    private readonly timeoutMs = API_TIMEOUT_MS,
  ) {}

  async call(method: string, path: string, body?: unknown): Promise<unknown> {
    const limit = deadline(this.signal, this.timeoutMs);
    let res: Response;
    let text: string;
    try {
      res = await fetch(this.base.replace(/\/$/, '') + path, {
        method,
        headers: { authorization: 'Bearer ' + this.token, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
        signal: limit.signal,
      });
      text = await res.text();
    } catch (e) {
      throw this.failed(e, method, path);
    } finally {
      limit.done();
    }
    let json: Record<string, unknown> = {};
    try {
      json = text ? JSON.parse(text) : {};
    } catch {
      // Not JSON: said below with the status.
    }
    if (res.ok) return json;
    const said = String(json.error_description ?? json.error ?? text.slice(0, 200));
    if (res.status === 401) throw new ProvisionError(`the bridge refused the token (401: ${said}); make one with \`particle token create\` or POST /oauth/token`, 401);
    if (res.status === 403) throw new ProvisionError(`the token may not ${method} ${path} (403: ${said}); it needs settings.view and device.add on the product`);
    if (res.status === 404) throw new ProvisionError(`${method} ${path}: not found (404: ${said}); check the product's slug or id`);
    throw new ProvisionError(`${method} ${path} failed with ${res.status}: ${said}`);
  }

  /** A call that got no whole answer: stopped, timed out, or the API not reached. */
  private failed(e: unknown, method: string, path: string): ProvisionError {
    if (this.signal?.aborted) return new ProvisionError(`stopped while calling the operator API (${method} ${path})`);
    if ((e as Error).name === 'TimeoutError') return new ProvisionError(`no answer from the operator API at ${this.base} within ${this.timeoutMs / 1000} s (${method} ${path})`);
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    return new ProvisionError(`cannot reach the operator API at ${this.base}: ${cause?.code ?? cause?.message ?? (e as Error).message}`);
  }
}
