/**
 * The main job, as README runs it: `npm start` (demo/start.mjs) starts a
 * bridge with the embedded SQLite default and a simulated fleet; the first
 * run creates the org, the product and a token printed once; the printed
 * curl calls work; Ctrl-C prints the fleet's summary and stops both; the
 * second run brings the same devices back and prints no token.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createBridge } from '@flotilla/bridge';

const START = fileURLToPath(new URL('../../demo/start.mjs', import.meta.url));

interface Run {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function start(dataDir: string, ...args: string[]): Run {
  // Ports 0: the system picks; the demo prints the ones it got.
  // Its own process group, as in a terminal: Ctrl-C (ctrlC below) reaches the launcher and the simulator both.
  const child = spawn(process.execPath, [START, '--data-dir', dataDir, '--http-port', '0', '--mqtt-port', '0', '--mqtts-port', 'off', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
    env: { ...process.env, FLOTILLA_TOKEN: '' },
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return { child, output: () => out, exited: new Promise((r) => child.once('exit', (code) => r(code))) };
}

/** What a terminal does on Ctrl-C: SIGINT to every process of the foreground group. */
function ctrlC(r: Run): void {
  process.kill(-r.child.pid!, 'SIGINT');
}

async function waitFor<T>(what: string, run: Run, test: () => T | null | undefined | false | Promise<T | null | undefined | false>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await test();
    if (v) return v;
    if (Date.now() > end) assert.fail(`${what}; output so far:\n${run.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('npm start: a bridge and a simulated fleet', function () {
  this.timeout(90_000);
  let dir: string;
  let run: Run | null = null;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'flotilla-demo-'));
  });
  afterEach(async () => {
    if (run && run.child.exitCode === null) {
      process.kill(-run.child.pid!, 'SIGKILL');
      await run.exited;
    }
    run = null;
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  let token = '';
  let api = '';
  let firstIds: string[] = [];

  it('first run: creates the org, product and a token, and the printed calls reach the fleet', async () => {
    const r = (run = start(dir, '--devices', '5'));
    token = await waitFor('a token printed', r, () => /Token +(\S+) +\(the owner's/.exec(r.output())?.[1]);
    api = await waitFor('the API address printed', r, () => /HTTP API +(http:\/\/\S+)\/v1/.exec(r.output())?.[1]);
    assert.match(r.output(), /Owner +owner \/ \S+ +\(password shown once\)/);
    assert.match(r.output(), /Product +demo-fleet \(id \d+\) in org demo-org/);
    const auth = { authorization: 'Bearer ' + token };
    const devices = await waitFor('5 devices online', r, async () => {
      const list = (await (await fetch(api + '/v1/products/demo-fleet/devices', { headers: auth })).json()) as { devices: { id: string; online: boolean }[] };
      return list.devices.length === 5 && list.devices.every((d) => d.online) && list.devices;
    });
    firstIds = devices.map((d) => d.id).sort();
    // The printed examples, as printed (the first device's id is in them).
    const example = /devices\/([0-9a-f]{24})\/temperature/.exec(r.output())![1];
    assert.ok(firstIds.includes(example));
    const read = (await (await fetch(`${api}/v1/products/demo-fleet/devices/${example}/temperature`, { headers: auth })).json()) as { result: number };
    assert.equal(typeof read.result, 'number');
    const call = (await (await fetch(`${api}/v1/products/demo-fleet/devices/${example}/setLed`, { method: 'POST', headers: auth, body: new URLSearchParams({ arg: 'on' }) })).json()) as { return_value: number };
    assert.equal(call.return_value, 1);
    // Ctrl-C: the fleet's summary, then both stop (the simulator gets the terminal's SIGINT and the launcher's).
    ctrlC(r);
    assert.equal(await r.exited, 0, r.output());
    assert.match(r.output(), /Fleet summary: 5 devices, scenario default/);
  });

  it('second run: the same devices come back, and no token is printed again', async () => {
    const r = (run = start(dir, '--devices', '5'));
    await waitFor('the product line', r, () => /Product +demo-fleet/.test(r.output()));
    assert.doesNotMatch(r.output(), /Owner +owner \//);
    assert.match(r.output(), /Token +shown on the first run/);
    api = /HTTP API +(http:\/\/\S+)\/v1/.exec(r.output())![1];
    const auth = { authorization: 'Bearer ' + token };
    const ids = await waitFor('the same 5 devices online', r, async () => {
      const list = (await (await fetch(api + '/v1/products/demo-fleet/devices', { headers: auth })).json()) as { devices: { id: string; online: boolean }[] };
      return list.devices.every((d) => d.online) && list.devices.length === 5 && list.devices.map((d) => d.id).sort();
    });
    assert.deepEqual(ids, firstIds);
    r.child.kill('SIGTERM');
    assert.equal(await r.exited, 0, r.output());
  });

  it('a run with another scenario: the same devices run that scenario\'s app (their kept factory image is replaced)', async () => {
    const r = (run = start(dir, '--devices', '5', '--scenario', 'chaos'));
    await waitFor('the product line', r, () => /Product +demo-fleet/.test(r.output()));
    api = /HTTP API +(http:\/\/\S+)\/v1/.exec(r.output())![1];
    const auth = { authorization: 'Bearer ' + token };
    // The chaos app has a function the default one lacks; a device announces its functions when it connects.
    const ids = await waitFor('the 5 devices running the chaos app', r, async () => {
      const list = (await (await fetch(api + '/v1/products/demo-fleet/devices', { headers: auth })).json()) as { devices: { id: string; functions: string[] }[] };
      return list.devices.length === 5 && list.devices.every((d) => d.functions.includes('flaky')) && list.devices.map((d) => d.id).sort();
    });
    assert.deepEqual(ids, firstIds);
    r.child.kill('SIGTERM');
    assert.equal(await r.exited, 0, r.output());
  });

  it('--no-simulator runs the bridge alone', async () => {
    const r = (run = start(dir, '--no-simulator'));
    api = await waitFor('the API address printed', r, () => /HTTP API +(http:\/\/\S+)\/v1/.exec(r.output())?.[1]);
    assert.doesNotMatch(r.output(), /Fleet +\d+ simulated devices/);
    const list = (await (await fetch(api + '/v1/products/demo-fleet/devices', { headers: { authorization: 'Bearer ' + token } })).json()) as { devices: { online: boolean }[] };
    assert.equal(list.devices.length, 5);
    r.child.kill('SIGINT');
    assert.equal(await r.exited, 0, r.output());
  });

  it('with the HTTP API off, says so instead of printing calls to port null; a data directory whose owner has another name is said in one line, not a stack trace', async () => {
    const off = mkdtempSync(join(tmpdir(), 'flotilla-demo-off-'));
    try {
      const r = (run = start(off, '--http-port', 'off'));
      await waitFor('the bridge started', r, () => /The HTTP API is off/.test(r.output()));
      assert.doesNotMatch(r.output(), /:null/);
      assert.doesNotMatch(r.output(), /Fleet +\d+ simulated devices/);
      r.child.kill('SIGINT');
      assert.equal(await r.exited, 0, r.output());
      // The demo's org is there but its state file is gone: one line, and the bridge is closed (its data directory released).
      rmSync(join(off, 'demo.json'));
      const lost = (run = start(off, '--http-port', 'off'));
      assert.equal(await lost.exited, 1, lost.output());
      assert.match(lost.output(), /^flotilla: an org named .* exists in .*, but not the demo's state \(.*demo\.json\): put that file back, or start from an empty data directory$/m);
      assert.doesNotMatch(lost.output(), /\n\s+at /, 'no stack trace');
      assert.ok(!existsSync(join(off, 'bridge.pid')), 'the data directory is released');
      // A data directory first made by the bridge alone with another owner's name.
      const other = mkdtempSync(join(tmpdir(), 'flotilla-demo-admin-'));
      try {
        const b = await createBridge({ dataDir: other, httpPort: null, mqttPort: 0, mqttsPort: null, logLevel: 'silent', ownerUsername: 'admin', ownerPassword: 'admin-password' });
        await b.close();
        const again = (run = start(other, '--no-simulator'));
        assert.equal(await again.exited, 1, again.output());
        assert.match(again.output(), /^flotilla: the owner "owner" is missing from .*: start from an empty data directory, or give --owner-username$/m);
        assert.doesNotMatch(again.output(), /\n\s+at /, 'no stack trace');
      } finally {
        rmSync(other, { recursive: true, force: true });
      }
    } finally {
      rmSync(off, { recursive: true, force: true });
    }
  });

  it('says the owner\'s password and token before it registers the fleet: Ctrl-C while registering loses neither, nor any device\'s secret', async () => {
    const fresh = mkdtempSync(join(tmpdir(), 'flotilla-demo-stop-'));
    try {
      const r = (run = start(fresh, '--devices', '3000'));
      // Before, both were printed after the registration, which a Ctrl-C or an error cut short: the owner was locked out.
      await waitFor('the token printed', r, () => /Token +\S+ +\(the owner's/.test(r.output()));
      ctrlC(r);
      assert.equal(await r.exited, 0, r.output());
      assert.match(r.output(), /Owner +owner \/ \S+ +\(password shown once\)/);
      // Every device the bridge registered has its secret in the credentials file (the batch under way was finished and saved).
      const b = await createBridge({ dataDir: fresh, httpPort: null, mqttPort: 0, mqttsPort: null, logLevel: 'silent' });
      try {
        const product = (await b.store.getProduct('demo-fleet'))!;
        const registered = (await b.store.listDevices(product.id)).map((d) => d.id).sort();
        const file = join(fresh, 'simulator', 'demo-fleet.json');
        const saved = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { devices: { id: string }[] }).devices.map((d) => d.id).sort() : [];
        assert.deepEqual(registered, saved);
        assert.ok(registered.length < 3000, `the Ctrl-C came while registering (${registered.length} of 3000 registered)`);
      } finally {
        await b.close();
      }
    } finally {
      rmSync(fresh, { recursive: true, force: true });
    }
  });

  it('says in one line that demo.json is not its state, and still shows the owner\'s password made on this run (before, a TypeError, and the password lost)', async () => {
    const fresh = mkdtempSync(join(tmpdir(), 'flotilla-demo-state-'));
    try {
      writeFileSync(join(fresh, 'demo.json'), '{}');
      const r = (run = start(fresh, '--no-simulator'));
      assert.equal(await r.exited, 1, r.output());
      assert.match(r.output(), /Owner +owner \/ \S+ +\(password shown once\)/);
      assert.match(r.output(), /^flotilla: .*demo\.json is not the demo's state \(it lacks org, product \{id, slug\} or simulatorToken\): /m);
      assert.doesNotMatch(r.output(), /\n\s+at /, 'no stack trace');
      assert.ok(!existsSync(join(fresh, 'bridge.pid')), 'the bridge closed');
    } finally {
      rmSync(fresh, { recursive: true, force: true });
    }
  });

  it('makes the simulator a new token when its own is refused (its API user deleted), and goes on', async () => {
    const fresh = mkdtempSync(join(tmpdir(), 'flotilla-demo-token-'));
    try {
      const first = (run = start(fresh, '--no-simulator'));
      await waitFor('the bridge started', first, () => /Flotilla is running/.test(first.output()));
      first.child.kill('SIGINT');
      assert.equal(await first.exited, 0, first.output());
      const b = await createBridge({ dataDir: fresh, httpPort: null, mqttPort: 0, mqttsPort: null, logLevel: 'silent' });
      const product = (await b.store.getProduct('demo-fleet'))!;
      for (const u of await b.store.listApiUsers({ productId: product.id })) await b.store.deleteApiUser(u.id);
      await b.close();
      // Before: a stack trace advising particle token create, which the demo never reads; the bridge left running.
      const r = (run = start(fresh, '--devices', '2'));
      await waitFor('the fleet registered', r, () => /Fleet +2 simulated devices/.test(r.output()));
      assert.match(r.output(), /the simulator's token was refused; a new one is in .*demo\.json/);
      assert.doesNotMatch(r.output(), /\n\s+at /, 'no stack trace');
      ctrlC(r);
      assert.equal(await r.exited, 0, r.output());
    } finally {
      rmSync(fresh, { recursive: true, force: true });
    }
  });

  it('refuses a scenario it cannot run and a fleet past the simulator\'s limit at once, before the bridge starts (exit 2, nothing created)', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'flotilla-demo-refused-'));
    try {
      const cases: [string[], RegExp][] = [
        [['--scenario', 'no-such-scenario'], /^flotilla: scenario no-such-scenario: no such scenario \(not a shipped name, not a file\)$/m],
        [['--devices', '100001'], /^flotilla: --devices must be a whole number from 0 to 100000, not "100001"$/m],
      ];
      for (const [args, said] of cases) {
        const r = (run = start(empty, ...args));
        assert.equal(await r.exited, 2, r.output());
        assert.match(r.output(), said);
        assert.doesNotMatch(r.output(), /Flotilla is running/);
        assert.equal(existsSync(join(empty, 'flotilla.db')), false, 'no bridge started');
      }
      // A scenario is the fleet's: the bridge alone does not read it.
      const alone = (run = start(empty, '--no-simulator', '--scenario', 'no-such-scenario'));
      await waitFor('the bridge alone started', alone, () => /Flotilla is running/.test(alone.output()));
      alone.child.kill('SIGINT');
      assert.equal(await alone.exited, 0, alone.output());
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
