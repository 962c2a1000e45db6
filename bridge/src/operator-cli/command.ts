/**
 * What a command is: its words, arguments and options (which make its help
 * and its parser), and what it does with a client and the output. Commands
 * return the exit code; they throw UsageError, ApiFailure or Unreachable and
 * main turns those into messages and codes in one place.
 */
import type { ApiClient } from './client.js';

/** Where the CLI writes: process.stdout/stderr, or buffers in tests. */
export interface Io {
  /** On a TTY, `rollout status --watch` redraws one line in place. */
  stdout: { write(s: string): unknown; isTTY?: boolean };
  stderr: { write(s: string): unknown };
}

export interface OptionSpec {
  type: 'string' | 'boolean';
  /** The value's placeholder in help (string options). */
  value?: string;
  /** Shown as `--name VALUE` in the synopsis rather than under [options]. */
  required?: boolean;
  help: string;
}

export type Values = Record<string, string | boolean | undefined>;

export interface Context {
  api: ApiClient;
  io: Io;
  /** --json: print the API's answer as JSON instead of text. */
  json: boolean;
  /** Writes a line to stdout. */
  out(line: string): void;
  /** Writes a value as JSON to stdout. */
  print(value: unknown): void;
}

export interface Command {
  /** The words that name it: 'firmware upload'. */
  name: string;
  summary: string;
  /** Positional arguments in order; optional ones in brackets: ['[ID]']. */
  args: string[];
  options: Record<string, OptionSpec>;
  /** More help text, after the options. */
  notes?: string;
  run(ctx: Context, values: Values, args: string[]): Promise<number>;
}

/** A command line that cannot be run: exit 2 with the usage of the command, or of the group (`firmware`) it names. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly command: Command | null = null,
    readonly group: string | null = null,
  ) {
    super(message);
  }
}

export const EXIT = {
  ok: 0,
  /** The API refused, failed or could not be reached. */
  failed: 1,
  usage: 2,
  /** rollout status --watch: the rollout stopped running (paused, aborted, superseded). */
  stopped: 3,
  /** rollout status --watch: still running when --timeout ran out. */
  timeout: 4,
} as const;

/** Anything else that stops a command (a file it cannot read, no rollout to show): exit 1 with the message. */
export class Failure extends Error {}
