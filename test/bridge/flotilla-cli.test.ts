/**
 * The flotilla operator CLI (bridge/src/operator-cli) against a real bridge:
 * as a child process (bridge/bin/flotilla.mjs) for upload, list, release,
 * rollout status and its watch while the real agent on a1 updates over the
 * air, a refusal and a usage error; in process (main) for the rest. The
 * progress bar is a pure function and is tested on its own first.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { VmDevice } from '@flotilla/simulator';
import { A1, A2, SECRET, startDemoAgent, startFixture, type Fixture } from '../helpers/bridge-fixture.js';
import { DEMO_APP, image, program } from '../helpers/images.js';
import { closedPort } from '../helpers/ports.js';
import { main, type Io } from '../../bridge/src/operator-cli/main.js';
import { progressBar, rolloutLine } from '../../bridge/src/operator-cli/progress.js';
import { outcome } from '../../bridge/src/operator-cli/watch.js';
import { table } from '../../bridge/src/operator-cli/table.js';

const BIN = join(process.cwd(), 'bridge', 'bin', 'flotilla.mjs');

interface Run {
  code: number;
  out: string;
  err: string;
}

describe('flotilla CLI: tables', () => {
  it('shows what the API holds without letting it drive the terminal: control characters as U+FFFD', () => {
    // A title stored before the bridge refused them, or from another tool.
    assert.equal(table(['VERSION', 'TITLE'], [['2', 'evil\u001b]0;pwned\u0007']]), 'VERSION  TITLE\n2        evil\ufffd]0;pwned\ufffd\n');
  });
});

describe('flotilla CLI: the progress bar', () => {
  const c = (done: number, failed: number, in_progress: number, pending: number) => ({ total: done + failed + in_progress + pending, done, failed, in_progress, pending });

  it('gives each kind its share of the cells, adding up to the width', () => {
    assert.equal(progressBar(c(12, 1, 2, 5), 20), '############x..-----');
    assert.equal(progressBar(c(10, 0, 0, 10), 10), '#####-----');
    assert.equal(progressBar(c(1, 1, 1, 0), 10), '####xxx...');
    for (const counts of [c(3, 0, 0, 0), c(0, 0, 0, 7), c(333, 1, 5, 661), c(1, 2, 3, 4)]) assert.equal(progressBar(counts, 17).length, 17);
  });

  it('shows every kind that has a device, and all # only when all are done', () => {
    assert.equal(progressBar(c(998, 1, 0, 1), 20), '##################x-');
    assert.equal(progressBar(c(999, 0, 0, 1), 20), '###################-');
    assert.equal(progressBar(c(5, 0, 0, 0), 20), '#'.repeat(20));
    assert.equal(progressBar(c(0, 0, 0, 0), 8), ' '.repeat(8), 'no devices: an empty bar');
  });

  it('makes the status line, with the reason of a rollout that is not running', () => {
    const r = { id: 3, version: 2, state: 'running' as const, reason: null, devices: c(12, 1, 2, 5) };
    assert.equal(rolloutLine(r), 'rollout 3 v2 running [############x..-----] 12/20 done, 1 failed, 2 updating, 5 pending');
    // Too narrow for shares: one cell for each kind present.
    assert.equal(rolloutLine({ ...r, state: 'paused', reason: 'paused by user u1' }, 4), 'rollout 3 v2 paused [#x.-] 12/20 done, 1 failed, 2 updating, 5 pending (paused by user u1)');
  });

  it('calls a rollout complete only while it runs with nothing pending or updating', () => {
    assert.equal(outcome({ state: 'running', devices: c(4, 1, 0, 0) }), 'complete');
    assert.equal(outcome({ state: 'running', devices: c(4, 0, 1, 0) }), 'running');
    assert.equal(outcome({ state: 'superseded', devices: c(0, 0, 0, 0) }), 'stopped');
    assert.equal(outcome({ state: 'paused', devices: c(1, 0, 0, 3) }), 'stopped');
  });
});

describe('flotilla CLI against a bridge', function () {
  this.timeout(60000);
  let f: Fixture;
  let agent: VmDevice;
  let dir: string;
  let api: string;
  let v2: string;
  let bundle: string;

  /** The CLI as a child process, with stdout not a TTY; the token from the environment unless given; `onOut` sees stdout as it comes. */
  function flotilla(args: string[], token: string = f.tokens.alice, onOut?: (text: string) => void): Promise<Run> {
    return new Promise((resolve) => {
      const env = { ...process.env, FLOTILLA_API: api, FLOTILLA_TOKEN: token };
      const child = execFile(process.execPath, [BIN, ...args], { env, timeout: 30000 }, (err, out, errText) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out, err: errText }),
      );
      if (onOut) child.stdout?.on('data', (b: Buffer) => onOut(b.toString()));
      child.stdin?.end();
    });
  }

  /** The CLI in process, its output captured. */
  async function inProcess(args: string[], token: string = f.tokens.alice, tty = false): Promise<Run> {
    const out: string[] = [];
    const err: string[] = [];
    const io: Io = { stdout: { write: (s: string) => out.push(s), isTTY: tty }, stderr: { write: (s: string) => err.push(s) } };
    const code = await main(args, { FLOTILLA_API: api, FLOTILLA_TOKEN: token }, io);
    return { code, out: out.join(''), err: err.join('') };
  }

  before(async () => {
    f = await startFixture({ httpPort: 0 });
    api = 'http://127.0.0.1:' + f.bridge.ports.http;
    dir = mkdtempSync(join(tmpdir(), 'flotilla-cli-'));
    v2 = join(dir, 'v2.flim');
    writeFileSync(v2, image({ deviceId: A1, secret: SECRET[A1], product: Number(f.products.A), firmware: 2, app: DEMO_APP, options: 'keepalive: 5, backoffMin: 50' }));
    // A bare JS bundle: the bridge wraps it in an image of the version given.
    bundle = join(dir, 'app.js');
    writeFileSync(bundle, program({ deviceId: A2, secret: SECRET[A2], product: Number(f.products.A), firmware: 3 }));
    // a1 alone in the canary group, so its release completes (a2 never connects).
    await f.bridge.store.regroup(f.products.A, [A1], { add: ['canary'] });
    agent = await startDemoAgent(f);
  });
  after(async () => {
    agent?.stop();
    await f?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('uploads an image, lists it, releases it to a group and watches the rollout until the device runs it', async () => {
    const up = await flotilla(['firmware', 'upload', '--product', 'prod-a', '--version', '2', '--title', 'Canary two', v2]);
    assert.equal(up.code, 0, up.err);
    assert.match(up.out, /^uploaded version 2 "Canary two" to product prod-a: [0-9.]+ KB, sha256 [0-9a-f]{64}$/m);

    const list = await flotilla(['firmware', 'list', '--product', f.products.A]);
    assert.equal(list.code, 0, list.err);
    const [head, row] = list.out.trimEnd().split('\n');
    assert.match(head, /^VERSION\s+TITLE\s+SIZE\s+RELEASED\s+DEFAULT\s+GROUPS\s+DEVICES\s+UPLOADED$/);
    assert.match(row, /^2\s+Canary two\s+[0-9.]+ KB\s+no\s+0\s+\d{4}-/);

    // a1 offline while the release starts, so the watch sees it pending, then updating once it is back.
    agent.stop();
    for (let i = 0; i < 100 && (await f.bridge.store.getDevice(A1))!.online; i++) await new Promise((r) => setTimeout(r, 20));
    const rel = await flotilla(['firmware', 'release', '--product', 'prod-a', '--version', '2', '--groups', 'canary', '--concurrency', '5', '--failure-threshold', '50', '--min-attempts', '2']);
    assert.equal(rel.code, 0, rel.err);
    const id = Number(/rollout (\d+)$/m.exec(rel.out)?.[1]);
    assert.ok(id > 0, rel.out);
    assert.match(rel.out, /to groups canary: rollout \d+\n {2}concurrency 5, batch size none, pauses above 50% failed after 2 updates\n/);
    const r = await f.bridge.store.getRollout(id);
    assert.deepEqual([r!.groups, r!.concurrency, r!.failureThreshold, r!.minAttempts], [['canary'], 5, 0.5, 2]);

    // Not a TTY: a line each time the counts change, then the outcome; exit 0 when complete.
    let back: Promise<VmDevice> | null = null;
    const watch = await flotilla(['rollout', 'status', '--product', 'prod-a', String(id), '--watch', '--interval', '100', '--timeout', '25'], f.tokens.alice, () => {
      back ??= startDemoAgent(f);
    });
    agent = await back!;
    assert.equal(watch.code, 0, watch.out + watch.err);
    const lines = watch.out.trimEnd().split('\n');
    assert.equal(new Set(lines).size, lines.length, 'no line printed twice: ' + watch.out);
    assert.equal(lines[0], `rollout ${id} v2 running [${'-'.repeat(20)}] 0/1 done, 0 failed, 0 updating, 1 pending`);
    // Between them, maybe a line with a1 updating: a loopback update can finish between two polls.
    for (const l of lines.slice(1, -2)) assert.equal(l, `rollout ${id} v2 running [${'.'.repeat(20)}] 0/1 done, 0 failed, 1 updating, 0 pending`);
    assert.equal(lines.at(-2), `rollout ${id} v2 running [${'#'.repeat(20)}] 1/1 done, 0 failed, 0 updating, 0 pending`);
    assert.equal(lines.at(-1), `rollout ${id} complete: 1/1 done, 0 failed, 0 updating, 0 pending`);
    assert.equal((await f.bridge.store.getDevice(A1))!.firmwareVersion, 2, 'a1 runs version 2');

    // Without an id: the newest rollout.
    const status = await flotilla(['rollout', 'status', '--product', 'prod-a']);
    assert.equal(status.code, 0, status.err);
    assert.equal(status.out, `rollout ${id} v2 running [${'#'.repeat(20)}] 1/1 done, 0 failed, 0 updating, 0 pending\n`);
  });

  it('refuses a viewer with the API\'s message and exit 1, never printing the token', async () => {
    const r = await flotilla(['firmware', 'upload', '--product', 'prod-a', '--version', '9', v2], f.tokens.carol);
    assert.equal(r.code, 1);
    assert.equal(r.err, 'flotilla: Permission denied (HTTP 403)\n');
    assert.equal(r.out, '');
    const bad = await inProcess(['firmware', 'list', '--product', 'prod-a'], f.tokens.revoked);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /^flotilla: invalid_token: .* \(HTTP 401\)\n$/);
    for (const x of [r, bad]) assert.ok(!(x.out + x.err).includes(f.tokens.carol) && !(x.out + x.err).includes(f.tokens.revoked));
  });

  it('answers a usage error with exit 2 and the command\'s usage', async () => {
    const r = await flotilla(['firmware', 'release', '--product', 'prod-a', '--version', 'two', '--default']);
    assert.equal(r.code, 2);
    assert.match(r.err, /^flotilla: --version must be a whole number of at least 1, not "two"\n\nusage: flotilla firmware release --product P --version N \[options\]\n/);
    const neither = await inProcess(['firmware', 'release', '--product', 'prod-a', '--version', '2']);
    assert.equal(neither.code, 2);
    assert.match(neither.err, /give --default, --groups or both/);
    for (const args of [['rollout'], ['firmware', 'list'], ['flash', A2], ['rollout', 'status', '--product', 'x', '--bogus'], ['nope']]) {
      const u = await inProcess(args);
      assert.equal(u.code, 2, args.join(' ') + ': ' + u.err);
      assert.match(u.err, /^flotilla: .+\n\nusage: flotilla /);
    }
    const noToken = await inProcess(['firmware', 'list', '--product', 'prod-a'], '');
    assert.equal(noToken.code, 2);
    assert.match(noToken.err, /no token: set FLOTILLA_TOKEN or pass --token/);
    const help = await inProcess(['help', 'rollout', 'status']);
    assert.equal(help.code, 0);
    assert.match(help.out, /^usage: flotilla rollout status --product P \[options\] \[ID\]\n/);
  });

  it('says clearly when the bridge cannot be reached', async () => {
    const port = await closedPort();
    const r = await inProcess(['firmware', 'list', '--product', 'prod-a', '--api', `http://127.0.0.1:${port}/v1/`]);
    assert.equal(r.code, 1);
    assert.match(r.err, new RegExp(`^flotilla: cannot reach the bridge at http://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`));
  });

  it('uploads a bare bundle, releases it as the default, then pauses, resumes and aborts its rollout', async () => {
    const up = await inProcess(['firmware', 'upload', '--product', 'prod-a', '--version', '3', bundle, '--json']);
    assert.equal(up.code, 0, up.err);
    const fw = JSON.parse(up.out);
    assert.deepEqual([fw.version, fw.title, fw.released], [3, 'Version 3', false]);

    // a1 stays on its group's version 2; a2 (offline) is the rollout's one device, pending.
    const rel = await inProcess(['firmware', 'release', '--product', 'prod-a', '--version', '3', '--default', '--json']);
    assert.equal(rel.code, 0, rel.err);
    const { rollout } = JSON.parse(rel.out);
    assert.deepEqual([rollout.product_default, rollout.state, rollout.devices], [true, 'running', { total: 1, done: 0, failed: 0, in_progress: 0, pending: 1, aborted: 0 }]);
    const id = String(rollout.id);

    const listed = await inProcess(['firmware', 'list', '--product', 'prod-a', '--json']);
    assert.deepEqual(JSON.parse(listed.out).map((x: { version: number; product_default: boolean }) => [x.version, x.product_default]).sort(), [[2, false], [3, true]]);

    const timeout = await inProcess(['rollout', 'status', '--product', 'prod-a', id, '--watch', '--interval', '50', '--timeout', '0.2']);
    assert.equal(timeout.code, 4, timeout.err);
    assert.match(timeout.err, /still running after --timeout 0\.2 s/);

    const paused = await inProcess(['rollout', 'pause', '--product', 'prod-a', id]);
    assert.equal(paused.code, 0, paused.err);
    assert.match(paused.out, new RegExp(`^rollout ${id} v3 paused \\[-{20}\\] 0/1 done, 0 failed, 0 updating, 1 pending \\(paused by alice\\)\\n$`));
    const again = await inProcess(['rollout', 'pause', '--product', 'prod-a', id]);
    assert.equal(again.code, 1);
    assert.equal(again.err, 'flotilla: the rollout is not running (HTTP 409)\n');

    // A watched rollout that is not running: exit 3 with its reason (on a TTY, one line redrawn, then ended).
    const stopped = await inProcess(['rollout', 'status', '--product', 'prod-a', id, '--watch', '--timeout', '5'], f.tokens.alice, true);
    assert.equal(stopped.code, 3, stopped.err);
    assert.equal(stopped.out, `\rrollout ${id} v3 paused [${'-'.repeat(20)}] 0/1 done, 0 failed, 0 updating, 1 pending (paused by alice)\x1b[K\nrollout ${id} paused: paused by alice\n`);

    assert.match((await inProcess(['rollout', 'resume', '--product', 'prod-a', id])).out, new RegExp(`^rollout ${id} v3 running `));
    const aborted = await inProcess(['rollout', 'abort', '--product', 'prod-a', id, '--json']);
    assert.equal(JSON.parse(aborted.out).state, 'aborted');
    // a2 was never reached, and never will be by this rollout: not "pending".
    assert.deepEqual(JSON.parse(aborted.out).devices, { total: 1, done: 0, failed: 0, in_progress: 0, pending: 0, aborted: 1 });
    const gone = await inProcess(['rollout', 'status', '--product', 'prod-a', '--watch', '--json']);
    assert.equal(gone.code, 3);
    assert.equal(JSON.parse(gone.out).reason, 'aborted by alice');
    const line = await inProcess(['rollout', 'status', '--product', 'prod-a', id]);
    assert.equal(line.out, `rollout ${id} v3 aborted [${' '.repeat(20)}] 0/1 done, 0 failed, 0 updating, 0 pending, 1 not updated (aborted) (aborted by alice)\n`);

    // A release says exactly where a version goes: released to a group alone, the default version stops being the default, and the output says so.
    const moved = await inProcess(['firmware', 'release', '--product', 'prod-a', '--version', '3', '--groups', 'canary']);
    assert.equal(moved.code, 0, moved.err);
    assert.match(moved.out, /to groups canary: rollout \d+\n {2}withdrawn from the product default: those devices go to what is released for them now\n/);
    const after = JSON.parse((await inProcess(['firmware', 'list', '--product', 'prod-a', '--json'])).out) as { version: number; product_default: boolean; groups: string[] }[];
    assert.deepEqual(after.map((x) => [x.version, x.product_default, x.groups]).sort(), [[2, false, []], [3, false, ['canary']]]);
  });

  it('flashes one device with a bundle, queued while it is offline', async () => {
    const r = await inProcess(['flash', A2, bundle, '--version', '4']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, new RegExp(`^${A2}: Update queued: the device is offline and updates when it next connects \\(job \\d+, version 4, pending\\)\\n$`));
    const missing = await inProcess(['flash', A2, join(dir, 'nope.js')]);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /cannot read .*nope\.js: no such file/);
    const notMine = await inProcess(['flash', A2, bundle, '--version', '4'], f.tokens.bob);
    assert.equal(notMine.code, 1);
    assert.match(notMine.err, /\(HTTP (403|404)\)\n$/);
  });
});
