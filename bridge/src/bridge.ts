/**
 * The bridge's composition root: createBridge(options) opens the store,
 * starts the MQTT broker (and, with issue 5, the HTTP API) and returns
 * { close() }. Every setting is in defaultOptions below; main.ts maps flags
 * and environment variables onto it.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { LIMITS } from '@flotilla/protocol';
import { createBroker, type Broker } from './mqtt/broker.js';
import type { Store } from './store/store.js';
import { openSqliteStore } from './store/sqlite/index.js';

export interface BridgeOptions {
  /** Where the database (flotilla.db) and uploaded firmware live. */
  dataDir: string;
  /** Address every listener binds to. */
  host: string;
  /** MQTT over TCP; 0 picks a free port. */
  mqttPort: number;
  /** pino level: fatal, error, warn, info, debug, trace, silent. */
  logLevel: string;
  /** The first owner, created when the database has no user; a random password is generated and printed once when unset. */
  ownerUsername: string;
  ownerPassword: string | undefined;
  mqtt: {
    /** Largest MQTT packet accepted (an OTA chunk at its maximum, topic and headers included). */
    maxPacket: number;
    /** A connection that sends no CONNECT within this many ms is dropped. */
    connectTimeoutMs: number;
    /** Largest keepalive a client may ask for, seconds (Particle devices use 25 to 30). */
    keepaliveLimit: number;
    /** How long a request from an MQTT app waits for the device's reply. */
    requestTimeoutMs: number;
    /** Publishes per second and burst per client before the session is ended (an OTA's acks run at chunk rate). */
    publishRate: { perSecond: number; burst: number };
  };
}

export const defaultOptions: BridgeOptions = {
  dataDir: './data',
  // Loopback unless told otherwise: a fresh bridge is not on the network by accident.
  host: '127.0.0.1',
  mqttPort: 1883,
  logLevel: 'info',
  ownerUsername: 'owner',
  ownerPassword: undefined,
  mqtt: {
    maxPacket: LIMITS.messageMaxBytes + 1024,
    connectTimeoutMs: 10000,
    keepaliveLimit: 1200,
    requestTimeoutMs: 60000,
    publishRate: { perSecond: 1000, burst: 2000 },
  },
};

export interface Bridge {
  store: Store;
  broker: Broker;
  /** Ports actually bound (useful with port 0). */
  ports: { mqtt: number };
  /** Set when this start created the first owner with a generated password. */
  generatedOwnerPassword: string | null;
  close(): Promise<void>;
}

export async function createBridge(options: Partial<BridgeOptions> = {}): Promise<Bridge> {
  const o: BridgeOptions = { ...defaultOptions, ...options, mqtt: { ...defaultOptions.mqtt, ...options.mqtt } };
  const log = pino({ level: o.logLevel, base: { service: 'flotilla-bridge' } });
  mkdirSync(o.dataDir, { recursive: true });
  const store = await openSqliteStore({ file: join(o.dataDir, 'flotilla.db') });
  let generatedOwnerPassword: string | null = null;
  if (!(await store.hasUsers())) {
    const password = o.ownerPassword ?? (generatedOwnerPassword = randomBytes(12).toString('base64url'));
    await store.createUser(o.ownerUsername, password);
    log.info({ username: o.ownerUsername }, 'created the first owner');
  }
  const broker = await createBroker({ store, log, ...o.mqtt });
  const mqtt = await broker.listen(o.mqttPort, o.host);
  log.info({ host: o.host, mqtt }, 'bridge listening');
  let closed = false;
  return {
    store,
    broker,
    ports: { mqtt },
    generatedOwnerPassword,
    async close() {
      if (closed) return;
      closed = true;
      await broker.close();
      await store.close();
      log.info('bridge closed');
    },
  };
}
