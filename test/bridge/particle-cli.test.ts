/**
 * particle-cli (3.40, from npm) against a local bridge, unmodified: a config
 * profile pointing at the bridge, login with its own OAuth client, then list,
 * get a variable and call a function on the real agent, publish, whoami,
 * logout. HOME is a temp directory, so the CLI's profile never touches the
 * machine's.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { VmDevice } from '@flotilla/simulator';
import { A1, SECRET, startFixture, type Fixture, startDemoAgent } from '../helpers/bridge-fixture.js';
import { DEMO_APP, image } from '../helpers/images.js';

const CLI = join(process.cwd(), 'node_modules', '.bin', 'particle');

describe('particle-cli against a local bridge', function () {
  this.timeout(60000);
  let f: Fixture;
  let home: string;
  let agent: VmDevice;

  /** Runs the CLI with no standard input; resolves with its output (ANSI codes removed) and exit code. */
  function particle(...args: string[]): Promise<{ code: number; out: string }> {
    return new Promise((resolve) => {
      const child = execFile(CLI, args, { env: { ...process.env, HOME: home, CI: 'true', NO_COLOR: '1' }, timeout: 30000 }, (err, stdout, stderr) => {
        // eslint-disable-next-line no-control-regex
        const out = (stdout + stderr).replace(/\x1b\[[0-9;]*[A-Za-z]/g, '');
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out });
      });
      child.stdin?.end();
    });
  }

  before(async () => {
    home = mkdtempSync(join(tmpdir(), 'flotilla-cli-home-'));
    f = await startFixture({ httpPort: 0 });
    await f.bridge.store.updateDevice(A1, { name: 'kitchen' });
    agent = await startDemoAgent(f);
  });
  after(async () => {
    agent.stop();
    await f.close();
    rmSync(home, { recursive: true, force: true });
  });

  it('logs in through a profile for the bridge, then lists, reads, calls, publishes and logs out', async () => {
    const base = 'http://127.0.0.1:' + f.bridge.ports.http;
    assert.equal((await particle('config', 'flotilla', 'apiUrl', base)).code, 0);
    assert.equal((await particle('config', 'flotilla')).code, 0);
    const login = await particle('login', '--username', 'alice', '--password', 'alice-password');
    assert.match(login.out, /Successfully completed login/, login.out);
    assert.match((await particle('whoami')).out, /alice/);
    const list = await particle('list');
    assert.match(list.out, /kitchen/, list.out);
    assert.match(list.out, new RegExp(A1));
    const temp = await particle('get', 'kitchen', 'temp');
    assert.match(temp.out, /21\.5/, temp.out);
    const call = await particle('call', A1, 'setLed', 'on');
    assert.match(call.out, /^1$/m, call.out);
    const wrong = await particle('call', A1, 'nosuchfn', 'x');
    assert.notEqual(wrong.code, 0, wrong.out);
    const publish = await particle('publish', 'alert/cli', 'hi', '--product', 'prod-a');
    assert.equal(publish.code, 0, publish.out);
    // logout revokes the token on the bridge (DELETE /v1/access_tokens/current) and forgets it.
    const token = (JSON.parse(readFileSync(join(home, '.particle', 'flotilla.config.json'), 'utf8')) as { access_token: string }).access_token;
    assert.equal((await f.bridge.store.findToken(token))!.revokedAt, null);
    const logout = await particle('logout');
    assert.equal(logout.code, 0, logout.out);
    assert.ok((await f.bridge.store.findToken(token))!.revokedAt, 'the token is revoked on the bridge');
    assert.match((await particle('list')).out, /not logged in|login/i, 'logged out');
  });

  it('flashes a device over the cloud: particle flash <device> <image> (it needs execa, which particle-cli 3.40 lists only for its own development)', async () => {
    const base = 'http://127.0.0.1:' + f.bridge.ports.http;
    assert.equal((await particle('config', 'flotilla', 'apiUrl', base)).code, 0);
    assert.equal((await particle('login', '--username', 'alice', '--password', 'alice-password')).code, 0);
    const file = join(home, 'kitchen-v2.bin');
    writeFileSync(file, image({ deviceId: A1, secret: SECRET[A1], product: Number(f.products.A), firmware: 2, app: DEMO_APP, options: 'keepalive: 5, backoffMin: 50' }));
    const flash = await particle('flash', 'kitchen', file);
    assert.equal(flash.code, 0, flash.out);
    assert.match(flash.out, /Flash success|queued/i, flash.out);
    // The agent takes the image, resets into it and says so.
    let version = null;
    for (let i = 0; i < 300 && version !== 2; i++) {
      version = (await f.bridge.store.getDevice(A1))?.firmwareVersion ?? null;
      if (version !== 2) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(version, 2);
  });

  it('refuses a wrong password with the CLI\'s own message', async () => {
    const r = await particle('login', '--username', 'alice', '--password', 'wrong');
    assert.match(r.out, /error logging you in|credentials are invalid/i, r.out);
  });
});
