/**
 * Vitals as the API shows them (bridge/src/telemetry/vitals.ts): pure, no
 * bridge. Particle's payload names enumerated vitals, its metadata covers
 * every vital, and the warnings agree with the metadata's ranges.
 */
import assert from 'node:assert/strict';
import { SERVICE_VITALS, VITAL_ENUMS, VITAL_WARNINGS, VITALS } from '@flotilla/protocol';
import { CSV_COLUMNS, METADATA, payload, shown, warnings } from '../../bridge/src/telemetry/vitals.js';

/** The node at a dotted name of a tree. */
const at = (tree: Record<string, unknown>, name: string) => name.split('.').reduce<unknown>((n, k) => (n as Record<string, unknown> | undefined)?.[k], tree) as Record<string, unknown> | undefined;

describe('vitals as the API shows them', () => {
  it('nests the dotted names and names an enumerated vital by Device OS; a code the table lacks stays a number', () => {
    assert.deepEqual(
      payload({ 'device.system.uptime': 12, 'device.cloud.connection.status': 2, 'device.power.source': 2, 'device.power.battery.state': 1, 'device.system.reset_reason': 130, 'service.cloud.uptime': 5 }),
      { device: { system: { uptime: 12, reset_reason: 'panic' }, cloud: { connection: { status: 'connected' } }, power: { source: 'USB host', battery: { state: 'not_charging' } } }, service: { cloud: { uptime: 5 } } },
    );
    // A newer device's state the table does not know yet.
    assert.equal(shown('device.power.battery.state', 42), 42);
    assert.equal(shown('device.cloud.connection.disconnect_reason', 5), 'reset');
    assert.equal(shown('device.network.signal.strength', 55), 55);
    assert.equal(shown('device.network.signal.strength', undefined), undefined);
  });

  it('describes every vital, the device\'s and the cloud\'s, in metadata; CSV has a column for each', () => {
    const names = [...VITALS.map((v) => v[1]), ...SERVICE_VITALS.map((v) => v[0])];
    assert.deepEqual([...CSV_COLUMNS], names);
    for (const name of names) {
      const m = at(METADATA, name);
      assert.ok(m && typeof m.title === 'string' && m.title !== '', name);
      assert.equal(m.type, name in VITAL_ENUMS ? 'string' : 'number', name);
      assert.ok(typeof (m.messages as { description?: unknown }).description === 'string', name);
      if (m.describes !== undefined) assert.ok(names.includes(m.describes as never), name + ' describes ' + String(m.describes));
    }
    // Each warning is one range, said in Particle's terms.
    for (const w of VITAL_WARNINGS) {
      const m = at(METADATA, w.vital)!;
      assert.deepEqual(m.ranges, 'below' in w ? { type: 'below', warning: w.below } : { type: 'ratio_above', ratio: w.ratioAbove, param1: w.vital, param2: w.of }, w.vital);
      assert.equal(typeof (m.messages as { warning?: unknown }).warning, 'string', w.vital);
    }
    const ranged = names.filter((n) => at(METADATA, n)!.ranges !== undefined);
    assert.deepEqual(ranged.sort(), VITAL_WARNINGS.map((w) => w.vital as string).sort());
  });

  it('warns as Particle does: low battery or signal, memory nearly full, publishes rate-limited, disconnects too often', () => {
    assert.deepEqual(warnings({ 'device.power.battery.charge': 19, 'device.network.signal.strength': 20 }), ['device.power.battery.charge']);
    assert.deepEqual(warnings({ 'device.system.memory.used': 91, 'device.system.memory.total': 100 }), ['device.system.memory.used']);
    assert.deepEqual(warnings({ 'device.system.memory.used': 91, 'device.system.memory.total': 0 }), [], 'no total to divide by');
    assert.deepEqual(warnings({ 'device.cloud.publish.rate_limited': 6, 'device.cloud.publish.sent': 100 }), ['device.cloud.publish.rate_limited']);
    // 5 disconnects in an hour is over 0.0013 a second; 4 is not.
    assert.deepEqual(warnings({ 'device.cloud.connection.disconnects': 5, 'device.system.uptime': 3600 }), ['device.cloud.connection.disconnects']);
    assert.deepEqual(warnings({ 'device.cloud.connection.disconnects': 4, 'device.system.uptime': 3600 }), []);
    assert.deepEqual(warnings({ 'device.cloud.connection.disconnects': 1, 'device.system.uptime': 0 }), [], 'just booted: nothing to divide by');
  });
});
