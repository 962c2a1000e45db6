/**
 * A real bridge with OTA timeouts shortened for tests, and real agents
 * (fleet images: the built bundle and a scenario app, identity from the HAL)
 * in node:vm devices with their own flash, on product A of the bridge
 * fixture. Images are uploaded through the HTTP API; spark/flash/status
 * events are collected from the bus.
 */
import { randomBytes } from 'node:crypto';
import { decode, parseTopic } from '@flotilla/protocol';
import type { BridgeOptions } from '@flotilla/bridge';
import { buildImage, emptyFlash, fleetImage, MemoryFlash, parseScenario, VmDevice, type FlashOp } from '@flotilla/simulator';
import { startFixture, type Fixture } from './bridge-fixture.js';

/** The scenario every device here runs; `firmware` is the image's version. */
const scenario = (firmware: number) =>
  parseScenario({ firmware, variables: { v: { type: 'int32', value: firmware } }, functions: { which: { returns: firmware } } }, 'v' + firmware);

export interface OtaWorld {
  f: Fixture;
  base: string;
  product: number;
  /** Registers a device of product A and powers on a real agent running version 1. */
  device(o?: DeviceOptions): Promise<TestDevice>;
  /** `n` such devices, one after another. */
  devices(n: number, o?: DeviceOptions): Promise<TestDevice[]>;
  upload(token: string, file: Uint8Array | string, fields?: Record<string, string>, product?: string): Promise<{ status: number; body: any }>;
  call(method: string, path: string, token: string, body?: unknown): Promise<{ status: number; body: any }>;
  /** PUT /v1/products/prod-a/firmware/release as Erin (a Developer). */
  release(body: Record<string, unknown>): Promise<{ status: number; body: any }>;
  /** GET /v1/products/prod-a/rollouts/:id as Carol (a Viewer): the rollout. */
  rollout(id: number): Promise<any>;
  /** spark/flash/status events seen on the bus, per device. */
  flashEvents: Map<string, string[]>;
  image(version: number, padTo?: number): Uint8Array;
  /** The version the bridge last heard each device run (its hello). */
  versions(xs: readonly TestDevice[]): Promise<(number | null)[]>;
  waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false> | T | null | undefined | false, ms?: number): Promise<T>;
  close(): Promise<void>;
}

export interface DeviceOptions {
  failTrial?: (version: number) => boolean;
  /** Wraps the flash: a test corrupts or counts writes. */
  onFlash?: (op: FlashOp) => void;
  corruptWriteAt?: number;
  /** Added to each direction of the device's link, ms: a transfer that takes a while. */
  latencyMs?: number;
  /** How long the device is dark when it resets, ms (default 0): long enough to act while it reboots. */
  rebootDelay?: number;
}

export interface TestDevice {
  id: string;
  vm: VmDevice;
  flash: MemoryFlash;
  version(): number | undefined;
  stop(): void;
}

/** A flash whose first write at `at` lands with one bit flipped, as a failing flash cell would store it. */
class CorruptingFlash extends MemoryFlash {
  corruptAt = -1;
  override write(slot: number, offset: number, bytes: Uint8Array): void {
    if (offset === this.corruptAt) {
      this.corruptAt = -1;
      const bad = Uint8Array.from(bytes);
      bad[0] ^= 0x01;
      return super.write(slot, offset, bad);
    }
    super.write(slot, offset, bytes);
  }
}

/** OTA settings for tests: silences noticed in 0.4 s, rollouts looked at every 0.1 s. */
export const TEST_OTA: BridgeOptions['ota'] = { chunkSize: 1024, window: 8, ackTimeoutMs: 400, maxSilences: 2, maxAttempts: 10, confirmTimeoutMs: 30000, offlineSlotMs: 2000, tickMs: 100, busyRetryMs: 300, imageMaxBytes: 300000, imageCacheBytes: 1200000 };

/** In a describe: a world of its own, made before its tests and closed after them, handed to `set`. */
export function useOtaWorld(set: (w: OtaWorld) => void, options: Partial<BridgeOptions> = {}): void {
  let w: OtaWorld | undefined;
  before(async () => set((w = await otaWorld(options))));
  after(() => w?.close());
}

