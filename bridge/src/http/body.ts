/**
 * Request bodies: JSON or form-encoded, read up to a limit (413 past it); or
 * multipart/form-data (firmware uploads, Particle's flash), whose one file is
 * streamed to a temporary file, hashed on the way, never held in memory.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, rmSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import type { IncomingMessage } from 'node:http';
import busboy from 'busboy';
import { ApiError } from './errors.js';

export type Fields = Record<string, unknown>;

/** The file of a multipart body, as written to disk. The app deletes it after the response unless a handler moved it. */
export interface Upload {
  path: string;
  /** The name the client gave it. */
  filename: string;
  size: number;
  /** SHA-256 of the bytes, lowercase hex. */
  sha256: string;
}

/**
 * The uploads this module wrote. A JSON body can hold an object of the same
 * shape, naming any path on the server (`{"file": {"path": "/etc/passwd"}}`):
 * only objects made here are files a client sent.
 */
const written = new WeakSet<object>();

/** A file this request uploaded as multipart, and nothing else that looks like one. */
export function isUpload(v: unknown): v is Upload {
  return typeof v === 'object' && v !== null && written.has(v);
}

export interface UploadOptions {
  /** Where the file is written. */
  dir: string;
  /** Largest file accepted, bytes (413 past it). */
  limit: number;
  /** Called with each file written, so the app can remove it after the response. */
  written(path: string): void;
}

/**
 * The request's body as fields. `reading` is called once the body is known to be worth reading (its type
 * taken, its declared length within the limits), just before the first byte is read: the app answers a
 * client that waits on `Expect: 100-continue` there, so a refused upload is never sent at all.
 */
/** Whether a request's body is multipart (an upload, maybe large): read only once its sender and its action are known. */
export function isMultipart(headers: IncomingMessage['headers']): boolean {
  return /^multipart\//i.test(String(headers['content-type'] ?? ''));
}

export async function readBody(req: IncomingMessage, limit: number, upload?: UploadOptions, reading: () => void = () => undefined): Promise<Fields> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (/^multipart\/form-data/i.test(String(req.headers['content-type'] ?? ''))) {
    if (!upload) throw ApiError.of(415, 'This request takes application/json or application/x-www-form-urlencoded, not a file');
    if (declared > multipartMost(limit, upload.limit)) throw ApiError.of(413, 'The file is larger than ' + upload.limit + ' bytes');
    return readMultipart(req, limit, upload, reading);
  }
  if (declared > limit) throw ApiError.of(413, 'Request body is larger than ' + limit + ' bytes');
  reading();
  const text = (await readAll(req, limit)).toString('utf8');
  if (text === '') return {};
  const type = String(req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type === 'application/json') {
    if (nestedDeeper(text, MAX_JSON_DEPTH)) throw ApiError.of(400, 'The JSON body is nested deeper than ' + MAX_JSON_DEPTH + ' levels');
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
      return parsed as Fields;
    } catch {
      throw ApiError.of(400, 'The body is not a JSON object');
    }
  }
  if (type === 'application/x-www-form-urlencoded' || type === '') return formFields(new URLSearchParams(text));
  throw ApiError.of(415, 'Send application/json or application/x-www-form-urlencoded');
}

/**
 * The whole body, up to `limit` bytes. Past it: 413, the rest left unread (the request paused) and the
 * connection closed after the answer (destroying the request would reset the socket before the 413 is
 * written). Listeners rather than `for await`: an async iterator per request costs a tenth of a small
 * call's time in the HTTP layer.
 */
function readAll(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (e: ApiError | null) => {
      req.off('data', data).off('end', end).off('error', cut).off('close', cut);
      if (e === null) resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
      else reject(e);
    };
    const data = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
      else {
        req.pause();
        done(ApiError.of(413, 'Request body is larger than ' + limit + ' bytes', { connection: 'close' }));
      }
    };
    const end = () => done(null);
    // The client hung up mid-body ('aborted', ECONNRESET): its doing, not the bridge's error.
    const cut = () => done(ApiError.of(400, 'The request body was cut off'));
    if (req.readableEnded) return resolve(Buffer.alloc(0));
    if (req.destroyed) return cut();
    req.on('data', data).on('end', end).on('error', cut).on('close', cut);
  });
}

/**
 * A form's fields as a multipart body's are read: a name ending in [] or
 * given twice makes a list (groups[]=a&groups[]=b; before, all but the last
 * were dropped without a word).
 */
