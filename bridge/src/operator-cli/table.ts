import { forTerminal } from '../text.js';

/** Plain-text tables: columns padded to their widest cell, two spaces apart. */
export function table(headers: readonly string[], given: readonly (readonly string[])[]): string {
  // Cells come from the API (titles, names): none drives the terminal.
  const rows = given.map((r) => r.map(forTerminal));
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

/** Bytes for people: 512 B, 61.2 KB, 1.5 MB (1 KB = 1024 B). */
export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}
