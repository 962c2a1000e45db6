#!/usr/bin/env -S node --import tsx
/**
 * flotilla-bridge: runs the bridge. Every option has a flag and an
 * environment variable (flags win); see README.md, "Running the bridge".
 */
import { parseArgs } from 'node:util';
import { createBridge, defaultOptions, type BridgeOptions } from './bridge.js';

const { values } = parseArgs({
  options: {
    'data-dir': { type: 'string' },
    host: { type: 'string' },
    'mqtt-port': { type: 'string' },
    'log-level': { type: 'string' },
    'owner-username': { type: 'string' },
    'owner-password': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});

if (values.help) {
  console.log(`flotilla-bridge [options]
  --data-dir DIR         FLOTILLA_DATA_DIR         database and firmware (default ${defaultOptions.dataDir})
  --host ADDR            FLOTILLA_HOST             address to bind (default ${defaultOptions.host})
  --mqtt-port N          FLOTILLA_MQTT_PORT        MQTT over TCP (default ${defaultOptions.mqttPort})
  --log-level L          FLOTILLA_LOG_LEVEL        fatal|error|warn|info|debug|trace|silent (default ${defaultOptions.logLevel})
  --owner-username U     FLOTILLA_OWNER_USERNAME   first owner, created on an empty database (default ${defaultOptions.ownerUsername})
  --owner-password P     FLOTILLA_OWNER_PASSWORD   its password (default: generated, printed once)`);
  process.exit(0);
}

const env = process.env;
const pick = (flag: string | undefined, name: string): string | undefined => flag ?? env[name];
function port(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    console.error(`flotilla-bridge: ${name} must be a port number (0 to 65535), not "${v}"`);
    process.exit(2);
  }
  return n;
}

const options: Partial<BridgeOptions> = {};
const dataDir = pick(values['data-dir'], 'FLOTILLA_DATA_DIR');
if (dataDir) options.dataDir = dataDir;
const host = pick(values.host, 'FLOTILLA_HOST');
if (host) options.host = host;
const mqttPort = port(pick(values['mqtt-port'], 'FLOTILLA_MQTT_PORT'), 'the MQTT port');
if (mqttPort !== undefined) options.mqttPort = mqttPort;
const logLevel = pick(values['log-level'], 'FLOTILLA_LOG_LEVEL');
if (logLevel) options.logLevel = logLevel;
const ownerUsername = pick(values['owner-username'], 'FLOTILLA_OWNER_USERNAME');
if (ownerUsername) options.ownerUsername = ownerUsername;
const ownerPassword = pick(values['owner-password'], 'FLOTILLA_OWNER_PASSWORD');
if (ownerPassword) options.ownerPassword = ownerPassword;

const bridge = await createBridge(options);
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
