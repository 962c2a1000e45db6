/**
 * A simulated device boots what its flash holds, as the bootloader would: a
 * new application image placed in the inactive slot (marked for a trial
 * boot) runs and answers with code the old image lacked; a broken image
 * (throws at start), one that never reaches the cloud and one that never
 * starts the agent (the board's watchdog) are rolled back to the old image,
 * which reconnects. Also: a fleet's flash directory keeps
 * the slots across a restart of the simulator; a device powered on twice
 * (overlapping power cuts) runs one agent.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeBoot, freshRecord, pending, decodeBoot } from '@flotilla/firmware/boot';
import { agentBundle, buildImage, defaultFleetOptions, emptyFlash, Fleet, fleetImage, MemoryFlash, parseScenario, sharedRealm, VmDevice, type BootInfo } from '@flotilla/simulator';
import { A1, A2, apiAs, SECRET, startFixture, type Fixture } from '../helpers/bridge-fixture.js';

const SLOT = 512 * 1024;

const base = {
  variables: { temperature: { type: 'double', value: 21.5 } },
  functions: { setLed: { returns: 1 } },
};
const v1 = parseScenario({ ...base, firmware: 1 }, 'v1');
/** Version 2 has a function version 1 lacks. */
const v2 = parseScenario({ ...base, firmware: 2, functions: { setLed: { returns: 1 }, newTrick: { returns: 7 } } }, 'v2');