function formFields(params: URLSearchParams): Fields {
  const fields: Fields = {};
  for (const [name, value] of params) addField(fields, name, value);
  return fields;
}

/** One text field into `fields`: a name ending in [] or repeated makes a list, as Particle's clients send groups. */
function addField(fields: Fields, name: string, value: string): void {
  const key = name.endsWith('[]') ? name.slice(0, -2) : name;
  // Own properties only, set as data: a field named constructor or __proto__ is a field, nothing of Object's.
  const had = Object.hasOwn(fields, key);
  const next = !name.endsWith('[]') && !had ? value : [...(Array.isArray(fields[key]) ? (fields[key] as unknown[]) : had ? [fields[key]] : []), value];
  Object.defineProperty(fields, key, { value: next, enumerable: true, writable: true, configurable: true });
}

/**
 * Objects and lists within one another at most this deep in a JSON body. No
 * field of the API needs more than a few levels; what is kept and later walked
 * (a webhook's JSON template, product settings) is walked by recursion and
 * written by JSON.stringify, which overflow the stack a few thousand levels
 * down, so a body deeper than any use is refused before it is parsed.
 */
export const MAX_JSON_DEPTH = 64;

/** Whether the JSON text nests objects and lists deeper than `max` (strings skipped; no parse, no recursion). */
export function nestedDeeper(text: string, max: number): boolean {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // A string: skip to its closing quote, past escapes.
      for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++;
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

/** A required string field, or a 400 naming it. */
export function field(f: Fields, name: string, oauth = false): string {
  const v = f[name];
  if (typeof v === 'string' && v.length > 0) return v;
  throw oauth ? ApiError.oauth(400, 'invalid_request', 'The ' + name + ' field is required') : ApiError.of(400, 'The ' + name + ' field is required');
}

/**
 * multipart/form-data: text fields (a name ending in [] or repeated makes a
 * list, as Particle's clients send groups) and at most one file, streamed to
 * disk. A malformed body, a second file or one past the limit is refused and
 * the partial file removed.
 */
function readMultipart(req: IncomingMessage, fieldLimit: number, o: UploadOptions, reading: () => void): Promise<Fields> {
  return new Promise<Fields>((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({ headers: req.headers, limits: { files: 1, fileSize: o.limit, fieldSize: fieldLimit, fields: MULTIPART_PARTS - 1, parts: MULTIPART_PARTS } });
    } catch (e) {
      return reject(ApiError.of(400, 'Malformed multipart body: ' + (e as Error).message));
    }
    const fields: Fields = {};
    let failed: ApiError | null = null;
    let writing: Promise<void> | null = null;
    let file: { path: string; out: WriteStream } | null = null;
    const fail = (e: ApiError) => {
      if (failed) return;
      failed = e;
      req.unpipe(parser);
      req.resume();
      if (!file) return reject(e);
      // The partial file goes before the answer, once its stream has closed (a removal while it
      // was still opening left it on disk, and its descriptor open): nothing of a refused upload stays.
      const { path, out } = file;
      const removed = () => {
        rmSync(path, { force: true });
        reject(e);
      };
      if (out.closed) removed();
      else {
        out.once('close', removed);
        out.destroy();
      }
    };
    // The text fields together keep to the body limit, as any other body (100 fields of it each were 100 MB in memory).
    let fieldBytes = 0;
    parser.on('field', (name, value, info) => {
      if (info.valueTruncated) return fail(ApiError.of(413, 'Field ' + name + ' is larger than ' + fieldLimit + ' bytes'));
      fieldBytes += Buffer.byteLength(name) + Buffer.byteLength(value);
      if (fieldBytes > fieldLimit) return fail(ApiError.of(413, 'The text fields are larger than ' + fieldLimit + ' bytes together'));
      addField(fields, name, value);
    });
    parser.on('file', (name, stream, info) => {
      if (writing) {
        stream.resume();
        return fail(ApiError.of(400, 'Send one file'));
      }
      mkdirSync(o.dir, { recursive: true });
      const path = join(o.dir, randomBytes(12).toString('hex') + '.part');
      o.written(path);
      const hash = createHash('sha256');
      let size = 0;
      const out = createWriteStream(path, { mode: 0o600 });
      file = { path, out };
      stream.on('data', (b: Buffer) => {
        size += b.length;
        hash.update(b);
      });
      stream.on('limit', () => fail(ApiError.of(413, 'The file is larger than ' + o.limit + ' bytes')));
      // A body cut off mid-file: the part errors and the file is never finished.
      stream.on('error', (e: Error) => {
        out.destroy();
        fail(ApiError.of(400, 'Malformed multipart body: ' + e.message));
      });
      stream.pipe(out);
      writing = new Promise<void>((done, bad) => {
        out.on('finish', () => done());
        out.on('error', bad);
        stream.on('error', bad);
      }).then(() => {
        const upload: Upload = { path, filename: info.filename ?? name, size, sha256: hash.digest('hex') };
        written.add(upload);
        fields[name] = upload;
      });
      // Handled at 'close' (or already answered by fail): not an unhandled rejection meanwhile.
      writing.catch(() => undefined);
    });
    parser.on('filesLimit', () => fail(ApiError.of(400, 'Send one file')));
    parser.on('partsLimit', () => fail(ApiError.of(400, 'Too many parts in the multipart body')));
    parser.on('fieldsLimit', () => fail(ApiError.of(400, 'Too many fields in the multipart body')));
    parser.on('error', (e: Error) => fail(ApiError.of(400, 'Malformed multipart body: ' + e.message)));
    parser.on('close', () => {
      if (failed) return;
      (writing ?? Promise.resolve()).then(
        () => (failed ? undefined : resolve(fields)),
        (e: Error) => fail(ApiError.of(500, 'The upload could not be written: ' + e.message)),
      );
    });
    req.on('aborted', () => fail(ApiError.of(400, 'The upload was cut off')));
    reading();
    req.pipe(parser);
  });
}

