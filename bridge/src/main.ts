#!/usr/bin/env -S node --import tsx
/**
 * flotilla-bridge: runs the bridge. Every option has a flag and an
 * environment variable (flags win); see README.md, "Running the bridge".
 */
import { parseArgs } from 'node:util';
import { createBridge, defaultOptions, type BridgeOptions } from './bridge.js';
import { bridgeFlags, bridgeHelp, bridgeOptions, CliError, listening } from './cli.js';

const { values } = parseArgs({ options: { ...bridgeFlags, help: { type: 'boolean', short: 'h' } } });

if (values.help) {
  console.log(`flotilla-bridge [options]\n${bridgeHelp}`);
  process.exit(0);
}

let options: Partial<BridgeOptions>;
try {
  options = bridgeOptions(values);
} catch (e) {
  if (!(e instanceof CliError)) throw e;
  console.error('flotilla-bridge: ' + e.message);
  process.exit(2);
}

const bridge = await createBridge(options);
console.log(['flotilla-bridge is running', ...listening(bridge, options.host ?? defaultOptions.host)].join('\n  '));
if (bridge.generatedOwnerPassword)
  console.log(`\nFirst owner "${options.ownerUsername ?? defaultOptions.ownerUsername}" created with password: ${bridge.generatedOwnerPassword}\n(shown once; set FLOTILLA_OWNER_PASSWORD to choose it)\n`);

// SIGTERM/SIGINT: stop listening, end sessions, close the database (its WAL is checkpointed on close).
let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    bridge.close().then(
      () => process.exit(0),
      (e) => {
        console.error(e);
        process.exit(1);
      },
    );
  });
}
