/**
 * flotilla, the operator CLI: `main(argv, env, io)` parses the command line,
 * runs one command against the bridge's HTTP API and returns the exit code.
 * It never exits the process and reads nothing global, so tests call it in
 * process; entry.ts is the process wiring.
 */
import { parseCommandLine, stringOption } from './args.js';
import { ApiClient, ApiFailure, headerSafe, Unreachable } from './client.js';
import { EXIT, Failure, UsageError, type Command, type Context, type Io } from './command.js';
import { flash } from './flash.js';
import { firmwareList, firmwareRelease, firmwareUpload } from './firmware.js';
import { rolloutAbort, rolloutPause, rolloutResume, rolloutStatus } from './rollout.js';
import { commandHelp, helpFor, overview } from './usage.js';

export type { Io } from './command.js';

export const commands: readonly Command[] = [firmwareUpload, firmwareList, firmwareRelease, flash, rolloutStatus, rolloutPause, rolloutResume, rolloutAbort];

export const DEFAULT_API = 'http://127.0.0.1:8080';

export async function main(argv: readonly string[], env: Readonly<Record<string, string | undefined>>, io: Io): Promise<number> {
  const fail = (message: string) => io.stderr.write(`flotilla: ${message}\n`);
  try {
    const parsed = parseCommandLine([...argv], commands);
    if (parsed.kind === 'help') {
      const text = helpFor(parsed.topic, commands);
      if (text === null) throw new UsageError(`no help for "${parsed.topic.join(' ')}"`);
      io.stdout.write(text);
      return EXIT.ok;
    }
    const { command, values, args } = parsed;
    const token = stringOption(values, 'token') ?? env.FLOTILLA_TOKEN ?? '';
    if (token === '') throw new UsageError('no token: set FLOTILLA_TOKEN or pass --token', command);
    if (!headerSafe(token)) throw new UsageError('the token has characters an HTTP header cannot carry (spaces, newlines?)', command);
    const base = stringOption(values, 'api') ?? (env.FLOTILLA_API || DEFAULT_API);
    if (!/^https?:\/\/[^/]/i.test(base) || !URL.canParse(base)) throw new UsageError(`--api must be an http:// or https:// URL, not "${base}"`, command);
    const json = values.json === true;
    const ctx: Context = {
      api: new ApiClient(base, token),
      io,
      json,
      out: (line) => io.stdout.write(line + '\n'),
      print: (value) => io.stdout.write(JSON.stringify(value, null, 2) + '\n'),
    };
    return await command.run(ctx, values, args);
  } catch (e) {
    if (e instanceof UsageError) {
      fail(e.message);
      io.stderr.write('\n' + (e.command ? commandHelp(e.command) : ((e.group && helpFor([e.group], commands)) ?? overview(commands))));
      return EXIT.usage;
    }
    if (e instanceof ApiFailure) {
      fail(`${e.message} (HTTP ${e.status})`);
      return EXIT.failed;
    }
    if (e instanceof Unreachable || e instanceof Failure) {
      fail(e.message);
      return EXIT.failed;
    }
    throw e;
  }
}
