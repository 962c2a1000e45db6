/**
 * The engine hosts themselves: the same ES5 programs on every engine in ENGINES,
 * each HAL function serviced by Node. Loopback sockets only; every wait bounded.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import {
  ENGINES, EngineError, buildDuktapeHost, emptyFlash, reboot, startEngine,
  type EngineHost, type EngineName, type EngineOptions, type FlashOp,
} from '../helpers/engines/index.js';
import { startClockPump, type ClockPump } from '../helpers/engines/pump.js';
import { startRelay, type Relay } from '../helpers/engines/relay.js';
import { closedPort } from '../helpers/ports.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `cond` every 5 ms for at most `timeoutMs`. */
async function waitFor(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  for (const end = Date.now() + timeoutMs; Date.now() < end; await sleep(5)) if (cond()) return;
  if (!cond()) throw new Error(`timed out waiting for ${what}`);
}

interface EchoServer { port: number; connections: number; close(): Promise<void> }

function startEchoServer(): Promise<EchoServer> {
  const sockets = new Set<Socket>();
  let connections = 0;
  const server: Server = createServer((s) => {
    connections++;
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
    s.pipe(s);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve({
      port: (server.address() as AddressInfo).port,
      get connections() { return connections; },
      close: () => new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
    }));
  });
}

