/**
 * A real bridge for tests: createBridge on a temp data directory (a real
 * SQLite file) and a loopback port, with two products and their teams:
 *
 *   product A (personal, owner alice): devices a1, a2; product team: carol viewer, dave support, erin developer
 *   product B (personal, owner bob):   device b1
 *   tokens: one per user; plus a revoked and an expired token of alice's
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { createBridge, type Bridge, type BridgeInput } from '@flotilla/bridge';
import { emptyFlash, MemoryFlash, VmDevice } from '@flotilla/simulator';
import { DEMO_APP, image } from './images.js';

export const A1 = 'a1a1a1a1a1a1a1a1a1a1a1a1';
export const A2 = 'a2a2a2a2a2a2a2a2a2a2a2a2';
export const B1 = 'b1b1b1b1b1b1b1b1b1b1b1b1';
export const SECRET = { [A1]: 'secret-a1', [A2]: 'secret-a2', [B1]: 'secret-b1' } as const;

export interface Fixture {
  bridge: Bridge;
  dir: string;
  port: number;
  products: { A: string; B: string };
  users: Record<string, string>;
  tokens: { alice: string; bob: string; carol: string; dave: string; erin: string; revoked: string; expired: string; customer: string; apiUser: string };
  close(): Promise<void>;
}

export async function startFixture(options: BridgeInput = {}): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-bridge-'));
  // No TLS or HTTP listener unless a test asks for one: 8883 and 8080 are one port each for the whole machine.
  const bridge = await createBridge({ dataDir: dir, httpPort: null, mqttPort: 0, mqttsPort: null, logLevel: 'silent', ownerPassword: 'owner-password', ...options });
  const s = bridge.store;
  const users: Record<string, string> = {};
  for (const name of ['alice', 'bob', 'carol', 'dave', 'erin']) users[name] = (await s.createUser(name, name + '-password')).id;
  const A = String((await s.createProduct({ name: 'A', slug: 'prod-a', ownerUserId: users.alice })).id);
  const B = String((await s.createProduct({ name: 'B', slug: 'prod-b', ownerUserId: users.bob })).id);
  await s.addProductMember(A, users.carol, 'viewer');
  await s.addProductMember(A, users.dave, 'support');
  await s.addProductMember(A, users.erin, 'developer');
  for (const [id, product] of [[A1, A], [A2, A], [B1, B]] as const) {
    await s.createDevice({ id, productId: product });
    await s.setDeviceSecret(id, SECRET[id]);
  }
  const token = async (user: string, ttlSeconds = 3600) =>
    (await s.issueToken({ subject: { kind: 'user', id: users[user] }, clientId: 'test', scopes: [], ttlSeconds })).token;
  const tokens = {
    alice: await token('alice'), bob: await token('bob'), carol: await token('carol'), dave: await token('dave'), erin: await token('erin'),
    revoked: await token('alice'), expired: await token('alice', 1),
    // A customer of A who claimed a1, and an API user of A that may watch and read variables.
    customer: '',
    apiUser: '',
  };
  const customer = await s.createCustomer({ productId: A, username: 'cust1@example.com', password: 'cust-password' });
  await s.claimDevice(A1, customer.id);
  tokens.customer = (await s.issueToken({ subject: { kind: 'customer', id: customer.id }, clientId: 'test', scopes: [], ttlSeconds: 3600 })).token;
  const apiUser = await s.createApiUser({ username: 'dashboard', productId: A, scopes: ['device.events', 'device.variable'] });
  tokens.apiUser = (await s.issueToken({ subject: { kind: 'apiUser', id: apiUser.id }, clientId: 'test', scopes: [], ttlSeconds: 3600 })).token;
  await s.revokeToken(tokens.revoked);
  return {
    bridge, dir, port: bridge.ports.mqtt, products: { A, B }, users, tokens,
    async close() {
      await bridge.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** An mqtt.js client on the fixture's port; resolves on CONNACK, rejects with the refusal. */
export function connect(port: number, opts: IClientOptions): Promise<MqttClient> {
  return connectTo('mqtt://127.0.0.1:' + port, opts);
}

/** An mqtt.js client for any URL (mqtt, mqtts, ws, wss); rejects with the refusal (its `code` is the CONNACK return code). */
export async function connectTo(url: string, opts: IClientOptions): Promise<MqttClient> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, protocolVersion: 4, ...opts });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', (e) => {
      client.end(true);
      reject(e);
    });
    client.once('close', () => reject(new Error('closed before CONNACK')));
  });
  (client.stream as unknown as { setNoDelay?: (b: boolean) => void }).setNoDelay?.(true);
  return client;
}

export const device = (port: number, id: keyof typeof SECRET, extra: IClientOptions = {}) =>
  connect(port, { clientId: id, username: id, password: SECRET[id], ...extra });

export const app = (port: number, clientId: string, token: string, extra: IClientOptions = {}) =>
  connect(port, { clientId, username: 'token', password: token, ...extra });

/** Resolves when the client's connection closes; fails after `ms`. */
export function closed(c: MqttClient, ms = 3000): Promise<void> {
  if (!c.connected) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('still connected after ' + ms + ' ms')), ms);
    c.once('close', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

/** What particle-api-js rejects with on an HTTP error. */
export interface ParticleError extends Error {
  statusCode: number;
  body: { error?: string; error_description?: string; ok?: boolean };
}

/**
 * The real agent (the built bundle in a node:vm device) on a1, running the
 * demo app's variables and functions; resolves once the bridge has its hello.
 */
export async function startDemoAgent(f: Fixture): Promise<VmDevice> {
  const flash = new MemoryFlash(emptyFlash(256 * 1024));
  flash.state.slots[0].set(image({ deviceId: A1, secret: SECRET[A1], product: Number(f.products.A), firmware: 1, app: DEMO_APP, options: 'keepalive: 5, backoffMin: 50' }));
  const agent = new VmDevice({ flash, host: '127.0.0.1', port: f.port });
  agent.start();
  for (let i = 0; i < 200 && !('temp' in ((await f.bridge.store.getDevice(A1))?.variables ?? {})); i++) await new Promise((r) => setTimeout(r, 30));
  return agent;
}

/** The HTTP API as one token sees it: GET, and POST of a form; the status and the JSON body. */
export function apiAs(base: string, token: string) {
  const send = async (method: string, path: string, form?: Record<string, string>): Promise<{ status: number; body: any }> => {
    const r = await fetch(base + path, { method, headers: { authorization: 'Bearer ' + token }, body: form ? new URLSearchParams(form) : undefined });
    return { status: r.status, body: await r.json() };
  };
  return { get: (path: string) => send('GET', path), post: (path: string, form: Record<string, string> = {}) => send('POST', path, form) };
}
