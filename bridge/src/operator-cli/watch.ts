/**
 * `rollout status --watch`: polls one rollout until it is complete (nothing
 * pending or updating: exit 0) or stops running (paused, aborted,
 * superseded: exit 3, with its reason), or --timeout runs out (exit 4). On a
 * TTY the line is redrawn in place; otherwise a line is printed only when it
 * changes, so logs of CI jobs stay short.
 */
import type { Rollout } from './api-types.js';
import { EXIT, type Io } from './command.js';
import { countsText, remaining, rolloutLine } from './progress.js';

export interface WatchOptions {
  /** Between polls. */
  intervalMs: number;
  /** Give up after this long; null waits as long as it takes. */
  timeoutMs: number | null;
  /** One compact JSON object per change, instead of the line. */
  json: boolean;
}

/** Where a rollout stands, for the watch: checked in this order, since a stopped rollout's counts shrink to nothing. */
export function outcome(r: Pick<Rollout, 'state' | 'devices'>): 'stopped' | 'complete' | 'running' {
  if (r.state !== 'running') return 'stopped';
  return remaining(r.devices) === 0 ? 'complete' : 'running';
}

/** Draws the status line: in place on a TTY, else a new line when it changed. */
class Line {
  private last: string | null = null;
  private open = false;

  constructor(private readonly io: Io) {}

  draw(line: string): void {
    if (this.io.stdout.isTTY) {
      // \r back to the start, the line, then erase what a longer earlier line left.
      this.io.stdout.write('\r' + line + '\x1b[K');
      this.open = true;
    } else if (line !== this.last) this.io.stdout.write(line + '\n');
    this.last = line;
  }

  /** Ends a line left open on a TTY, before anything else is written. */
  end(): void {
    if (this.open) this.io.stdout.write('\n');
    this.open = false;
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function watchRollout(poll: () => Promise<Rollout>, io: Io, o: WatchOptions): Promise<number> {
  const deadline = o.timeoutMs === null ? Infinity : Date.now() + o.timeoutMs;
  const line = new Line(io);
  let lastJson = '';
  for (;;) {
    const r = await poll();
    const now = outcome(r);
    if (o.json) {
      // Compared by its line, so updated_at alone does not print again.
      const key = rolloutLine(r);
      if (key !== lastJson) io.stdout.write(JSON.stringify(r) + '\n');
      lastJson = key;
    } else line.draw(rolloutLine(r));
    if (now !== 'running') {
      line.end();
      if (!o.json) {
        if (now === 'complete') io.stdout.write(`rollout ${r.id} complete: ${countsText(r.devices)}\n`);
        else io.stdout.write(`rollout ${r.id} ${r.state}: ${r.reason ?? 'no reason given'}\n`);
      }
      return now === 'complete' ? EXIT.ok : EXIT.stopped;
    }
    const left = deadline - Date.now();
    if (left <= 0) {
      line.end();
      io.stderr.write(`flotilla: rollout ${r.id} is still running after --timeout ${o.timeoutMs! / 1000} s\n`);
      return EXIT.timeout;
    }
    await sleep(Math.min(o.intervalMs, left));
  }
}