export async function otaWorld(options: Partial<BridgeOptions> = {}): Promise<OtaWorld> {
  const f = await startFixture({ httpPort: 0, ota: TEST_OTA, ...options });
  const base = 'http://127.0.0.1:' + f.bridge.ports.http;
  const product = Number(f.products.A);
  const flashEvents = new Map<string, string[]>();
  f.bridge.broker.tap((topic, payload) => {
    const t = parseTopic(topic);
    if (t?.root !== 'dev' || t.channel !== 'evt' || t.event !== 'spark/flash/status') return;
    const m = decode(payload);
    if (m.kind === 'event') flashEvents.set(t.deviceId, [...(flashEvents.get(t.deviceId) ?? []), String(m.data)]);
  });
  const devices: TestDevice[] = [];
  const images = new Map<string, Uint8Array>();
  const image = (version: number, padTo = 0) => {
    const key = version + ':' + padTo;
    if (!images.has(key)) {
      let img = fleetImage(scenario(version), product);
      if (padTo > img.length) {
        // The same program with a comment after it: a bigger image that runs the same.
        const body = Buffer.from(img.subarray(52)).toString('utf8') + '\n/*' + 'x'.repeat(padTo - img.length - 5) + '*/';
        img = buildImage(product, version, body);
      }
      images.set(key, img);
    }
    return images.get(key)!;
  };
  const world: OtaWorld = {
    f, base, product, flashEvents, image,
    versions: (xs) => Promise.all(xs.map(async (x) => (await f.bridge.store.getDevice(x.id))!.firmwareVersion)),
    async devices(n, o) {
      const d: TestDevice[] = [];
      for (let i = 0; i < n; i++) d.push(await world.device(o));
      return d;
    },
    async device(o = {}) {
      const id = randomBytes(12).toString('hex');
      const secret = 'secret-' + id;
      await f.bridge.store.createDevice({ id, productId: product });
      await f.bridge.store.setDeviceSecret(id, secret);
      const flash = new CorruptingFlash(emptyFlash(512 * 1024), o.onFlash);
      if (o.corruptWriteAt !== undefined) flash.corruptAt = o.corruptWriteAt;
      flash.state.slots[0].set(image(1));
      let booted: number | undefined;
      const vm = new VmDevice({
        flash, host: '127.0.0.1', port: f.port, failTrial: o.failTrial, rebootDelay: o.rebootDelay, hal: { device: { id, secret }, latency: o.latencyMs ? () => o.latencyMs! : undefined },
        onBoot: (b) => (booted = b.version),
      });
      vm.start();
      const d: TestDevice = { id, vm, flash, version: () => booted, stop: () => vm.stop() };
      devices.push(d);
      await world.waitFor('the hello of ' + id, async () => (await f.bridge.store.getDevice(id))?.firmwareVersion === 1);
      return d;
    },
    async upload(token, file, fields = {}, p = f.products.A) {
      const form = new FormData();
      for (const [k, v] of Object.entries(fields)) form.set(k, v);
      form.set('file', new Blob([typeof file === 'string' ? file : Buffer.from(file)]), 'image.bin');
      const r = await fetch(base + '/v1/products/' + p + '/firmware', { method: 'POST', headers: { authorization: 'Bearer ' + token }, body: form });
      return { status: r.status, body: await r.json() };
    },
    async call(method, path, token, body) {
      const r = await fetch(base + path, {
        method, headers: { authorization: 'Bearer ' + token, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined,
      });
      const text = await r.text();
      return { status: r.status, body: text ? JSON.parse(text) : null };
    },
    release: (body) => world.call('PUT', '/v1/products/prod-a/firmware/release', f.tokens.erin, body),
    rollout: async (id) => (await world.call('GET', '/v1/products/prod-a/rollouts/' + id, f.tokens.carol)).body,
    async waitFor(what, fn, ms = 20000) {
      const end = Date.now() + ms;
      for (;;) {
        const v = await fn();
        if (v) return v as never;
        if (Date.now() > end) throw new Error('timed out waiting for ' + what);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    async close() {
      for (const d of devices) d.stop();
      await f.close();
    },
  };
  return world;
}

