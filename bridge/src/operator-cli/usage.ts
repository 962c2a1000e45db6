/** Help text, made from the commands' own descriptions so it cannot drift from the parser. */
import { GLOBAL_OPTIONS } from './args.js';
import type { Command, OptionSpec } from './command.js';

function optionLine(name: string, o: OptionSpec): string {
  const left = `--${name}${o.value ? ' ' + o.value : ''}`;
  return `  ${left.padEnd(26)}${o.help}`;
}

/** `flotilla firmware upload --product P --version N [options] FILE` */
export function synopsis(c: Command): string {
  const required = Object.entries(c.options).filter(([, o]) => o.required).map(([n, o]) => `--${n}${o.value ? ' ' + o.value : ''}`);
  const more = Object.values(c.options).some((o) => !o.required) ? ['[options]'] : [];
  return ['flotilla', c.name, ...required, ...more, ...c.args].join(' ');
}

export function commandHelp(c: Command): string {
  const lines = [`usage: ${synopsis(c)}`, '', c.summary];
  const own = Object.entries(c.options);
  if (own.length > 0) lines.push('', 'options:', ...own.map(([n, o]) => optionLine(n, o)));
  lines.push('', 'global options:', ...Object.entries(GLOBAL_OPTIONS).map(([n, o]) => optionLine(n, o)));
  if (c.notes) lines.push('', c.notes);
  return lines.join('\n') + '\n';
}

/** Every command, or those of one group (`rollout`). */
export function overview(commands: readonly Command[], group: string | null = null): string {
  const width = Math.max(...commands.map((c) => c.name.length)) + 2;
  return [
    group ? `usage: flotilla ${group} <command> [options]` : 'usage: flotilla <command> [options]',
    '',
    ...(group ? [] : ['The Flotilla operator CLI: firmware, flashing and rollouts on a bridge, over its HTTP API.', '']),
    'commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    '',
    'global options:',
    ...Object.entries(GLOBAL_OPTIONS).map(([n, o]) => optionLine(n, o)),
    '',
    "`flotilla help <command>` or `flotilla <command> --help` shows a command's options.",
    'Exit codes: 0 ok, 1 the API refused or could not be reached, 2 usage,',
    '3 a watched rollout stopped (paused, aborted, superseded), 4 --timeout ran out.',
  ].join('\n') + '\n';
}

/** Help for the words after `help`: a command, a group (`firmware`), or everything. */
export function helpFor(topic: string[], commands: readonly Command[]): string | null {
  if (topic.length === 0) return overview(commands);
  const exact = commands.find((c) => c.name === topic.join(' '));
  if (exact) return commandHelp(exact);
  const group = commands.filter((c) => c.name.startsWith(topic[0] + ' ') || c.name === topic[0]);
  return group.length > 0 ? overview(group, topic[0]) : null;
}