/**
 * The longest multipart body that can hold what readMultipart takes: the file, the text fields, and for
 * each of its parts the largest headers busboy reads (16 KB) and a boundary line (at most 70 characters
 * and its dashes and line ends). A body declared longer is refused unread (only a preamble or epilogue,
 * which busboy skips and no client sends, could make it fit).
 */
function multipartMost(fieldLimit: number, fileLimit: number): number {
  return fileLimit + fieldLimit + MULTIPART_PARTS * (16 * 1024 + 80) + 80;
}

/** Parts in a multipart body: the file and up to 100 text fields. */
const MULTIPART_PARTS = 101;

/** Removes files a request uploaded and nothing kept. */
export function removeUploads(paths: readonly string[]): void {
  for (const p of paths) rmSync(p, { force: true });
}

/** A boolean field as JSON or a form sends it (true, "true", "1", 1; false, "false", "0", 0), or a 400 naming it. */
export function bool(v: unknown, name: string): boolean {
  if (v === true || v === 'true' || v === '1' || v === 1) return true;
  if (v === false || v === 'false' || v === '0' || v === 0) return false;
  throw ApiError.of(400, name + ' must be true or false');
}

/** An optional flag: absent, null or empty is false; anything else as `bool`. */
export function flag(v: unknown, name: string): boolean {
  return v === undefined || v === null || v === '' ? false : bool(v, name);
}

/**
 * A number as JSON or a form sends it (a number, or decimal digits with an
 * optional sign and fraction); NaN for anything else: not null, true, [7],
 * " " or "0x10", which Number() would take as 0, 1, 7, 0 and 16.
 */
export function numberOf(v: unknown): number {
  if (typeof v === 'number') return v;
  return typeof v === 'string' && /^\s*-?[0-9]+(\.[0-9]+)?\s*$/.test(v) ? Number(v) : NaN;
}

/** An e-mail address, loosely (it names a mailbox, it does not validate one). */
export const EMAIL = /^[^\s@]+@[^\s@]+$/;

/** Particle's shortest password. */
export const PASSWORD_MIN = 8;

/**
 * A username and password chosen through the API (sign-up, account changes, a product's customers):
 * the username (the field `named`) an e-mail address, as Particle's accounts are; the password at
 * least PASSWORD_MIN characters.
 */
export function account(username: unknown, password: unknown, named = 'username'): { username?: string; password?: string } {
  const out: { username?: string; password?: string } = {};
  if (username !== undefined) {
    out.username = text(username, named).trim();
    if (!EMAIL.test(out.username)) throw ApiError.of(400, named + ' must be an e-mail address');
  }
  if (password !== undefined) {
    out.password = text(password, 'password');
    if (out.password.length < PASSWORD_MIN) throw ApiError.of(400, 'password must be at least ' + PASSWORD_MIN + ' characters');
  }
  return out;
}

/** A text field: a string, or a number or boolean as its text (JSON clients send them so); an object or list is a 400 naming it. */
export function text(v: unknown, name: string): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw ApiError.of(400, name + ' must be a string');
}