for (const name of ENGINES) {
  describe(`engine host: ${name}`, function () {
    let echo: EchoServer;
    const hosts: EngineHost[] = [];
    const relays: Relay[] = [];
    const pumps: ClockPump[] = [];

    async function start(opts: Partial<EngineOptions> = {}, engine: EngineName = name): Promise<EngineHost> {
      const host = await startEngine(engine, { flash: emptyFlash(4096), heapCap: 512 * 1024, ...opts });
      hosts.push(host);
      return host;
    }

    before(async function () {
      this.timeout(300_000); // the first Duktape build compiles duktape.c (about 10 s)
      if (name === 'duktape') {
        const b = await buildDuktapeHost();
        console.log(`      duktape host: ${b.bits}-bit, gcc ${b.flags.join(' ')}, compiled in ${b.compileMs} ms${b.cached ? ' (cached build)' : ''}`);
      }
      echo = await startEchoServer();
    });

    afterEach(async function () {
      await Promise.all(pumps.splice(0).map((p) => p.stop()));
      await Promise.all(relays.splice(0).map((r) => r.close()));
      await Promise.all(hosts.splice(0).map((h) => h.close()));
    });

    after(async function () {
      await echo?.close();
    });

    it('gives the program ES5 builtins, typed arrays and hal, and no Node or Duktape globals', async function () {
      const host = await start();
      const absent = ['Buffer', 'require', 'process', 'Duktape', 'module', 'exports', 'global', 'setTimeout', 'console', 'TextEncoder', 'performance', 'print'];
      assert.equal(await host.evaluate(absent.map((g) => `typeof ${g}`).join(' + "," + ')), absent.map(() => 'undefined').join(','));
      const present = ['Object', 'JSON', 'Math', 'Uint8Array', 'DataView', 'ArrayBuffer', 'hal', 'hal.net.open', 'hal.clock.setTimer', 'hal.flash.writeBoot', 'hal.system.log'];
      assert.equal(await host.evaluate(present.map((g) => `typeof ${g}`).join(' + "," + ')), 'function,object,object,function,function,function,object,function,function,function,function');
      assert.ok(host.bits === 32 || host.bits === 64, host.info);
    });

    it('fires timers in (due, creation) order on tick, including timers set by timers', async function () {
      const host = await start();
      await host.run(`
        function mark(n) { return function () { hal.system.log(n + '@' + hal.clock.now()); }; }
        hal.clock.setTimer(mark('a30'), 30);
        hal.clock.setTimer(mark('b10'), 10);
        hal.clock.setTimer(mark('c10'), 10);
        hal.clock.clearTimer(hal.clock.setTimer(mark('never'), 20));
        hal.clock.setTimer(function () {
          mark('d15')();
          hal.clock.setTimer(mark('e20'), 5);
          hal.clock.setTimer(mark('f115'), 100);
        }, 15);
        hal.clock.setTimer(mark('g0'), 0);
        hal.clock.setTimer(mark('h-neg'), -5);
      `);
      assert.deepEqual(host.logs, []);
      await host.tick(0);
      assert.deepEqual(host.logs, ['g0@0', 'h-neg@0']);
      await host.tick(9);
      assert.equal(host.logs.length, 2);
      await host.tick(40);
      assert.deepEqual(host.logs.slice(2), ['b10@10', 'c10@10', 'd15@15', 'e20@20', 'a30@30']);
      await host.tick(100);
      assert.deepEqual(host.logs.slice(7), ['f115@115']);
      assert.equal(host.now, 149);
      assert.equal(await host.evaluate('hal.clock.now()'), '149');
      assert.deepEqual(host.uncaught, []);
    });

    it('bounds a timer that re-arms itself at 0 ms', async function () {
      const host = await start();
      await host.run('var n = 0; function again() { n++; hal.clock.setTimer(again, 0); } hal.clock.setTimer(again, 0);');
      await host.tick(1);
      assert.deepEqual(host.uncaught, ['tick: too many timers due, rest postponed']);
      assert.equal(await host.evaluate('n'), '100000');
    });

    it('relays net open/send/data/close through a real loopback TCP echo server', async function () {
      const host = await start();
      const relay = startRelay(host, { host: '127.0.0.1', port: echo.port }, { realTime: true });
      relays.push(relay);
      const before = echo.connections;
      // 4 bytes, then 70,000 bytes sent from a timer 20 ms after open: lines of 140 KB hex,
      // chunks split arbitrarily by TCP; the program checks every byte it gets back.
      await host.run(`
        var n = 0, bad = 0;
        function expected(k) { return k < 4 ? [1, 2, 3, 255][k] : (k - 4) & 255; }
        hal.net.open(function () {
          hal.system.log('open');
          hal.net.send(new Uint8Array([1, 2, 3, 255]));
          hal.clock.setTimer(function () {
            var big = new Uint8Array(70000);
            for (var i = 0; i < big.length; i++) big[i] = i & 255;
            hal.net.send(big);
          }, 20);
        }, function (chunk) {
          for (var i = 0; i < chunk.length; i++) if (chunk[i] !== expected(n + i)) bad++;
          n += chunk.length;
          if (n === 70004) { hal.system.log('echoed ' + n + ' bad ' + bad); hal.net.close(); }
        }, function () { hal.system.log('closed'); });
      `);
      await waitFor(() => host.logs.includes('closed'), 'the echo round trip', 10_000);
      assert.deepEqual(host.logs, ['open', 'echoed 70004 bad 0', 'closed']);
      assert.equal(echo.connections - before, 1);
      assert.equal(relay.connections, 1);
      assert.ok(host.now >= 20, `virtual clock pumped in real time: ${host.now}`);
      assert.deepEqual(host.uncaught, []);
    });

    it('reports a refused connect as onClose alone', async function () {
      const host = await start();
      relays.push(startRelay(host, { host: '127.0.0.1', port: await closedPort() }));
      await host.run(`hal.net.open(function () { hal.system.log('open'); }, function () {}, function () { hal.system.log('closed'); });`);
      await waitFor(() => host.logs.length > 0, 'onClose');
      assert.deepEqual(host.logs, ['closed']);
      assert.throws(() => startRelay(host, { host: '10.0.0.1', port: 1 }), /loopback only/);
    });

    it('persists flash ops in order, keeps an exact mirror, and replays a power cut after the k-th write', async function () {
      const flash = emptyFlash(4096);
      flash.slots[1].set([0xde, 0xad, 0xbe, 0xef]);
      const seen: [FlashOp, number][] = [];
      const host = await start({ flash, onFlashOp: (op, i) => seen.push([op, i]) });
      await host.run(`
        var fl = hal.flash;
        function hex(u) { var s = ''; for (var i = 0; i < u.length; i++) s += (u[i] < 16 ? '0' : '') + u[i].toString(16); return s; }
        var r = [fl.slotSize(), fl.readBoot() === null, hex(fl.read(1, 0, 4))];
        fl.erase(0);
        fl.write(0, 10, new Uint8Array([1, 2, 3]));
        fl.write(0, 4094, new Uint8Array([9, 8]));
        fl.write(0, 0, new Uint8Array([7, 7, 5, 6, 7]).subarray(2, 4));
        fl.writeBoot(new Uint8Array([0x42, 1]));
        fl.erase(1);
        r.push(hex(fl.read(0, 0, 3)), hex(fl.read(0, 9, 5)), hex(fl.read(0, 4094, 2)), hex(fl.readBoot()), hex(fl.read(1, 0, 2)), fl.read(0, 4096, 0).length);
        var errs = [];
        function attempt(f) { try { f(); errs.push('none'); } catch (e) { errs.push(e.name); } }
        attempt(function () { fl.write(0, 4095, new Uint8Array([1, 2])); });
        attempt(function () { fl.read(2, 0, 1); });
        attempt(function () { fl.read(0, -1, 1); });
        attempt(function () { fl.read(0, 1.5, 1); });
        attempt(function () { fl.write(0, 0, [1]); });
        attempt(function () { fl.writeBoot(new Uint8Array(5000)); });
        hal.system.log(r.join(' ') + ' | ' + errs.join(','));
      `);
      assert.deepEqual(host.logs, ['4096 true deadbeef 0506ff ff010203ff 0908 4201 ffff 0 | RangeError,RangeError,RangeError,RangeError,TypeError,RangeError']);
      assert.deepEqual(host.flashOps.map((op) => op.kind), ['erase', 'write', 'write', 'write', 'boot', 'erase']);
      assert.deepEqual(host.flashOps[3], { kind: 'write', slot: 0, offset: 0, bytes: new Uint8Array([5, 6]) });
      assert.deepEqual(seen.map(([, i]) => i), [1, 2, 3, 4, 5, 6]);
      assert.deepEqual(host.flash(), await host.deviceFlash());
      assert.deepEqual(host.flashAfter(0), flash);
      assert.deepEqual(host.flashAfter(6), host.flash());
      assert.throws(() => host.flashAfter(7), RangeError);

      // Power cut after the 4th persisted op: slot 0 written, boot record not yet, slot 1 intact.
      const cut = await reboot(host, { flash: host.flashAfter(4), resetReason: 20 });
      hosts.push(cut);
      assert.equal(await cut.evaluate('hal.flash.readBoot() === null'), 'true');
      assert.equal(await cut.evaluate('[].join.call(hal.flash.read(0, 0, 3)) + "/" + [].join.call(hal.flash.read(1, 0, 4)) + "/" + hal.system.resetReason()'), '5,6,255/222,173,190,239/20');
      assert.deepEqual(cut.flashOps, []);
      assert.deepEqual(cut.flash(), await cut.deviceFlash());
    });

    it('reports a throw in a timer or net callback as uncaught and keeps running', async function () {
      const uncaught: string[] = [];
      const host = await start({ onUncaught: (m) => uncaught.push(m) });
      await host.run(`
        var n = 0;
        hal.clock.setTimer(function () { throw new Error('timer boom'); }, 5);
        hal.clock.setTimer(function () { n++; hal.system.log('after ' + n); }, 10);
        hal.clock.setTimer(function () { var o = null; return o.x; }, 12);
        hal.net.open(function () { throw 'open string'; },
          function (c) { throw new RangeError('data ' + c.length); },
          function () { hal.system.log('closed'); });
      `);
      await host.tick(20);
      await host.netOpened();
      await host.netData(new Uint8Array([1, 2]));
      await host.netClosed();
      await host.netData(new Uint8Array([3])); // after close: no callback left
      assert.equal(uncaught.length, 4);
      assert.equal(uncaught[0], 'Error: timer boom');
      assert.match(uncaught[1]!, /^TypeError: /);
      assert.deepEqual(uncaught.slice(2), ['open string', 'RangeError: data 2']);
      assert.deepEqual(host.uncaught, uncaught);
      assert.deepEqual(host.logs, ['after 1', 'closed']);
      assert.equal(await host.evaluate('n'), '1');

      await assert.rejects(host.run('throw new TypeError("top level")'), (e: unknown) => e instanceof EngineError && e.message === 'TypeError: top level');
      await assert.rejects(host.run('var = ;'), (e: unknown) => e instanceof EngineError && /^SyntaxError/.test(e.message));
      await assert.rejects(host.evaluate('nope()'), (e: unknown) => e instanceof EngineError && /^ReferenceError/.test(e.message));
      assert.equal(await host.evaluate('1 + n'), '2');
    });

    it('reports plausible memory that grows with an allocation and drops back after release and GC', async function () {
      const cap = 512 * 1024;
      const host = await start({ heapCap: cap });
      const empty = await host.memory();
      await host.run('var keep = null, objs = null;');
      const base = await host.memory();
      console.log(`      ${name}: empty realm + hal ${empty.used} B${empty.peak ? ` (peak ${empty.peak} B)` : ''}`);
      assert.ok(base.used > 10_000 && base.used < 200_000, `baseline ${base.used}`);
      assert.equal(base.total, cap);
      assert.equal(await host.evaluate('hal.system.memoryTotal()'), String(cap));
      const inside = Number(await host.evaluate('hal.system.memoryUsed()'));
      assert.ok(inside > 10_000 && inside < cap, `memoryUsed() ${inside}`);

      const round = 'keep = new Uint8Array(100000); objs = []; for (var i = 0; i < 1000; i++) objs.push({ i: i, s: "x" + i });';
      // Garbage cycles (an object referring to itself, a function and its prototype)
      // are freed only by a GC, which memory() runs.
      const cycles = '(function () { for (var i = 0; i < 300; i++) { var o = { n: i }; o.self = o; o.f = function () {}; } })();';
      const sizes: number[] = [];
      for (let r = 0; r < 2; r++) {
        await host.run(round);
        const big = await host.memory();
        assert.ok(big.used >= base.used + 100_000, `${big.used} after allocating, ${base.used} before`);
        if (big.peak !== undefined) assert.ok(big.peak >= big.used);
        await host.run('keep = null; objs = null;');
        await host.run(cycles);
        sizes.push((await host.memory()).used);
      }
      // The first round may leave grown internal tables (Duktape's string table: about 4 KB);
      // the second must come back to where the first did.
      assert.ok(sizes[0]! < base.used + 8192, `${sizes[0]} after release, ${base.used} before`);
      assert.ok(sizes[1]! <= sizes[0]! + 256, `round 2 left ${sizes[1]}, round 1 ${sizes[0]}`);
    });

    if (name === 'duktape') {
      it('enforces the heap cap as a hard allocator limit', async function () {
        const host = await start({ heapCap: 200_000 });
        await host.run(`
          var r;
          try { var big = new Uint8Array(300000); r = 'allocated ' + big.length; } catch (e) { r = e.name + ': ' + e.message; }
          hal.system.log(r);
        `);
        assert.deepEqual(host.logs, ['Error: alloc failed']); // Duktape's own error for a failed allocation
        const m = await host.memory();
        assert.ok(m.used < 200_000 && m.peak! <= 200_000, JSON.stringify(m));
        assert.equal(await host.evaluate('1 + 1'), '2');
      });
    }

    it('services system values and signal; after reset() no callback runs and nothing persists', async function () {
      const signals: boolean[] = [];
      let resets = 0;
      const host = await start({
        battery: 57, signalStrength: 80, resetReason: 40,
        onSignal: (on) => signals.push(on), onReset: () => resets++,
      });
      await host.run(`
        var s = hal.system;
        s.log([s.battery(), s.signalStrength(), s.resetReason(), s.memoryTotal(), typeof s.memoryUsed()].join(' '));
        s.signal(true);
        s.signal(0);
        hal.clock.setTimer(function () {
          s.log('before reset');
          s.reset();
          hal.flash.writeBoot(new Uint8Array([1]));
          s.log('after reset');
        }, 10);
        hal.clock.setTimer(function () { s.log('never'); }, 20);
      `);
      assert.deepEqual(signals, [true, false]);
      await host.tick(30);
      assert.equal(resets, 1);
      assert.ok(host.isReset);
      assert.deepEqual(host.logs, ['57 80 40 524288 number', 'before reset']);
      assert.deepEqual(host.flashOps, []);
      await host.netOpened(); // ignored once halted
      await assert.rejects(host.run('hal.system.log("x")'), /halted after reset/);

      const next = await reboot(host, { resetReason: 0 });
      hosts.push(next);
      assert.equal(await next.evaluate('hal.system.resetReason() + " " + hal.flash.readBoot()'), '0 null');
    });

    it('pumps the virtual clock in real time until stopped, then fast-forwards with tick()', async function () {
      const host = await start();
      await host.run(`
        hal.clock.setTimer(function () { hal.system.log('30 ms passed'); }, 30);
        hal.clock.setTimer(function () { hal.system.log('an hour passed'); }, 3600000);
      `);
      const pump = startClockPump(host);
      pumps.push(pump);
      await waitFor(() => host.logs.length > 0, 'the 30 ms timer in real time', 3000);
      await pump.stop();
      assert.equal(pump.running, false);
      const at = host.now;
      assert.ok(at >= 30 && at < 3_600_000, `now ${at}`);
      await sleep(30);
      assert.equal(host.now, at, 'a stopped pump leaves the clock alone');
      await host.tick(3_600_000);
      assert.deepEqual(host.logs, ['30 ms passed', 'an hour passed']);
      assert.equal(await host.evaluate('hal.clock.now()'), String(at + 3_600_000));
    });

    it('bounds a program that never returns by the command timeout', async function () {
      const host = await start({ commandTimeoutMs: 300 });
      // QuickJS interrupts the guest and keeps the engine; Duktape has no interrupt, so its host is killed.
      await assert.rejects(host.run('for (;;) {}'), name === 'quickjs' ? /interrupted/ : /took over 300 ms; killed/);
      if (name === 'quickjs') assert.equal(await host.evaluate('1 + 1'), '2');
      else await assert.rejects(host.evaluate('1 + 1'), /exited/);
    });

    it('closes cleanly and refuses commands afterwards', async function () {
      const host = await start();
      await host.close();
      await host.close();
      await assert.rejects(host.evaluate('1'), /after close/);
    });
  });
}

