/** Particle's pagination of listings. */

/** `per_page` (1 to 100, default 25) and `page` (from 1) of `items`; `meta.total_pages` as Particle answers it. */
export function paged<T>(q: URLSearchParams, items: readonly T[]): { shown: T[]; meta: { total_pages: number } } {
  const perPage = Math.min(100, Math.max(1, Number(q.get('per_page') ?? 25) || 25));
  const page = Math.max(1, Number(q.get('page') ?? 1) || 1);
  return { shown: items.slice((page - 1) * perPage, page * perPage), meta: { total_pages: Math.max(1, Math.ceil(items.length / perPage)) } };
}
