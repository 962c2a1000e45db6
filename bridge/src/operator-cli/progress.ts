/**
 * A rollout as one line of text: pure functions of the counts, so the watch
 * loop only decides when to draw and tests need no bridge.
 *
 *   rollout 3 v2 running [#########x..-----] 12/20 done, 1 failed, 2 updating, 5 pending
 *
 * Devices an aborted rollout never reached have no cell: the bar stays blank there.
 */
import type { Rollout, RolloutCounts } from './api-types.js';

/** One cell character per kind of device, in bar order. */
export const BAR_CELLS = { done: '#', failed: 'x', in_progress: '.', pending: '-' } as const;
const ORDER = ['done', 'failed', 'in_progress', 'pending'] as const;

export const DEFAULT_BAR_WIDTH = 20;

/**
 * The bar's cells, `width` of them: each kind gets its share (largest
 * remainders, so the cells add up exactly), and a kind with any device gets
 * at least one cell, so one failure in a thousand still shows and the bar is
 * all `#` only when every device is done. No devices: an empty (blank) bar.
 */
export function progressBar(c: RolloutCounts, width = DEFAULT_BAR_WIDTH): string {
  const counts = ORDER.map((k) => Math.max(0, c[k]));
  const sum = counts.reduce((a, b) => a + b, 0);
  const of = Math.max(sum, c.total);
  if (of === 0 || width <= 0) return ' '.repeat(Math.max(0, width));
  const exact = counts.map((n) => (n * width) / of);
  const cells = exact.map(Math.floor);
  let free = Math.round((sum * width) / of) - cells.reduce((a, b) => a + b, 0);
  // Largest remainders first; ties go to the earlier kind.
  const byRemainder = exact.map((x, i) => ({ i, r: x - Math.floor(x) })).sort((a, b) => b.r - a.r || a.i - b.i);
  for (const { i } of byRemainder) {
    if (free <= 0) break;
    cells[i]++;
    free--;
  }
  for (let i = 0; i < cells.length; i++) {
    if (counts[i] === 0 || cells[i] > 0) continue;
    const widest = cells.indexOf(Math.max(...cells));
    if (cells[widest] <= 1) break; // narrower than the kinds to show: keep what fits
    cells[widest]--;
    cells[i] = 1;
  }
  const bar = ORDER.map((k, i) => BAR_CELLS[k].repeat(cells[i])).join('');
  return bar + ' '.repeat(width - bar.length);
}

/** Devices still to update: the rollout is complete when this is 0. */
export function remaining(c: RolloutCounts): number {
  return c.pending + c.in_progress;
}

export function countsText(c: RolloutCounts): string {
  const aborted = c.aborted ? `, ${c.aborted} not updated (aborted)` : '';
  return `${c.done}/${c.total} done, ${c.failed} failed, ${c.in_progress} updating, ${c.pending} pending${aborted}`;
}

/** The status line: id, version, state, bar, counts; the reason of a rollout that is not running. */
export function rolloutLine(r: Pick<Rollout, 'id' | 'version' | 'state' | 'reason' | 'devices'>, width = DEFAULT_BAR_WIDTH): string {
  const why = r.state !== 'running' && r.reason ? ` (${r.reason})` : '';
  return `rollout ${r.id} v${r.version} ${r.state} [${progressBar(r.devices, width)}] ${countsText(r.devices)}${why}`;
}
