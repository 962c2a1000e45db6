/**
 * The command line: global options anywhere, then a command's words, its
 * options and its arguments. Parsed twice with node:util parseArgs: loosely
 * to find the command among the words, then strictly with that command's
 * options only, so a misplaced option is an error rather than ignored.
 */
import { parseArgs } from 'node:util';
import { UsageError, type Command, type OptionSpec, type Values } from './command.js';

export const GLOBAL_OPTIONS: Record<string, OptionSpec & { short?: string }> = {
  api: { type: 'string', value: 'URL', help: 'the bridge (env FLOTILLA_API, default http://127.0.0.1:8080)' },
  token: { type: 'string', value: 'TOKEN', help: 'an access token (env FLOTILLA_TOKEN; the environment keeps it out of ps)' },
  json: { type: 'boolean', help: "print the API's JSON answer" },
  help: { type: 'boolean', short: 'h', help: 'this help' },
};

export type Parsed =
  | { kind: 'help'; topic: string[] }
  | { kind: 'run'; command: Command; values: Values; args: string[] };

type ParseOptions = Record<string, { type: 'string' | 'boolean'; short?: string }>;

function parserOptions(specs: Record<string, OptionSpec & { short?: string }>): ParseOptions {
  const out: ParseOptions = {};
  for (const [name, s] of Object.entries(specs)) out[name] = s.short ? { type: s.type, short: s.short } : { type: s.type };
  return out;
}

/** The first words of the command line that name a command, or null. */
export function findCommand(words: string[], commands: readonly Command[]): Command | null {
  let best: Command | null = null;
  for (const c of commands) {
    const w = c.name.split(' ');
    if (w.every((x, i) => words[i] === x) && (!best || w.length > best.name.split(' ').length)) best = c;
  }
  return best;
}

export function parseCommandLine(argv: string[], commands: readonly Command[]): Parsed {
  const every: ParseOptions = parserOptions(GLOBAL_OPTIONS);
  for (const c of commands) Object.assign(every, parserOptions(c.options));
  const loose = parseArgs({ args: argv, options: every, strict: false, allowPositionals: true });
  const words = loose.positionals;
  if (words[0] === 'help') return { kind: 'help', topic: words.slice(1) };
  if (loose.values.help === true) return { kind: 'help', topic: words };
  const command = findCommand(words, commands);
  if (!command) {
    if (words.length === 0) throw new UsageError('give a command');
    const group = commands.filter((c) => c.name.startsWith(words[0] + ' '));
    if (group.length > 0) throw new UsageError(`${words[0]} takes one of: ${group.map((c) => c.name.split(' ')[1]).join(', ')}`, null, words[0]);
    throw new UsageError(`unknown command "${words[0]}"`);
  }
  let strict;
  try {
    strict = parseArgs({ args: argv, options: { ...parserOptions(GLOBAL_OPTIONS), ...parserOptions(command.options) }, strict: true, allowPositionals: true });
  } catch (e) {
    // parseArgs's messages name the option; drop its advice about '--' and positionals.
    throw new UsageError((e as Error).message.split('. ')[0].replace(/\.$/, ''), command);
  }
  const args = strict.positionals.slice(command.name.split(' ').length);
  const required = command.args.filter((a) => !a.startsWith('[')).length;
  if (args.length < required) throw new UsageError(`missing ${command.args.slice(args.length).filter((a) => !a.startsWith('[')).join(' ')}`, command);
  if (args.length > command.args.length) throw new UsageError(`unexpected argument "${args[command.args.length]}"`, command);
  for (const [name, o] of Object.entries(command.options)) if (o.required && strict.values[name] === undefined) throw new UsageError(`--${name} is required`, command);
  return { kind: 'run', command, values: strict.values as Values, args };
}

/** A whole number option within bounds, or undefined when not given. */
export function intOption(values: Values, name: string, min: number, command: Command): number | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  const n = typeof v === 'string' && /^[0-9]+$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`--${name} must be a whole number of at least ${min}, not "${v}"`, command);
  return n;
}

/** A positive number option (may have a fraction), or undefined when not given. */
export function numberOption(values: Values, name: string, command: Command, max = Infinity): number | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  if (!Number.isFinite(n) || n <= 0 || n > max) throw new UsageError(`--${name} must be a number above 0${max < Infinity ? ' and at most ' + max : ''}, not "${v}"`, command);
  return n;
}

/** A string option, as parseArgs typed it. */
export function stringOption(values: Values, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

/** A firmware version argument (1 .. 2^32-1, as the bridge takes). */
export function versionOption(values: Values, name: string, command: Command): number | undefined {
  const n = intOption(values, name, 1, command);
  if (n !== undefined && n > 0xffffffff) throw new UsageError(`--${name} must be at most 4294967295`, command);
  return n;
}
