/**
 * Bad scenario files, wrong credentials and unreachable bridges give a clear
 * error before any device starts.
 */
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Fleet, FleetError, loadScenario, parseScenario, provision, ProvisionError, ScenarioError } from '@flotilla/simulator';
import { IMAGE_HEADER_SIZE, parseImageHeader } from '@flotilla/protocol';
import { main } from '../../simulator/src/main.js';
import { A1, startFixture, type Fixture } from '../helpers/bridge-fixture.js';
import { closedPort } from '../helpers/ports.js';

const BIN = fileURLToPath(new URL('../../simulator/bin/flotilla-simulate.mjs', import.meta.url));

/** [what is wrong, the scenario, the exact message]. */
const SCENARIOS: [string, unknown, string][] = [
  ['not an object', [], 'scenario t: (the file) must be an object'],
  ['unknown field', { vitals: 60, variabels: {} }, 'scenario t: variabels is not a known field (expected one of: description, firmware, vitals, keepalive, variables, functions, events, faults, battery, signal, memory, ota)'],
  ['vitals negative', { vitals: -1 }, 'scenario t: vitals must be a number from 0 to 86400'],
  ['variable type', { variables: { t: { type: 'float', value: 1 } } }, 'scenario t: variables.t.type must be one of bool, int32, double, string'],
  ['variable name', { variables: { 'a b': { type: 'int32', value: 1 } } }, 'scenario t: variables.a b is not a valid variable name: may only contain letters, digits, "_", "-" and "."'],
  ['value and walk', { variables: { t: { type: 'double', value: 1, walk: { start: 1, step: 1, min: 0, max: 2 } } } }, 'scenario t: variables.t needs a value or a walk (one of them)'],
  ['walk on a string', { variables: { t: { type: 'string', walk: { start: 1, step: 1, min: 0, max: 2 } } } }, 'scenario t: variables.t.walk is for number variables (double, int32)'],
  ['walk start outside', { variables: { t: { type: 'double', walk: { start: 5, step: 1, min: 0, max: 2 } } } }, 'scenario t: variables.t.walk.start must be a number from 0 to 2'],
  ['value of the wrong type', { variables: { t: { type: 'int32', value: 1.5 } } }, 'scenario t: variables.t.value is not a int32'],
  ['function sets nothing', { functions: { f: { sets: 'nope' } } }, 'scenario t: functions.f.sets names no variable of this scenario ("nope")'],
  ['function returns a fraction', { functions: { f: { returns: 0.5 } } }, 'scenario t: functions.f.returns must be a whole number from -2147483648 to 2147483647'],
  ['firmware a fraction (before, 1.5 ran as 1)', { firmware: 1.5 }, 'scenario t: firmware must be a whole number from 1 to 4294967295'],
  ['keepalive a fraction (before, 7.5 ran as 7)', { keepalive: 7.5 }, 'scenario t: keepalive must be a whole number from 5 to 3600'],
  ['event data past 1024 bytes', { events: [{ name: 'e', every: 1, data: 'x'.repeat(1025) }] }, 'scenario t: events[0].data can be 1025 bytes with its variables filled in, past the 1024 an event may carry'],
  ['event data past 1024 bytes with a number at its longest', { variables: { n: { type: 'int32', value: 1 } }, events: [{ name: 'e', every: 1, data: 'x'.repeat(1014) + '{{n}}' }] }, 'scenario t: events[0].data can be 1025 bytes with its variables filled in, past the 1024 an event may carry'],
  ['fails above 1', { functions: { f: { fails: 2 } } }, 'scenario t: functions.f.fails must be a number from 0 to 1'],
  ['events not a list', { events: {} }, 'scenario t: events must be a list'],
  ['reserved event name', { events: [{ name: 'spark/x', every: 1 }] }, 'scenario t: events[0].name is reserved for the cloud (names starting with "spark"); a device may not publish it'],
  ['event data names no variable', { events: [{ name: 'e', every: 1, data: '{{nope}}' }] }, 'scenario t: events[0].data names no variable of this scenario ("{{nope}}")'],
  ['event too often', { events: [{ name: 'e', every: 0 }] }, 'scenario t: events[0].every must be a number from 0.1 to 2592000'],
  ['unknown fault', { faults: { meteor: { every: 1 } } }, 'scenario t: faults.meteor is not a known field (expected one of: errors, crash, drop, flap, powerCut, latency)'],
  ['flap without down', { faults: { flap: { every: 10 } } }, 'scenario t: faults.flap.down must be a number from 0.1 to 86400'],
  ['battery above 100', { battery: { start: 120 } }, 'scenario t: battery.start must be a number from 0 to 100'],
  ['ota probability', { ota: { failTrial: 'often' } }, 'scenario t: ota.failTrial must be a number from 0 to 1'],
];

