/** `flotilla rollout status|pause|resume|abort`: the rollouts that releases start. */
import type { Rollout } from './api-types.js';
import { intOption, numberOption, stringOption } from './args.js';
import { Failure, UsageError, type Command, type Context, type Values } from './command.js';
import { paths } from './paths.js';
import { rolloutLine } from './progress.js';
import { watchRollout } from './watch.js';

const product = { type: 'string', value: 'P', required: true, help: 'the product, by id or slug' } as const;

function rolloutId(raw: string, command: Command): number {
  const n = /^[0-9]+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`a rollout id is a whole number, not "${raw}"`, command);
  return n;
}

function show(ctx: Context, r: Rollout): void {
  if (ctx.json) ctx.print(r);
  else ctx.out(rolloutLine(r));
}

export const rolloutStatus: Command = {
  name: 'rollout status',
  summary: "Show a rollout's progress (the newest without ID); --watch follows it to the end.",
  args: ['[ID]'],
  options: {
    product,
    watch: { type: 'boolean', help: 'poll until it is complete (exit 0) or stops running (exit 3)' },
    interval: { type: 'string', value: 'MS', help: 'between polls with --watch (default 2000)' },
    timeout: { type: 'string', value: 'S', help: 'with --watch, give up after this many seconds (exit 4; default: never)' },
  },
  notes: 'Bar: # done, x failed, . updating, - pending.',
  async run(ctx, v: Values, [id]) {
    const p = stringOption(v, 'product')!;
    const interval = intOption(v, 'interval', 50, this) ?? 2000;
    const timeout = numberOption(v, 'timeout', this);
    if (!v.watch && (v.interval !== undefined || timeout !== undefined)) throw new UsageError('--interval and --timeout go with --watch', this);
    let first: Rollout;
    if (id !== undefined) first = await ctx.api.get<Rollout>(paths.rollout(p, rolloutId(id, this)));
    else {
      // Newest first.
      const { rollouts } = await ctx.api.get<{ rollouts: Rollout[] }>(paths.rollouts(p));
      if (rollouts.length === 0) throw new Failure(`product ${p} has no rollouts; releasing a version starts one`);
      first = rollouts[0];
    }
    if (!v.watch) {
      show(ctx, first);
      return 0;
    }
    // The same rollout throughout: a newer release supersedes it, and the watch says so.
    let next: Rollout | null = first;
    const poll = async () => {
      const r = next ?? (await ctx.api.get<Rollout>(paths.rollout(p, first.id)));
      next = null;
      return r;
    };
    return watchRollout(poll, ctx.io, { intervalMs: interval, timeoutMs: timeout === undefined ? null : timeout * 1000, json: ctx.json });
  },
};

function action(name: 'pause' | 'resume' | 'abort', summary: string): Command {
  return {
    name: 'rollout ' + name,
    summary,
    args: ['ID'],
    options: { product },
    async run(ctx, v, [id]) {
      const r = await ctx.api.send<Rollout>('PUT', paths.rollout(stringOption(v, 'product')!, rolloutId(id, this)), { action: name });
      show(ctx, r);
      return 0;
    },
  };
}

export const rolloutPause = action('pause', 'Pause a running rollout: updates in flight finish, no new ones start.');
export const rolloutResume = action('resume', 'Resume a paused rollout (failures are counted afresh).');
export const rolloutAbort = action('abort', 'Abort a rollout for good: updates in flight stop.');
