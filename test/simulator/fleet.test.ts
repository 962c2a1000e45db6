/**
 * A fleet of 200 simulated devices, each the built agent bundle booted from
 * its own flash, against a real bridge over loopback: provisioning through
 * the operator API, variable reads and function calls answered by every
 * device, events on an SSE stream, vitals on schedule, injected errors in
 * the fleet's error list, a network flap survived and counted.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Fleet, parseScenario, provision, type CredentialsFile } from '@flotilla/simulator';
import { apiAs, startFixture, type Fixture } from '../helpers/bridge-fixture.js';

const SIZE = 200;

/** Every device's clock starts at power-on; vitals every 2 s, an error thrown by a timer about every 4 s. */
const scenario = parseScenario(
  {
    description: 'test fleet',
    vitals: 2,
    keepalive: 10,
    variables: {
      temperature: { type: 'double', walk: { start: 21, step: 0.1, min: 15, max: 30 } },
      led: { type: 'string', value: 'off' },
    },
    functions: { setLed: { returns: 1, sets: 'led' } },
    events: [{ name: 'reading', every: 2, data: '{{temperature}}' }],
    faults: { errors: { every: 4 } },
  },
  'test',
);

/** Runs `fn` over `items`, `width` at a time. */
async function pool<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

describe('simulator: a fleet of 200 devices against a real bridge', function () {
  this.timeout(120_000);
  let f: Fixture;
  let fleet: Fleet;
  let creds: CredentialsFile;
  let api: string;
  let dir: string;
  let get: ReturnType<typeof apiAs>['get'];
  let post: ReturnType<typeof apiAs>['post'];

  before(async () => {
    f = await startFixture({ httpPort: 0 });
    api = 'http://127.0.0.1:' + f.bridge.ports.http;
    ({ get, post } = apiAs(api, f.tokens.alice));
    dir = mkdtempSync(join(tmpdir(), 'flotilla-fleet-'));
    creds = await provision({ api, token: f.tokens.alice, product: 'prod-a', count: SIZE, file: join(dir, 'creds.json') });
    fleet = new Fleet({ bridge: 'mqtt://127.0.0.1:' + f.port, product: creds.product.id, devices: creds.devices, scenario, rampPerSecond: 400 });
    await fleet.start();
    assert.ok(await fleet.until((s) => s.connected === SIZE, 60_000), 'all connect: ' + JSON.stringify(fleet.stats()));
  });

  after(async () => {
    fleet?.stop();
    await f?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('registered every device through the API and connected all of them', async () => {
    assert.equal(creds.devices.length, SIZE);
    assert.equal(creds.product.slug, 'prod-a');
    const s = fleet.stats();
    assert.equal(s.connected, SIZE);
    assert.equal(s.refused, 0);
    assert.deepEqual(s.versions, { 1: SIZE });
    const ours = new Set(creds.devices.map((d) => d.id));
    const online: { id: string; online: boolean; firmware_version: number }[] = [];
    for (let page = 1; page <= 3; page++) {
      const listed = await get('/v1/products/prod-a/devices?per_page=100&page=' + page);
      online.push(...(listed.body.devices as typeof online).filter((d) => ours.has(d.id)));
    }
    assert.equal(online.length, SIZE);
    assert.ok(online.every((d) => d.online && d.firmware_version === 1), 'every device online with firmware 1');
  });

  it('every device answers a variable read and a function call through the HTTP API', async () => {
    const failures: string[] = [];
    await pool(creds.devices, 20, async (d) => {
      const v = await get(`/v1/products/prod-a/devices/${d.id}/temperature`);
      if (v.status !== 200 || typeof v.body.result !== 'number' || v.body.result < 15 || v.body.result > 30) failures.push(d.id + ' read: ' + JSON.stringify(v));
      const c = await post(`/v1/products/prod-a/devices/${d.id}/setLed`, { arg: 'on-' + d.id.slice(0, 4) });
      if (c.status !== 200 || c.body.return_value !== 1) failures.push(d.id + ' call: ' + JSON.stringify(c));
      const led = await get(`/v1/products/prod-a/devices/${d.id}/led`);
      if (led.body.result !== 'on-' + d.id.slice(0, 4)) failures.push(d.id + ' led: ' + JSON.stringify(led));
    });
    assert.deepEqual(failures, []);
  });

  it('events reach an SSE subscriber', async () => {
    const ac = new AbortController();
    const r = await fetch(api + '/v1/products/prod-a/events/reading', { headers: { authorization: 'Bearer ' + f.tokens.alice }, signal: ac.signal });
    assert.equal(r.status, 200);
    const from = new Set<string>();
    const decoder = new TextDecoder();
    let text = '';
    const reader = r.body!.getReader();
    const deadline = setTimeout(() => ac.abort(), 20_000);
    try {
      // Events every 2 s per device: a hundred devices heard from well within the bound.
      while (from.size < 100) {
        const { value, done } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
        let at;
        while ((at = text.indexOf('\n\n')) >= 0) {
          const frame = text.slice(0, at);
          text = text.slice(at + 2);
          const data = /^data: (.*)$/m.exec(frame);
          if (/^event: reading$/m.test(frame) && data) {
            const e = JSON.parse(data[1]) as { coreid: string; data: string };
            assert.ok(Number.isFinite(Number(e.data)), 'data is the temperature: ' + e.data);
            from.add(e.coreid);
          }
        }
      }
    } finally {
      clearTimeout(deadline);
      ac.abort();
    }
    assert.ok(from.size >= 100, 'readings from ' + from.size + ' devices');
  });

  it('vitals arrive on schedule (every 2 s per device)', async () => {
    const before = fleet.stats().sent.vitals ?? 0;
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, 6000));
    const sent = (fleet.stats().sent.vitals ?? 0) - before;
    const expected = (SIZE * (Date.now() - t0)) / 2000;
    // A schedule, not a benchmark: at least half of what the period promises, and not far more.
    assert.ok(sent >= expected / 2 && sent <= expected * 1.5, `${sent} vitals in the window, ${expected.toFixed(0)} expected`);
    const recent: string[] = [];
    for (const d of creds.devices.slice(0, 10)) {
      const last = await get(`/v1/products/prod-a/diagnostics/${d.id}/last`);
      assert.equal(last.status, 200);
      if (Date.now() - Date.parse(last.body.diagnostics.updated_at) < 5000) recent.push(d.id);
      assert.equal(typeof last.body.diagnostics.payload.device.system.uptime, 'number');
    }
    assert.equal(recent.length, 10, 'the bridge stored a sample from each device within two periods');
  });

  it('injected errors appear in the fleet error list', async () => {
    let errors: { kind: string; message: string; count: number; devices: number; firmware_version: number }[] = [];
    for (let i = 0; i < 100; i++) {
      errors = (await get('/v1/products/prod-a/fleet_health')).body.errors;
      if (errors.some((e) => e.message.includes('injected fault in a timer') && e.devices >= 50)) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const injected = errors.find((e) => e.message.includes('injected fault in a timer'));
    assert.ok(injected, JSON.stringify(errors));
    assert.equal(injected.kind, 'timer');
    assert.equal(injected.firmware_version, 1);
    assert.ok(injected.devices >= 50, 'reported by many devices: ' + injected.devices);
  });

  it('survives a network flap: every device reconnects and counts the disconnect in its vitals', async () => {
    const before = fleet.stats();
    fleet.flapAll(1.5);
    assert.ok(await fleet.until((s) => s.connected === 0, 10_000), 'the flap cut every link');
    assert.ok(await fleet.until((s) => s.connected === SIZE, 60_000), 'all back: ' + JSON.stringify(fleet.stats()));
    const after = fleet.stats();
    assert.ok(after.connects >= before.connects + SIZE, 'a new session per device');
    assert.equal(after.injected.flap, before.injected.flap + SIZE);
    // Vitals after the flap say so (device.cloud.connection.disconnects), for every device asked.
    for (const d of creds.devices.slice(0, 5)) {
      const refresh = await post(`/v1/products/prod-a/diagnostics/${d.id}/update`, {});
      assert.equal(refresh.status, 202);
    }
    for (const d of creds.devices.slice(0, 5)) {
      let disconnects = 0;
      for (let i = 0; i < 50 && disconnects < 1; i++) {
        const last = await get(`/v1/products/prod-a/diagnostics/${d.id}/last`);
        disconnects = last.body.diagnostics.payload.device.cloud.connection.disconnects;
        if (disconnects < 1) await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(disconnects >= 1, d.id + ' counts ' + disconnects + ' disconnects');
    }
  });
});
