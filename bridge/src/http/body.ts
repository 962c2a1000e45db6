/** Request bodies: JSON or form-encoded, read up to a limit (413 past it). */
import type { IncomingMessage } from 'node:http';
import { ApiError } from './errors.js';

export type Fields = Record<string, unknown>;

export async function readBody(req: IncomingMessage, limit: number): Promise<Fields> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) throw ApiError.of(413, 'Request body is larger than ' + limit + ' bytes');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw ApiError.of(413, 'Request body is larger than ' + limit + ' bytes');
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text === '') return {};
  const type = String(req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type === 'application/json') {
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
      return parsed as Fields;
    } catch {
      throw ApiError.of(400, 'The body is not a JSON object');
    }
  }
  if (type === 'application/x-www-form-urlencoded' || type === '') return Object.fromEntries(new URLSearchParams(text));
  throw ApiError.of(415, 'Send application/json or application/x-www-form-urlencoded');
}

/** A required string field, or a 400 naming it. */
export function field(f: Fields, name: string, oauth = false): string {
  const v = f[name];
  if (typeof v === 'string' && v.length > 0) return v;
  throw oauth ? ApiError.oauth(400, 'invalid_request', 'The ' + name + ' field is required') : ApiError.of(400, 'The ' + name + ' field is required');
}
