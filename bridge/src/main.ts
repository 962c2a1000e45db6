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
    'http-port': { type: 'string' },
    'mqtts-port': { type: 'string' },
    'ws-port': { type: 'string' },
    'wss-port': { type: 'string' },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    'log-level': { type: 'string' },
    'owner-username': { type: 'string' },
    'owner-password': { type: 'string' },
    signup: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});

if (values.help) {
  console.log(`flotilla-bridge [options]
  --data-dir DIR         FLOTILLA_DATA_DIR         database and firmware (default ${defaultOptions.dataDir})
  --host ADDR            FLOTILLA_HOST             address to bind (default ${defaultOptions.host})
  --mqtt-port N          FLOTILLA_MQTT_PORT        MQTT over TCP (default ${defaultOptions.mqttPort})
  --http-port N|off      FLOTILLA_HTTP_PORT        the HTTP API (default ${defaultOptions.httpPort})
  --mqtts-port N|off     FLOTILLA_MQTTS_PORT       MQTT over TLS, device certificates or secrets (default ${defaultOptions.mqttsPort})
  --ws-port N|off        FLOTILLA_WS_PORT          MQTT over WebSocket at /mqtt (default off)
  --wss-port N|off       FLOTILLA_WSS_PORT         MQTT over secure WebSocket at /mqtt (default off)
  --tls-cert FILE        FLOTILLA_TLS_CERT_FILE    server certificate for mqtts/wss, PEM (default: issued by the bridge CA in DATA_DIR/tls)
  --tls-key FILE         FLOTILLA_TLS_KEY_FILE     its key, PEM
  --log-level L          FLOTILLA_LOG_LEVEL        fatal|error|warn|info|debug|trace|silent (default ${defaultOptions.logLevel})
  --owner-username U     FLOTILLA_OWNER_USERNAME   first owner, created on an empty database (default ${defaultOptions.ownerUsername})
  --owner-password P     FLOTILLA_OWNER_PASSWORD   its password (default: generated, printed once)
  --signup on|off        FLOTILLA_SIGNUP           let anyone create an account with POST /v1/users (default off)`);
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

/** A port, or off ("off" or -1): null. */
function optionalPort(v: string | undefined, name: string): number | null | undefined {
  if (v === undefined) return undefined;
  if (v === 'off' || v === '-1') return null;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    console.error(`flotilla-bridge: ${name} must be a port number (0 to 65535) or off, not "${v}"`);
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
const httpPort = optionalPort(pick(values['http-port'], 'FLOTILLA_HTTP_PORT'), 'the HTTP port');
if (httpPort !== undefined) options.httpPort = httpPort;
const mqttsPort = optionalPort(pick(values['mqtts-port'], 'FLOTILLA_MQTTS_PORT'), 'the MQTTS port');
if (mqttsPort !== undefined) options.mqttsPort = mqttsPort;
const wsPort = optionalPort(pick(values['ws-port'], 'FLOTILLA_WS_PORT'), 'the WebSocket port');
if (wsPort !== undefined) options.wsPort = wsPort;
const wssPort = optionalPort(pick(values['wss-port'], 'FLOTILLA_WSS_PORT'), 'the secure WebSocket port');
if (wssPort !== undefined) options.wssPort = wssPort;
const tlsCertFile = pick(values['tls-cert'], 'FLOTILLA_TLS_CERT_FILE');
if (tlsCertFile) options.tlsCertFile = tlsCertFile;
const tlsKeyFile = pick(values['tls-key'], 'FLOTILLA_TLS_KEY_FILE');
if (tlsKeyFile) options.tlsKeyFile = tlsKeyFile;
if (!options.tlsCertFile !== !options.tlsKeyFile) {
  console.error('flotilla-bridge: --tls-cert and --tls-key (FLOTILLA_TLS_CERT_FILE, FLOTILLA_TLS_KEY_FILE) go together');
  process.exit(2);
}
const logLevel = pick(values['log-level'], 'FLOTILLA_LOG_LEVEL');
if (logLevel) options.logLevel = logLevel;
const ownerUsername = pick(values['owner-username'], 'FLOTILLA_OWNER_USERNAME');
if (ownerUsername) options.ownerUsername = ownerUsername;
const ownerPassword = pick(values['owner-password'], 'FLOTILLA_OWNER_PASSWORD');
if (ownerPassword) options.ownerPassword = ownerPassword;

const signup = pick(values.signup, 'FLOTILLA_SIGNUP');
if (signup !== undefined) {
  if (signup !== 'on' && signup !== 'off') {
    console.error(`flotilla-bridge: --signup (FLOTILLA_SIGNUP) is on or off, not "${signup}"`);
    process.exit(2);
  }
  options.signup = signup === 'on';
}

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