describe('simulator: a device boots the image its flash holds', function () {
  this.timeout(30_000);
  let f: Fixture;
  let api: string;
  let product: number;
  const devices: VmDevice[] = [];
  const runner = sharedRealm();

  let get: ReturnType<typeof apiAs>['get'];
  const call = (id: string, fn: string) => apiAs(api, f.tokens.alice).post(`/v1/products/prod-a/devices/${id}/${fn}`, { arg: 'x' });
  /** Waits until the bridge sees the device online with `version`. */
  const runs = async (id: string, version: number): Promise<void> => {
    for (let i = 0; i < 200; i++) {
      const d = await get('/v1/products/prod-a/devices/' + id);
      if (d.body.online && d.body.firmware_version === version) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.fail(`${id} never came online with firmware ${version}`);
  };

  /** A device whose slot 0 holds version 1 and slot 1 `next`, marked for its trial boot. */
  function device(id: keyof typeof SECRET, next: Uint8Array, nextVersion: number, boots: BootInfo[], trialWatchdogMs?: number): { vm: VmDevice; flash: MemoryFlash } {
    const flash = new MemoryFlash(emptyFlash(SLOT));
    flash.write(0, 0, fleetImage(v1, product));
    flash.write(1, 0, next);
    flash.writeBoot(encodeBoot(pending(freshRecord(), 1, nextVersion)));
    const vm = new VmDevice({ flash, host: '127.0.0.1', port: f.port, runner, hal: { device: { id, secret: SECRET[id] } }, onBoot: (b) => boots.push(b), trialWatchdogMs });
    devices.push(vm);
    vm.start();
    return { vm, flash };
  }

  before(async () => {
    f = await startFixture({ httpPort: 0 });
    api = 'http://127.0.0.1:' + f.bridge.ports.http;
    ({ get } = apiAs(api, f.tokens.alice));
    product = Number(f.products.A);
  });
  afterEach(() => {
    for (const d of devices.splice(0)) d.stop();
  });
  after(async () => {
    await f?.close();
  });

  it('boots a new image on trial, runs its new code, and confirms it', async () => {
    const boots: BootInfo[] = [];
    const { flash } = device(A1, fleetImage(v2, product), 2, boots);
    await runs(A1, 2);
    const r = await call(A1, 'newTrick');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.return_value, 7);
    assert.deepEqual(boots.map((b) => [b.slot, b.trial, b.version, b.rolledBack]), [[1, true, 2, false]]);
    // Reaching the cloud confirmed the image: slot 1 is now the known-good one.
    const rec = decodeBoot(flash.readBoot());
    assert.equal(rec.active, 1);
    assert.equal(rec.trial, 255);
  });

  it('a function that sets a number variable answers -1 for what its type cannot hold, and leaves the variable readable', async () => {
    const setters = parseScenario({
      variables: { n: { type: 'int32', value: 5 }, d: { type: 'double', value: 1.5 } },
      functions: { setN: { returns: 3, sets: 'n' }, setD: { returns: 4, sets: 'd' } },
    }, 'setters');
    const flash = new MemoryFlash(emptyFlash(SLOT));
    flash.write(0, 0, fleetImage(setters, product));
    const vm = new VmDevice({ flash, host: '127.0.0.1', port: f.port, runner, hal: { device: { id: A1, secret: SECRET[A1] } } });
    devices.push(vm);
    vm.start();
    await runs(A1, 1);
    const set = async (fn: string, arg: string) => (await apiAs(api, f.tokens.alice).post(`/v1/products/prod-a/devices/${A1}/${fn}`, { arg })).body.return_value;
    const read = async (name: string) => (await get(`/v1/products/prod-a/devices/${A1}/${name}`)).body.result;
    // Before: 3 and 4, and every later read failed ("returned double, not int32", "returned Infinity, not double").
    assert.deepEqual([await set('setN', '4294967296'), await set('setD', '1e309'), await set('setN', 'x')], [-1, -1, -1]);
    assert.deepEqual([await read('n'), await read('d')], [5, 1.5]);
    assert.deepEqual([await set('setN', '-2147483648'), await set('setD', '-0.25')], [3, 4]);
    assert.deepEqual([await read('n'), await read('d')], [-2147483648, -0.25]);
  });

  it('rolls back an image that throws at start, and the old image answers again', async () => {
    const boots: BootInfo[] = [];
    const broken = buildImage(product, 3, agentBundle() + '\nthrow new Error("broken build: missing config");\n');
    device(A2, broken, 3, boots);
    await runs(A2, 1);
    assert.deepEqual(boots.map((b) => [b.slot, b.trial, b.version, b.rolledBack]), [[1, true, 3, false], [0, false, 1, true]]);
    assert.equal((await call(A2, 'setLed')).body.return_value, 1);
    const missing = await call(A2, 'newTrick');
    assert.equal(missing.status, 404);
  });

  it('rolls back an image that never reaches the cloud within its trial window', async () => {
    const boots: BootInfo[] = [];
    // Version 4 logs in with a secret the bridge refuses, so it can never confirm itself.
    const lost = buildImage(product, 4, agentBundle() + `\nFlotilla.create(hal, { deviceId: hal.device.id, secret: 'not-the-secret', product: ${product}, firmware: 4, trialWindow: 1500, backoffMin: 200 });\n`);
    device(A1, lost, 4, boots);
    await runs(A1, 1);
    assert.deepEqual(boots.map((b) => [b.slot, b.trial, b.version, b.rolledBack]), [[1, true, 4, false], [0, false, 1, true]]);
    // The agent's reset after the window is Particle's update_timeout (90).
    assert.equal(boots[1].reason, 90);
  });

  it('rolls back, by the board\'s watchdog, a trial image that never starts the agent (a bare bundle), and leaves a confirmed one alone', async () => {
    const boots: BootInfo[] = [];
    // The agent bundle alone: it defines Flotilla and starts nothing, so no agent arms its own trial timer.
    device(A2, buildImage(product, 5, agentBundle()), 5, boots, 800);
    await runs(A2, 1);
    assert.deepEqual(boots.map((b) => [b.slot, b.trial, b.version, b.rolledBack]), [[1, true, 5, false], [0, false, 1, true]]);
    assert.equal(boots[1].reason, 60, "Particle's watchdog reset reason");
    // A trial image that confirms in time is not reset when the watchdog's time comes.
    const confirmed: BootInfo[] = [];
    device(A1, fleetImage(v2, product), 2, confirmed, 1500);
    await runs(A1, 2);
    await new Promise((r) => setTimeout(r, 1700));
    assert.deepEqual(confirmed.map((b) => [b.slot, b.trial, b.version]), [[1, true, 2]]);
  });

  it('keeps each device\'s flash in a directory across a restart of the fleet: an image an update wrote stays; a factory image nothing wrote over becomes the new run\'s', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flotilla-flash-'));
    try {
      const creds = [{ id: A1, secret: SECRET[A1] }, { id: A2, secret: SECRET[A2] }];
      const first = new Fleet({ bridge: 'mqtt://127.0.0.1:' + f.port, product, devices: creds, scenario: v1, flashDir: dir });
      await first.start();
      assert.ok(await first.until((s) => s.connected === 2, 10_000));
      first.stop();
      assert.deepEqual(first.stats().versions, { 1: 2 });
      // While the fleet is down, an update writes version 3 over a1's slot 0 (what a second OTA does: the slots alternate).
      const v3 = fleetImage(parseScenario({ ...base, firmware: 3 }, 'v3'), product);
      MemoryFlash.open(join(dir, A1), defaultFleetOptions.slotSize).write(0, 0, v3);
      // The second run's factory image is version 2: a1 keeps the version 3 it was given, a2 (still on its factory image) takes it.
      const second = new Fleet({ bridge: 'mqtt://127.0.0.1:' + f.port, product, devices: creds, scenario: v2, flashDir: dir });
      await second.start();
      assert.ok(await second.until((s) => s.connected === 2, 10_000));
      assert.deepEqual(second.stats().versions, { 2: 1, 3: 1 });
      second.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs one agent however often it is powered on: a second power-on of a running device does nothing, and power-off leaves no socket', async () => {
    // A plain TCP server that never answers: each agent's connection stays open, so two agents show as two.
    const live = new Set<Socket>();
    let accepted = 0;
    const server = createServer((s) => {
      accepted++;
      live.add(s);
      s.on('close', () => live.delete(s));
      s.on('error', () => {});
      s.resume(); // read (and drop) the CONNECT, or the peer's close is never seen
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const until = async (what: string, ok: () => boolean) => {
      for (let i = 0; i < 100 && !ok(); i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(ok(), what);
    };
    try {
      const flash = new MemoryFlash(emptyFlash(SLOT));
      flash.write(0, 0, fleetImage(v1, product));
      const vm = new VmDevice({ flash, host: '127.0.0.1', port: (server.address() as AddressInfo).port, runner, hal: { device: { id: A1, secret: SECRET[A1] } } });
      // The fleet powers a device on at the end of each power cut; two cuts overlapping meant two power-ons.
      vm.start();
      vm.start();
      await until('a connection', () => accepted >= 1);
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual([accepted, live.size, vm.boots], [1, 1, 1]);
      vm.stop();
      await until('no connection after power-off', () => live.size === 0);
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(accepted, 1, 'nothing connects once the device is off');
      // Off and on again: a new boot.
      vm.start();
      await until('the next boot\'s connection', () => accepted === 2);
      vm.stop();
    } finally {
      server.close();
    }
  });
});
