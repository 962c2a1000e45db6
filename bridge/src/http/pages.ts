/** Particle's pagination of listings. */
import { ApiError } from './errors.js';

/** A whole number from 1 in the query, or `dflt` when absent; 400 for anything else (2.5, -1, "ten"). */
function count(q: URLSearchParams, name: string, dflt: number): number {
  const v = q.get(name);
  if (v === null || v === '') return dflt;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw ApiError.of(400, `${name} must be a whole number from 1`);
  return n;
}

/**
 * `per_page` (1 to 100, default 25; more is 100; `perPage` as Particle's reference writes it, `per_page` as
 * particle-api-js sends it) and `page` (from 1) of `items`; `meta.total_pages` as Particle answers it.
 */
export function paged<T>(q: URLSearchParams, items: readonly T[]): { shown: T[]; meta: { total_pages: number } } {
  const perPage = Math.min(100, count(q, q.has('per_page') ? 'per_page' : 'perPage', 25));
  const page = count(q, 'page', 1);
  return { shown: items.slice((page - 1) * perPage, page * perPage), meta: { total_pages: Math.max(1, Math.ceil(items.length / perPage)) } };
}
