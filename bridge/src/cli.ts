/**
 * The bridge's command-line options: flags and environment variables (flags
 * win), shared by flotilla-bridge and the demo launcher (`npm start`).
 */
import { DataDirInUse } from './data-dir.js';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import pino from 'pino';
import { defaultOptions, type BridgeOptions } from './bridge.js';
import { targetPolicy } from './integrations/targets.js';
import { PASSWORD_MIN } from './http/body.js';
import { trustedProxies } from './http/proxy.js';

export const bridgeFlags = {
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
  'webhook-allow': { type: 'string' },
  'trust-proxy': { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

export const bridgeHelp = `  --data-dir DIR         FLOTILLA_DATA_DIR         database and firmware (default ${defaultOptions.dataDir})
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
  --signup on|off        FLOTILLA_SIGNUP           let anyone create an account with POST /v1/users (default off)
  --webhook-allow RANGES FLOTILLA_WEBHOOK_ALLOW    local or private ranges webhooks may target, comma-separated (10.0.0.0/8,::1; default none)
  --trust-proxy RANGES  FLOTILLA_TRUST_PROXY      your reverse proxies, comma-separated: X-Forwarded-For names the client from them (default none)`;

/** A flag or variable that cannot be used; the message names it. */
export class CliError extends Error {}

type Values = { [K in keyof typeof bridgeFlags]?: string };

/** parseArgs over the arguments, its own errors (an unknown flag, a missing value) turned into a CliError. */
export function parseFlags<O extends NonNullable<ParseArgsConfig['options']>>(options: O, args?: string[]) {
  try {
    return parseArgs({ options, args });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS_')) throw new CliError((e as Error).message);
    throw e;
  }
}

/** The bridge's options from parsed flags and the environment. */
export function bridgeOptions(values: Values, env: NodeJS.ProcessEnv = process.env): Partial<BridgeOptions> {
  const pick = (flag: string | undefined, name: string): string | undefined => flag ?? env[name];
  /**
   * Decimal digits only: Number() reads "" and " " as 0 (a random port, silently: an unset variable in
   * FLOTILLA_MQTT_PORT=${PORT} would do it) and takes 1e4 or 0x4000.
   */
  function portNumber(v: string, name: string, or: string): number {
    const n = /^[0-9]{1,5}$/.test(v) ? Number(v) : NaN;
    if (!(n <= 65535)) throw new CliError(`${name} must be a port number (0 to 65535)${or}, not "${v}"`);
    return n;
  }
  function port(v: string | undefined, name: string): number | undefined {
    return v === undefined ? undefined : portNumber(v, name, '');
  }
  /** A port, or off ("off" or -1): null. */
  function optionalPort(v: string | undefined, name: string): number | null | undefined {
    if (v === undefined) return undefined;
    if (v === 'off' || v === '-1') return null;
    return portNumber(v, name, ' or off');
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
  if (!options.tlsCertFile !== !options.tlsKeyFile) throw new CliError('--tls-cert and --tls-key (FLOTILLA_TLS_CERT_FILE, FLOTILLA_TLS_KEY_FILE) go together');
  const logLevel = pick(values['log-level'], 'FLOTILLA_LOG_LEVEL');
  if (logLevel) {
    const levels = [...Object.keys(pino.levels.values), 'silent'];
    if (!levels.includes(logLevel)) throw new CliError(`--log-level (FLOTILLA_LOG_LEVEL) must be one of ${levels.join(', ')}, not "${logLevel}"`);
    options.logLevel = logLevel;
  }
  const ownerUsername = pick(values['owner-username'], 'FLOTILLA_OWNER_USERNAME');
  if (ownerUsername) options.ownerUsername = ownerUsername;
  const ownerPassword = pick(values['owner-password'], 'FLOTILLA_OWNER_PASSWORD');
  if (ownerPassword) {
    // The rule of every other password (sign-up, PUT /v1/user): the owner could not set this one again later.
    if (ownerPassword.length < PASSWORD_MIN) throw new CliError(`--owner-password (FLOTILLA_OWNER_PASSWORD) must be at least ${PASSWORD_MIN} characters`);
    options.ownerPassword = ownerPassword;
  }
  const signup = pick(values.signup, 'FLOTILLA_SIGNUP');
  if (signup !== undefined) {
    if (signup !== 'on' && signup !== 'off') throw new CliError(`--signup (FLOTILLA_SIGNUP) is on or off, not "${signup}"`);
    options.signup = signup === 'on';
  }
  /** A comma-separated list of addresses and ranges, checked by `check` (which throws why not). */
  const ranges = (flag: 'webhook-allow' | 'trust-proxy', env: string, check: (r: string[]) => unknown): string[] | undefined => {
    const v = pick(values[flag], env);
    if (v === undefined) return undefined;
    const list = v.split(',').map((r) => r.trim()).filter(Boolean);
    try {
      check(list);
    } catch (e) {
      throw new CliError(`--${flag} (${env}): ` + (e as Error).message.replace(/^webhooks\.allowTargets: /, ''));
    }
    return list;
  };
  const allowTargets = ranges('webhook-allow', 'FLOTILLA_WEBHOOK_ALLOW', targetPolicy);
  if (allowTargets) options.webhooks = { ...defaultOptions.webhooks, allowTargets };
  const trustProxy = ranges('trust-proxy', 'FLOTILLA_TRUST_PROXY', trustedProxies);
  if (trustProxy) options.http = { ...defaultOptions.http, trustProxy };
  return options;
}

/** Why the bridge could not start, for people, when it is the machine's doing (a port, a directory); null for anything else. */
export function startFailure(e: unknown, options: Partial<BridgeOptions>): string | null {
  if (e instanceof DataDirInUse) return e.message;
  const err = e as NodeJS.ErrnoException & { address?: string; port?: number };
  const where = err.address !== undefined && err.port !== undefined ? `${err.address}:${err.port}` : null;
  if (err.syscall === 'listen' && where) {
    if (err.code === 'EADDRINUSE') return `cannot listen on ${where}: the address is in use (another bridge running? choose other ports with the --*-port options)`;
    if (err.code === 'EACCES') return `cannot listen on ${where}: not allowed (ports below 1024 need privileges)`;
    if (err.code === 'EADDRNOTAVAIL') return `cannot listen on ${where}: no such address on this machine (--host)`;
  }
  if (err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN') return `cannot listen on ${options.host ?? defaultOptions.host}: no such address or host name (--host)`;
  const tlsFile = err.path !== undefined && (err.path === options.tlsCertFile || err.path === options.tlsKeyFile);
  if (tlsFile) return `cannot read the TLS ${err.path === options.tlsCertFile ? 'certificate (--tls-cert)' : 'key (--tls-key)'} ${err.path}: ${err.code}`;
  if (/PEM|ASN1|DECODER/.test(String(err.code)) || /PEM routines|no start line/.test(err.message ?? '')) {
    return 'the TLS certificate or key (--tls-cert, --tls-key) is not a PEM certificate and its private key: ' + err.message;
  }
  if (['EACCES', 'EROFS', 'ENOTDIR', 'EEXIST', 'ENOENT', 'EISDIR'].includes(err.code ?? '') && err.path) {
    return `cannot use the data directory ${options.dataDir ?? defaultOptions.dataDir}: ${err.code} on ${err.path}`;
  }
  // better-sqlite3's errors carry SQLite's code and no path: a read-only or full disk, a file that is no database.
  if (/^SQLITE_(CANTOPEN|FULL|IOERR|READONLY|BUSY|LOCKED|NOTADB|CORRUPT|PERM)/.test(String(err.code))) {
    return `cannot use the database in the data directory ${options.dataDir ?? defaultOptions.dataDir}: ${err.code} (${err.message})`;
  }
  return null;
}

/** The host as a URL writes it: a wildcard address as the loopback, an IPv6 address in brackets (http://[::1]:8080). */
export function urlHost(host: string): string {
  const h = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return h.includes(':') ? '[' + h + ']' : h;
}

/** Says what the bridge listens on, for people. */
export function listening(b: { ports: { http: number | null; mqtt: number; mqtts: number | null; ws: number | null; wss: number | null } }, host: string): string[] {
  const h = urlHost(host);
  const lines: string[] = [];
  if (b.ports.http !== null) lines.push(`HTTP API  http://${h}:${b.ports.http}/v1   (routes: /v1/openapi.json)`);
  lines.push(`MQTT      mqtt://${h}:${b.ports.mqtt}` + (b.ports.mqtts !== null ? `   mqtts://${h}:${b.ports.mqtts}` : ''));
  if (b.ports.ws !== null || b.ports.wss !== null)
    lines.push('MQTT/WS   ' + [b.ports.ws !== null ? `ws://${h}:${b.ports.ws}/mqtt` : '', b.ports.wss !== null ? `wss://${h}:${b.ports.wss}/mqtt` : ''].filter(Boolean).join('   '));
  return lines;
}