/**
 * The low-memory Duktape host keeps heap pointers in 16 bits, so its blocks
 * come from its own 256 KB arena allocator (duk-host.c) instead of malloc:
 * driven here directly over its line protocol.
 */
describe('engine host: duktape low-memory arena', function () {
  this.timeout(300_000); // a first build compiles duktape.c

  /** Runs `commands` in a fresh low-memory host; its output lines. */
  async function session(commands: string[]): Promise<string[]> {
    const { binary } = await buildDuktapeHost('low-memory');
    const child = spawn(binary, [], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    const exited = new Promise<number | null>((r) => child.on('exit', r));
    const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stdin.end(commands.map((c) => c + '\n').join('') + 'quit\n');
    const code = await exited;
    clearTimeout(killer);
    assert.equal(code, 0, out.slice(-500));
    return out.split('\n').filter(Boolean);
  }

  it('keeps every block intact through a churn of allocations and frees and a value stack grown by reallocation, and returns all of it at exit', async function () {
    // A seeded churn: 200 slots each holding a filled Uint8Array (1 B .. 3 KB, now and then 24 KB),
    // a string grown by concatenation or an array grown by push (reallocations); each occupant is
    // checked byte for byte before it is replaced, and all of them at the end.
    const churn = [
      'var seed = 7, slots = [], bad = 0;',
      'function rnd(n) { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; }',
      'function make(k, tag) { var kind = rnd(3);',
      '  if (kind === 0) { var n = rnd(10) === 0 ? 24576 : 1 + rnd(3072), u = new Uint8Array(n); for (var i = 0; i < n; i++) u[i] = (i * 7 + tag) & 255; return [0, tag, u]; }',
      '  if (kind === 1) { var s = ""; for (var j = rnd(200); j >= 0; j--) s += String.fromCharCode(97 + (j + tag) % 26); return [1, tag, s]; }',
      '  var a = []; for (var m = rnd(500); m >= 0; m--) a.push(m * tag); return [2, tag, a]; }',
      'function check(o) { var i, t = o[1], v = o[2];',
      '  if (o[0] === 0) { for (i = 0; i < v.length; i++) if (v[i] !== ((i * 7 + t) & 255)) return false; return true; }',
      '  if (o[0] === 1) { for (i = 0; i < v.length; i++) if (v.charCodeAt(i) !== 97 + (v.length - 1 - i + t) % 26) return false; return true; }',
      '  for (i = 0; i < v.length; i++) if (v[i] !== (v.length - 1 - i) * t) return false; return true; }',
      'for (var step = 0; step < 4000; step++) { var k = rnd(200); if (slots[k] && !check(slots[k])) bad++; slots[k] = rnd(4) === 0 ? null : make(k, step); }',
      'for (var k2 = 0; k2 < 200; k2++) if (slots[k2] && !check(slots[k2])) bad++;',
      'String(bad)',
    ].join(' ');
    // Recursion grows the value stack by reallocation, each level's buffer beside it: an outer
    // frame's locals corrupted by a move would count.
    const deep = [
      'var keep = [];',
      'function deep(n) { var a = n * 3, b = "v" + n, c = [n, n + 1]; keep.push(new Uint8Array(64 + n % 50));',
      '  var r = n > 0 ? deep(n - 1) : 0; return r + (a === n * 3 && b === "v" + n && c[1] === n + 1 ? 0 : 1); }',
      '"deep " + deep(200)',
    ].join(' ');
    const lines = await session(['eval ' + churn, 'eval ' + deep, 'gc']);
    assert.ok(lines[0]!.startsWith('ready 32 '), lines[0]); // the 16-bit pointers are for 32-bit targets
    assert.ok(lines.includes('result 0'), lines.join('\n').slice(-500));
    assert.ok(lines.includes('result deep 0'), lines.join('\n').slice(-500));
    assert.deepEqual(lines.slice(-2), ['bye 0', 'ok']);
  });

  it('fails an allocation past its arena with Duktape\'s alloc error, keeps running, and reuses the space freed', async function () {
    const lines = await session([
      'cap 1048576', // the cap is above the arena: the arena is the limit
      // Buffers are under 64 KB in this build (16-bit sizes): 60 KB at a time until the arena is full.
      'eval var parts = [], r = "none"; try { for (var i = 0; i < 10; i++) parts.push(new Uint8Array(60000)); } catch (e) { r = e.name + ": " + e.message; } parts.length + " " + r',
      'eval parts = null; var again = []; for (var i = 0; i < 4; i++) again.push(new Uint8Array(50000)); again.length',
    ]);
    // Three fit beside the engine's own ~40 KB; the fourth fails with DUK_ERR_ERROR, whose
    // message is its code in a build without verbose errors.
    assert.ok(lines.includes('result 3 Error: 1'), lines.join('\n'));
    assert.ok(lines.includes('result 4'), lines.join('\n'));
    assert.deepEqual(lines.slice(-2), ['bye 0', 'ok']);
  });
});
