#!/usr/bin/env -S node --import tsx
/**
 * flotilla-bridge: runs the bridge. Every option has a flag and an
 * environment variable (flags win); see README.md, "Running the bridge".
 */
import { createBridge, defaultOptions, type Bridge, type BridgeOptions } from './bridge.js';
import { bridgeFlags, bridgeHelp, bridgeOptions, CliError, listening, parseFlags, startFailure } from './cli.js';
import { fdLogOutput } from './log-output.js';

const usage = `flotilla-bridge [options]\n${bridgeHelp}`;

let options: Partial<BridgeOptions>;
try {
  const { values } = parseFlags({ ...bridgeFlags, help: { type: 'boolean', short: 'h' } });
  if (values.help) {
    console.log(usage);
    process.exit(0);
  }
  options = bridgeOptions(values);
} catch (e) {
  if (!(e instanceof CliError)) throw e;
  console.error('flotilla-bridge: ' + e.message + '\n(flotilla-bridge --help lists the options)');
  process.exit(2);
}

// SIGTERM/SIGINT, or standard output closed (`flotilla-bridge | head`, as any Unix
// program whose output is gone): stop listening, end sessions, close the
// database (its WAL is checkpointed on close).
let bridge: Bridge | undefined;
let stopping = false;
function stop(): void {
  if (stopping) return;
  stopping = true;
  // Still starting: closed as soon as it has started (below).
  if (bridge) closeAndExit(bridge);
}
function closeAndExit(b: Bridge): void {
  b.close().then(
    () => process.exit(0),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, stop);
process.stdout.on('error', stop);

try {
  bridge = await createBridge({ ...options, logOutput: fdLogOutput(1, stop) });
} catch (e) {
  // A port in use or not ours to take, a data directory that cannot be written: said plainly.
  const why = startFailure(e, options);
  if (!why) throw e;
  console.error('flotilla-bridge: ' + why);
  process.exit(1);
}
if (stopping) closeAndExit(bridge);
else {
  console.log(['flotilla-bridge is running', ...listening(bridge, options.host ?? defaultOptions.host)].join('\n  '));
  if (bridge.generatedOwnerPassword)
    console.log(`\nFirst owner "${options.ownerUsername ?? defaultOptions.ownerUsername}" created with password: ${bridge.generatedOwnerPassword}\n(shown once; set FLOTILLA_OWNER_PASSWORD to choose it)\n`);
}