describe('simulator: bad input is refused before any device starts', function () {
  this.timeout(30_000);

  describe('scenarios', () => {
    for (const [what, json, message] of SCENARIOS)
      it(what, () => {
        assert.throws(() => parseScenario(json, 't'), (e: Error) => e instanceof ScenarioError && e.message === message);
      });

    it('event data of exactly 1024 bytes with its variables at their longest is taken', () => {
      const s = parseScenario({ variables: { n: { type: 'int32', value: 1 } }, events: [{ name: 'e', every: 1, data: 'x'.repeat(1013) + '{{n}}' }] }, 't');
      assert.equal(s.events[0].data.length, 1018);
    });

    it('too many variables', () => {
      const variables = Object.fromEntries(Array.from({ length: 21 }, (_, i) => ['v' + i, { type: 'int32', value: i }]));
      assert.throws(() => parseScenario({ variables }, 't'), { message: 'scenario t: variables holds more than the 20 a device may register' });
    });

    it('a name that is neither shipped nor a file', () => {
      assert.throws(() => loadScenario('no-such-scenario'), { message: 'scenario no-such-scenario: no such scenario (not a shipped name, not a file)' });
    });

    it('a file that is not JSON', () => {
      const dir = mkdtempSync(join(tmpdir(), 'flotilla-scenario-'));
      try {
        const file = join(dir, 'bad.json');
        writeFileSync(file, '{ "vitals": 60, }');
        assert.throws(() => loadScenario(file), (e: Error) => e instanceof ScenarioError && e.message.startsWith('scenario ' + file + ': not valid JSON: '));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('every shipped scenario is valid', () => {
      for (const name of ['default', 'quiet', 'chaos']) assert.equal(typeof loadScenario(name).description, 'string');
    });
  });

  describe('credentials and bridges', () => {
    let f: Fixture;
    let api: string;
    let dir: string;
    const scenario = parseScenario({ functions: { f: {} } }, 't');
    const devicesOf = async (product: string) => (await f.bridge.store.listDevices(product)).length;

    before(async () => {
      f = await startFixture({ httpPort: 0 });
      api = 'http://127.0.0.1:' + f.bridge.ports.http;
      dir = mkdtempSync(join(tmpdir(), 'flotilla-creds-'));
    });
    after(async () => {
      await f?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    const refused = (message: RegExp) => (e: Error) => e instanceof ProvisionError && message.test(e.message);

    it('a token the bridge does not know', async () => {
      await assert.rejects(provision({ api, token: 'not-a-token', product: 'prod-a', count: 3, file: null }), refused(/^the bridge refused the token \(401: /));
    });

    it('a token without the right on the product', async () => {
      // carol is a viewer of A: she may not add devices.
      await assert.rejects(provision({ api, token: f.tokens.carol, product: 'prod-a', count: 3, file: null }), refused(/^the token may not POST \/v1\/products\/\d+\/devices \(403: /));
    });

    it('a product the token cannot see', async () => {
      await assert.rejects(provision({ api, token: f.tokens.alice, product: 'prod-b', count: 3, file: null }), refused(/^GET \/v1\/products\/prod-b: not found \(404: /));
    });

    it('an API that does not answer', async () => {
      const port = await closedPort();
      await assert.rejects(provision({ api: 'http://127.0.0.1:' + port, token: 'x', product: 'prod-a', count: 3, file: null }), refused(new RegExp('^cannot reach the operator API at http://127\\.0\\.0\\.1:' + port + ': ECONNREFUSED')));
    });

    it('an API that takes the connection and never answers: refused after the time limit, or at once when stopped', async () => {
      const silent = createServer(() => {}); // holds every request
      await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
      const at = 'http://127.0.0.1:' + (silent.address() as AddressInfo).port;
      try {
        await assert.rejects(provision({ api: at, token: 'x', product: 'prod-a', count: 3, file: null, timeoutMs: 300 }), refused(new RegExp('^no answer from the operator API at ' + at.replace(/\./g, '\\.') + ' within 0\\.3 s \\(GET /v1/products/prod-a\\)$')));
        // With a stop signal too, as the CLI always passes, and a garbage collection meanwhile: Node 20's
        // AbortSignal.any lost the timeout then (nodejs/node#57736), and the call waited for good.
        setFlagsFromString('--expose-gc');
        const gc = runInNewContext('gc') as () => void;
        const collect = setInterval(gc, 50);
        try {
          await assert.rejects(provision({ api: at, token: 'x', product: 'prod-a', count: 3, file: null, timeoutMs: 300, signal: new AbortController().signal }), refused(/^no answer from the operator API at .* within 0\.3 s/));
        } finally {
          clearInterval(collect);
        }
        const stop = new AbortController();
        setTimeout(() => stop.abort(), 100);
        await assert.rejects(provision({ api: at, token: 'x', product: 'prod-a', count: 3, file: null, signal: stop.signal }), refused(/^stopped while calling the operator API \(GET \/v1\/products\/prod-a\)$/));
      } finally {
        silent.closeAllConnections();
        silent.close();
      }
    });

    it('a stop while devices are being registered lets the batch under way finish and saves it: none is left registered with its secret lost', async () => {
      const file = join(dir, 'stopped.json');
      const stop = new AbortController();
      const before = await devicesOf(f.products.A);
      // Stopped as the bridge starts registering the batch (Ctrl-C during registration).
      const create = f.bridge.store.createDevice.bind(f.bridge.store);
      f.bridge.store.createDevice = (d) => (stop.abort(), create(d));
      try {
        // The batch (all 7) is taken and saved; the caller heeds the stop before any device starts.
        const got = await provision({ api, token: f.tokens.alice, product: 'prod-a', count: 7, file, signal: stop.signal });
        assert.equal(got.devices.length, 7);
        assert.ok(stop.signal.aborted);
        // Asked again with the stop still set: nothing more is registered, and it says it stopped.
        await assert.rejects(provision({ api, token: f.tokens.alice, product: 'prod-a', count: 9, file, signal: stop.signal }), refused(/^stopped /));
      } finally {
        f.bridge.store.createDevice = create;
      }
      const saved = JSON.parse(readFileSync(file, 'utf8')) as { devices: { id: string }[] };
      assert.equal(saved.devices.length, 7);
      assert.equal((await devicesOf(f.products.A)) - before, 7, 'what the bridge registered is what was saved');
      for (const d of saved.devices) assert.ok(await f.bridge.store.getDevice(d.id), d.id);
    });

    it('a credentials file that is not one', async () => {
      const file = join(dir, 'broken.json');
      writeFileSync(file, JSON.stringify({ product: { id: 1, slug: 'prod-a' }, devices: [{ id: 'xyz', secret: 's' }] }));
      await assert.rejects(provision({ api, token: null, product: 'prod-a', count: 1, file }), refused(/devices\[0\]\.id is not a device id \(24 lowercase hex characters\)/));
    });

    it('a credentials file of another product', async () => {
      const file = join(dir, 'other.json');
      writeFileSync(file, JSON.stringify({ product: { id: 2, slug: 'prod-b' }, devices: [] }));
      await assert.rejects(provision({ api, token: null, product: 'prod-a', count: 1, file }), refused(/holds devices of product "prod-b", not "prod-a"/));
    });

    it('too few devices in the file and no token', async () => {
      const file = join(dir, 'few.json');
      writeFileSync(file, JSON.stringify({ product: { id: Number(f.products.A), slug: 'prod-a' }, devices: [{ id: A1, secret: 'x' }] }));
      await assert.rejects(provision({ api, token: null, product: 'prod-a', count: 5, file }), refused(/^5 devices are needed and .* holds 1; give a token/));
    });

    it('a wrong device secret: the first device is refused, and no other starts', async () => {
      const devices = [{ id: A1, secret: 'wrong-secret' }, { id: 'a3a3a3a3a3a3a3a3a3a3a3a3', secret: 'x' }];
      const fleet = new Fleet({ bridge: 'mqtt://127.0.0.1:' + f.port, product: Number(f.products.A), devices, scenario });
      await assert.rejects(fleet.start(), (e: Error) => e instanceof FleetError && e.message === `the bridge refused device ${A1}: bad user name or password (CONNACK 4); check its id and secret (credentials file or provisioning)`);
      assert.equal(fleet.stats().started, 1);
      assert.equal(fleet.stats().connected, 0);
    });

    it('a bridge that is not there', async () => {
      const fleet = new Fleet({ bridge: 'mqtt://127.0.0.1:1', product: 1, devices: [{ id: A1, secret: 'x' }], scenario });
      await assert.rejects(fleet.start(), (e: Error) => e instanceof FleetError && e.message.startsWith('cannot reach the bridge at mqtt://127.0.0.1:1: ECONNREFUSED'));
      assert.equal(fleet.stats().started, 0);
    });

    it('a bridge address that is not one', () => {
      assert.throws(() => new Fleet({ bridge: 'http://x', product: 1, devices: [], scenario }), { message: 'the bridge address "http://x" is not mqtt://host:port or mqtts://host:port' });
    });

    describe('the command', () => {
      let err: string[];
      let log: string[];
      const saved = { error: console.error, log: console.log };
      beforeEach(() => {
        err = [];
        log = [];
        console.error = (...a: unknown[]) => err.push(a.join(' '));
        console.log = (...a: unknown[]) => log.push(a.join(' '));
      });
      afterEach(() => Object.assign(console, saved));

      it('exits 2 on a wrong token, having started no device', async () => {
        const before = await devicesOf(f.products.A);
        const code = await main(['--devices', '5', '--product', 'prod-a', '--api', api, '--bridge', 'mqtt://127.0.0.1:' + f.port, '--token', 'nope', '--credentials', join(dir, 'cmd.json')]);
        assert.equal(code, 2);
        assert.match(err.join('\n'), /^flotilla-simulate: the bridge refused the token \(401: /);
        assert.equal(await devicesOf(f.products.A), before);
      });

      it('says why a device whose image cannot start stopped the run: its crash, on stderr', async () => {
        const flash = join(dir, 'crash-flash');
        const args = ['--devices', '1', '--product', 'prod-a', '--api', api, '--bridge', 'mqtt://127.0.0.1:' + f.port, '--token', f.tokens.alice, '--credentials', join(dir, 'crash.json'), '--flash-dir', flash, '--duration', '0.5', '--quiet'];
        assert.equal(await main(args), 0, err.join('\n'));
        const [id] = readdirSync(flash);
        truncateSync(join(flash, id, 'slot0.bin'), 1000);
        err.length = 0;
        assert.equal(await main(args), 2);
        const said = err.join('\n');
        assert.match(said, new RegExp('^flotilla-simulate: ' + id + ': crashed: .+', 'm'), said);
        assert.match(said, /image crashed at start; see the log/);
      });

      it('runs a fleet for --duration, then prints its summary (a path here that is not an error)', async () => {
        const code = await main(['--devices', '3', '--product', 'prod-a', '--api', api, '--bridge', 'mqtt://127.0.0.1:' + f.port, '--token', f.tokens.alice, '--credentials', join(dir, 'ok.json'), '--duration', '1.5', '--quiet']);
        assert.equal(code, 0, err.join('\n'));
        const out = log.join('\n');
        assert.match(out, /^flotilla-simulate: 3 devices of product prod-a \(id \d+\), scenario default: Room sensors/);
        assert.match(out, /Fleet summary: 3 devices, scenario default, 2 s/);
        assert.match(out, /connected at the end +3\/3/);
        assert.match(out, /firmware +v1: 3/);
      });

      it('writes the fleet\'s image of another version with --write-image and exits; the bridge takes it as that version', async () => {
        const out = join(dir, 'app.flim');
        const before = await devicesOf(f.products.A);
        const code = await main(['--product', 'prod-a', '--api', api, '--token', f.tokens.alice, '--credentials', join(dir, 'none.json'), '--firmware', '2', '--write-image', out]);
        assert.equal(code, 0, err.join('\n'));
        const image = readFileSync(out);
        const header = parseImageHeader(image);
        const product = (await f.bridge.store.getProduct('prod-a'))!.id;
        assert.deepEqual([header.product, header.version, header.bodySize], [product, 2, image.length - IMAGE_HEADER_SIZE]);
        assert.deepEqual(Buffer.from(header.bodySha256), createHash('sha256').update(image.subarray(IMAGE_HEADER_SIZE)).digest());
        const sha = createHash('sha256').update(image).digest('hex');
        assert.equal(log.join('\n'), `flotilla-simulate: wrote ${out}: firmware 2 of product prod-a (id ${product}), ${image.length} bytes, SHA-256 ${sha}`);
        const form = new FormData();
        form.append('file', new Blob([image]), 'app.flim');
        form.append('version', '2');
        const res = await fetch(api + '/v1/products/prod-a/firmware', { method: 'POST', headers: { authorization: 'Bearer ' + f.tokens.alice }, body: form });
        assert.equal(res.status, 201, await res.text());
        assert.equal(await devicesOf(f.products.A), before, 'no device was registered for it');
        assert.equal(existsSync(join(dir, 'none.json')), false, 'nor a credentials file written');
      });

      it('exits 2 when --write-image cannot learn the product\'s id (no token, no credentials file)', async () => {
        const code = await main(['--product', 'prod-a', '--api', api, '--credentials', join(dir, 'none.json'), '--write-image', join(dir, 'x.flim')]);
        assert.equal(code, 2);
        assert.equal(err.join('\n'), `flotilla-simulate: the id of product "prod-a" is needed and ${join(dir, 'none.json')} does not exist; give a token (--token or FLOTILLA_TOKEN) to look it up`);
        assert.equal(existsSync(join(dir, 'x.flim')), false);
      });

      it('exits 1 with one line, no stack trace, when a file it is given cannot be used (--write-image into no directory, --ca missing, --flash-dir a file)', async () => {
        const file = join(dir, 'plain-file');
        writeFileSync(file, 'x');
        const cases: [string[], RegExp][] = [
          [['--token', f.tokens.alice, '--credentials', join(dir, 'none.json'), '--write-image', join(dir, 'no', 'such', 'dir', 'x.flim')], /^flotilla-simulate: cannot open .*x\.flim: ENOENT$/],
          [['--token', f.tokens.alice, '--credentials', join(dir, 'ca.json'), '--bridge', 'mqtts://127.0.0.1:' + f.port, '--ca', join(dir, 'no-ca.pem'), '--devices', '1', '--duration', '1'], /^flotilla-simulate: cannot open .*no-ca\.pem: ENOENT$/],
          [['--token', f.tokens.alice, '--credentials', join(dir, 'fd.json'), '--bridge', 'mqtt://127.0.0.1:' + f.port, '--flash-dir', file, '--devices', '1', '--duration', '1', '--quiet'], /^flotilla-simulate: cannot mkdir .*plain-file.*: ENOTDIR$/],
        ];
        for (const [args, message] of cases) {
          err.length = 0;
          const code = await main(['--product', 'prod-a', '--api', api, ...args]);
          assert.equal(code, 1, args.join(' ') + ': ' + err.join('\n'));
          assert.match(err.join('\n'), message);
        }
      });

      it('exits 2 on a bad scenario, before asking the API anything', async () => {
        const code = await main(['--product', 'prod-a', '--api', 'http://127.0.0.1:1', '--scenario', 'nope']);
        assert.equal(code, 2);
        assert.equal(err.join('\n'), 'flotilla-simulate: scenario nope: no such scenario (not a shipped name, not a file)');
      });

      for (const [args, message] of [
        [['--devices', 'many', '--product', 'p'], '--devices must be a whole number from 1 to 100000, not "many"'],
        [['--devices', '3'], '--product is required (the slug or id of the product the devices belong to)'],
        [['--product', 'p', '--ramp', '0'], '--ramp must be a positive number, not "0"'],
        [['--product', 'p', '--duration', '3000000'], '--duration must be a positive number of seconds up to 2147483 (24 days), not "3000000"'],
        [['--product', 'p', '--duration', 'Infinity'], '--duration must be a positive number of seconds up to 2147483 (24 days), not "Infinity"'],
        [['--product', 'p', '--firmware', '0'], '--firmware must be a whole number from 1 to 4294967295, not "0"'],
        [['--product', 'p', '--firmware', '4294967296'], '--firmware must be a whole number from 1 to 4294967295, not "4294967296"'],
        [['--product', 'p', '--colour', 'blue'], "Unknown option '--colour'"],
      ] as [string[], string][])
        it('exits 2 on ' + args.join(' '), async () => {
          assert.equal(await main(args), 2);
          assert.ok(err.join('\n').startsWith('flotilla-simulate: ' + message), err.join('\n'));
        });
    });

    describe('the command, stopped by a signal', () => {
      /** The installed command in a process of its own, as a shell runs it. */
      const run = (args: string[]) => {
        const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FLOTILLA_TOKEN: '' } });
        let out = '';
        let err = '';
        child.stdout.on('data', (d) => (out += d));
        child.stderr.on('data', (d) => (err += d));
        const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
        return { child, exited, out: () => out, err: () => err };
      };
      const until = async (what: string, test: () => boolean | Promise<boolean>) => {
        for (let i = 0; i < 300; i++) {
          if (await test()) return;
          await new Promise((r) => setTimeout(r, 50));
        }
        assert.fail('timed out waiting for ' + what);
      };

      it('while registering devices: ends the API call under way, says so, exits 130 (before, it waited on the API)', async () => {
        let asked = 0;
        const silent = createServer(() => void asked++); // holds every request
        await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
        try {
          const r = run(['--devices', '3', '--product', 'prod-a', '--api', 'http://127.0.0.1:' + (silent.address() as AddressInfo).port, '--token', 'x', '--credentials', join(dir, 'hung.json')]);
          await until('the first API call', () => asked > 0);
          r.child.kill('SIGINT');
          assert.equal(await r.exited, 130, r.err());
          assert.equal(r.err(), 'flotilla-simulate: stopped (SIGINT) before the fleet started\n');
        } finally {
          silent.closeAllConnections();
          silent.close();
        }
      });

      it('during the ramp: the devices started stop and the summary is printed (before, SIGTERM killed it with no summary)', async () => {
        const r = run(['--devices', '4', '--ramp', '0.1', '--quiet', '--product', 'prod-a', '--api', api, '--bridge', 'mqtt://127.0.0.1:' + f.port, '--token', f.tokens.alice, '--credentials', join(dir, 'ramp.json')]);
        // The probe device, then the ramp's first at once; the next is due 10 s later.
        await until('two devices\' hellos', async () => {
          if (!existsSync(join(dir, 'ramp.json'))) return false;
          const { devices } = JSON.parse(readFileSync(join(dir, 'ramp.json'), 'utf8')) as { devices: { id: string }[] };
          // A hello is sent once the device has its CONNACK (the bridge marks it online before).
          const versions = await Promise.all(devices.map(async (d) => (await f.bridge.store.getDevice(d.id))?.firmwareVersion));
          return versions.filter((v) => v === 1).length === 2;
        });
        r.child.kill('SIGTERM');
        assert.equal(await r.exited, 0, r.err());
        // The summary of the devices started, as docs/simulator.md says: 2 of the 4 asked (it read "4 devices", "2/4").
        assert.match(r.out(), /Fleet summary: 2 devices started \(of 4\), scenario default, /);
        assert.match(r.out(), /connected at the end +2\/2/);
        assert.match(r.out(), /sessions +2 accepted, 0 refused/);
      });

      it('shows its live line during the ramp, with the devices started so far (before, nothing until the ramp ended)', async function () {
        this.timeout(30_000);
        // Not a terminal: a line every 10 s. The ramp, 4 devices at 0.1/s, lasts 30 s.
        const r = run(['--devices', '4', '--ramp', '0.1', '--product', 'prod-a', '--api', api, '--bridge', 'mqtt://127.0.0.1:' + f.port, '--token', f.tokens.alice, '--credentials', join(dir, 'live.json')]);
        for (let i = 0; i < 300 && !/\(ramp \d+\)/.test(r.out()); i++) await new Promise((res) => setTimeout(res, 50));
        r.child.kill('SIGTERM');
        assert.equal(await r.exited, 0, r.err());
        assert.match(r.out(), /^connected \d\/4 \(ramp [12]\) · /m);
      });
    });
  });
});
