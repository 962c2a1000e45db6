/**
 * A fleet over mqtts: devices trust the bridge's CA (DATA_DIR/tls/bridge-ca.crt,
 * as `--ca` gives it) and log in with their secrets; a fleet that does not
 * trust the bridge's certificate stops at the probe with the reason.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Fleet, FleetError, parseScenario } from '@flotilla/simulator';
import { A1, A2, SECRET, startFixture, type Fixture } from '../helpers/bridge-fixture.js';

describe('simulator: a fleet over mqtts', function () {
  this.timeout(30_000);
  let f: Fixture;
  const scenario = parseScenario({ functions: { setLed: {} } }, 't');
  const devices = ([A1, A2] as const).map((id) => ({ id, secret: SECRET[id] }));

  before(async () => {
    f = await startFixture({ mqttsPort: 0 });
  });
  after(async () => {
    await f?.close();
  });

  it('connects every device, trusting the bridge CA', async () => {
    const ca = readFileSync(join(f.dir, 'tls', 'bridge-ca.crt'));
    const fleet = new Fleet({ bridge: 'mqtts://127.0.0.1:' + f.bridge.ports.mqtts, tls: { ca }, product: Number(f.products.A), devices, scenario });
    try {
      await fleet.start();
      assert.ok(await fleet.until((s) => s.connected === 2, 10_000), JSON.stringify(fleet.stats()));
      assert.equal((await f.bridge.store.getDevice(A1))?.online, true);
    } finally {
      fleet.stop();
    }
  });

  it('without the CA, stops at the probe: the certificate is not trusted', async () => {
    const fleet = new Fleet({ bridge: 'mqtts://127.0.0.1:' + f.bridge.ports.mqtts, product: Number(f.products.A), devices, scenario });
    await assert.rejects(fleet.start(), (e: Error) =>
      e instanceof FleetError && /^cannot reach the bridge at mqtts:\/\/127\.0\.0\.1:\d+: .*(self-signed|unable to verify|certificate).*; trust the bridge's CA with --ca <its data dir>\/tls\/bridge-ca\.crt$/i.test(e.message));
    assert.equal(fleet.stats().started, 0);
  });

  it('with a CA that did not sign the bridge\'s certificate, says so', async () => {
    // The server's own certificate is no CA of it.
    const other = readFileSync(join(f.dir, 'tls', 'server.crt'));
    const fleet = new Fleet({ bridge: 'mqtts://127.0.0.1:' + f.bridge.ports.mqtts, tls: { ca: other }, product: Number(f.products.A), devices, scenario });
    await assert.rejects(fleet.start(), (e: Error) => e instanceof FleetError && /; the CA given \(--ca\) did not sign the bridge's certificate: a bridge's own CA is <its data dir>\/tls\/bridge-ca\.crt$/.test(e.message));
    assert.equal(fleet.stats().started, 0);
  });
});
