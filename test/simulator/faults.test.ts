/**
 * A small fleet under every fault the scenario format names at once (link
 * drops, crashes, power cuts, network flaps, latency, failing functions),
 * against a real bridge: the devices keep coming back, the bridge hears why
 * they reset, crashes show in the fleet's error list, and the system model
 * (battery, signal, heap) reaches the vitals.
 */
import assert from 'node:assert/strict';
import { Fleet, parseScenario, provision, type CredentialsFile } from '@flotilla/simulator';
import { apiAs, startFixture, type Fixture } from '../helpers/bridge-fixture.js';

const SIZE = 20;

const chaos = parseScenario(
  {
    vitals: 1,
    keepalive: 10,
    variables: { temperature: { type: 'double', walk: { start: 21, step: 0.5, min: 15, max: 30 } } },
    functions: { flaky: { returns: 1, fails: 0.5 } },
    faults: {
      drop: { every: 3 },
      crash: { every: 6 },
      powerCut: { every: 6, off: 0.5 },
      flap: { every: 6, down: 0.5 },
      latency: { ms: 20, jitter: 20 },
    },
    battery: { start: 80, drainPerHour: 5 },
    signal: { mean: 60, jitter: 10 },
    memory: { total: 83200, used: 30000, jitter: 1000 },
  },
  'chaos-test',
);

describe('simulator: a fleet under every fault at once', function () {
  this.timeout(90_000);
  let f: Fixture;
  let fleet: Fleet;
  let creds: CredentialsFile;
  let api: string;
  let get: ReturnType<typeof apiAs>['get'];

  before(async () => {
    f = await startFixture({ httpPort: 0 });
    api = 'http://127.0.0.1:' + f.bridge.ports.http;
    ({ get } = apiAs(api, f.tokens.alice));
    creds = await provision({ api, token: f.tokens.alice, product: 'prod-a', count: SIZE, file: null });
    fleet = new Fleet({ bridge: 'mqtt://127.0.0.1:' + f.port, product: creds.product.id, devices: creds.devices, scenario: chaos });
    await fleet.start();
  });
  after(async () => {
    fleet?.stop();
    await f?.close();
  });

  it('injects every fault, and the devices keep coming back', async () => {
    const hit = await fleet.until((s) => s.injected.drop > 0 && s.injected.crash > 0 && s.injected.powerCut > 0 && s.injected.flap > 0 && s.connects >= SIZE * 2, 30_000);
    assert.ok(hit, JSON.stringify(fleet.stats()));
    // A device is dark for at most a second or so after each fault; most are connected at any moment.
    assert.ok(await fleet.until((s) => s.connected >= SIZE / 2, 10_000), JSON.stringify(fleet.stats()));
    assert.ok(fleet.stats().disconnects > 0);
  });

  it('the bridge hears why devices reset: panic after a crash, power_down after a power cut', async () => {
    // Vitals carry Particle's reset reason codes (130 panic, 40 power_down); the API names them, as Particle's payload does.
    const reasons = new Set<string>();
    for (let i = 0; i < 100 && !(reasons.has('panic') && reasons.has('power_down')); i++) {
      for (const d of creds.devices) {
        const last = await get(`/v1/products/prod-a/diagnostics/${d.id}/last`);
        const reason = last.body?.diagnostics?.payload?.device?.system?.reset_reason;
        if (typeof reason === 'string') reasons.add(reason);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(reasons.has('panic') && reasons.has('power_down'), JSON.stringify([...reasons]));
  });

  it('crashes appear in the fleet error list, reported on the next connect', async () => {
    let crash;
    for (let i = 0; i < 100 && !crash; i++) {
      crash = ((await get('/v1/products/prod-a/fleet_health')).body.errors as { kind: string }[]).find((e) => e.kind === 'crash');
      if (!crash) await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(crash, 'a crash error');
  });

  it('the system model reaches the vitals: battery, signal, heap', async () => {
    const d = creds.devices[0];
    let payload: any;
    for (let i = 0; i < 100 && !payload?.device?.power; i++) {
      payload = (await get(`/v1/products/prod-a/diagnostics/${d.id}/last`)).body?.diagnostics?.payload;
      if (!payload?.device?.power) await new Promise((r) => setTimeout(r, 100));
    }
    const charge = payload.device.power.battery.charge;
    assert.ok(charge >= 0 && charge <= 80, 'battery ' + charge);
    const strength = payload.device.network.signal.strength;
    assert.ok(strength >= 50 && strength <= 70, 'signal ' + strength);
    assert.equal(payload.device.system.memory.total, 83200);
    assert.ok(Math.abs(payload.device.system.memory.used - 30000) <= 1000);
  });
});
