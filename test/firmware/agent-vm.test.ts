/**
 * The built agent bundle in a node:vm realm (V8), on the Node HAL, against a
 * real aedes broker on loopback: the fast functional check of everything the
 * agent does. The same behaviour on QuickJS and Duktape is in engines.test.ts.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { emptyFlash, MemoryFlash, VmDevice } from '@flotilla/simulator';
import { decodeBoot } from '@flotilla/firmware/boot';
import { decode, encode, LIMITS, topics, type Messages } from '@flotilla/protocol';
import { hex } from '../helpers/bytes.js';
import { startBroker, TestBroker } from '../helpers/broker.js';
import { TestCloud } from '../helpers/test-cloud.js';
import { DEMO_APP, image } from '../helpers/images.js';
import { sendImage } from '../helpers/ota-sender.js';

const PRODUCT = 7;
let seq = 0;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const newId = () => (0x1000000 + ++seq).toString(16).padStart(24, 'a');

describe('agent bundle in node:vm against aedes', function () {
  this.timeout(30000);
  let broker: TestBroker;
  let cloud: TestCloud;
  const devices: VmDevice[] = [];

  before(async () => {
    broker = await startBroker();
    cloud = await TestCloud.connect(broker.port);
  });
  after(async () => {
    for (const d of devices) d.stop();
    await cloud.close();
    await broker.close();
  });

  function device(id: string, opts: { app?: string; options?: string; padTo?: number; slotSize?: number; port?: number } = {}) {
    const flash = new MemoryFlash(emptyFlash(opts.slotSize ?? 256 * 1024));
    flash.state.slots[0].set(image({ deviceId: id, product: PRODUCT, firmware: 1, app: opts.app ?? DEMO_APP, options: opts.options ?? 'keepalive: 5, backoffMin: 50, backoffMax: 400' }));
    const crashes: unknown[] = [];
    const boots: { slot: number; trial: boolean; reason: number; version: number }[] = [];
    const dev = new VmDevice({ flash, host: '127.0.0.1', port: opts.port ?? broker.port, onCrash: (e) => crashes.push(e), onBoot: (b) => boots.push(b), battery: () => 87, signalStrength: () => 64 });
    devices.push(dev);
    dev.start();
    return { dev, flash, crashes, boots };
  }

  it('says hello with its variables, functions and subscriptions', async () => {
    const id = newId();
    device(id);
    const hello = await cloud.kind(id, 'hello');
    assert.equal(hello.firmware, 1);
    assert.equal(hello.product, PRODUCT);
    assert.deepEqual(hello.variables, [
      { name: 'temp', type: 'double' }, { name: 'name', type: 'string' }, { name: 'count', type: 'int32' }, { name: 'on', type: 'bool' }, { name: 'bad', type: 'int32' },
    ]);
    assert.deepEqual(hello.functions, ['setLed', 'boom', 'noreturn', 'pub', 'setTemp']);
    assert.deepEqual(hello.subscriptions, ['alert']);
    assert.equal(hello.bootReason, 'power_down');
    assert.deepEqual(hello.ota, { slot: 0, trial: false, rolledBackFrom: null });
    await cloud.kind(id, 'status', 5000, (m) => m.online);
  });

  it('answers variable reads, function calls, ping and signal with the request id', async () => {
    const id = newId();
    const { dev } = device(id);
    await cloud.kind(id, 'hello');
    const temp = await cloud.request(id, { op: 'var', name: 'temp' });
    assert.deepEqual(temp, { kind: 'reply', id: lastId(), status: 'ok', value: 21.5 });
    assert.equal((await cloud.request(id, { op: 'var', name: 'name' })).value, 'kitchen');
    assert.equal((await cloud.request(id, { op: 'var', name: 'count' })).value, 42);
    assert.equal((await cloud.request(id, { op: 'var', name: 'on' })).value, true);
    assert.equal((await cloud.request(id, { op: 'var', name: 'nope' })).status, 'not_found');
    assert.equal((await cloud.request(id, { op: 'call', name: 'setLed', arg: 'on' })).value, 1);
    assert.equal((await cloud.request(id, { op: 'call', name: 'setLed', arg: 'off' })).value, 0);
    assert.equal((await cloud.request(id, { op: 'call', name: 'setTemp', arg: '30.25' })).value, 1);
    assert.equal((await cloud.request(id, { op: 'var', name: 'temp' })).value, 30.25);
    assert.equal((await cloud.request(id, { op: 'call', name: 'nope', arg: '' })).status, 'not_found');
    assert.deepEqual(await cloud.request(id, { op: 'ping' }), { kind: 'reply', id: lastId(), status: 'ok', value: null });
    const signals: boolean[] = [];
    const sys = dev.hal!.system;
    const orig = sys.signal;
    sys.signal = (on) => { signals.push(on); orig(on); };
    assert.equal((await cloud.request(id, { op: 'signal', on: true })).value, true);
    assert.deepEqual(signals, [true]);
  });

  function lastId(): number {
    return (cloud as unknown as { nextId: number }).nextId - 1;
  }

  it('reports exceptions from getters, functions and timers, and keeps running', async () => {
    const id = newId();
    device(id);
    await cloud.kind(id, 'hello');
    const timerError = await cloud.kind(id, 'error', 5000, (m) => m.source === 'timer');
    assert.equal(timerError.message, 'timer broke');
    const r1 = await cloud.request(id, { op: 'call', name: 'boom', arg: '' });
    assert.deepEqual([r1.status, r1.value], ['handler_error', 'kaboom']);
    const e1 = await cloud.kind(id, 'error', 5000, (m) => m.source === 'function');
    assert.deepEqual([e1.name, e1.message, e1.count], ['boom', 'kaboom', 1]);
    assert.ok(e1.stack.length > 0 && e1.stack.length <= 512, 'a short stack');
    const r2 = await cloud.request(id, { op: 'var', name: 'bad' });
    assert.deepEqual([r2.status, r2.value], ['handler_error', 'getter broke']);
    await cloud.kind(id, 'error', 5000, (m) => m.source === 'variable' && m.name === 'bad');
    const r3 = await cloud.request(id, { op: 'call', name: 'noreturn', arg: '' });
    assert.equal(r3.status, 'handler_error');
    assert.match(String(r3.value), /returned undefined; return an integer/);
    // Still alive.
    assert.equal((await cloud.request(id, { op: 'call', name: 'setLed', arg: 'on' })).value, 1);
  });

  it('publishes events, with the acknowledgement reaching the app', async () => {
    const id = newId();
    device(id);
    await cloud.kind(id, 'hello');
    await cloud.request(id, { op: 'call', name: 'pub', arg: 'x' });
    const ev = await cloud.next((r) => r.deviceId === id && r.event === 'note/x');
    assert.deepEqual(ev.msg, { kind: 'event', data: 'hello x', ttl: 60 });
    const acked = await cloud.next((r) => r.deviceId === id && r.event === 'acked');
    assert.equal((acked.msg as { data: string }).data, 'ok');
  });

  it('delivers cloud events to matching subscriptions', async () => {
    const id = newId();
    device(id);
    await cloud.kind(id, 'hello');
    cloud.send(id, 'cloudEvent', { name: 'alert/fire', data: 'hot' });
    cloud.send(id, 'cloudEvent', { name: 'other', data: 'no' });
    const seen = await cloud.next((r) => r.deviceId === id && r.event === 'seen');
    assert.equal((seen.msg as { data: string }).data, 'alert/fire=hot');
  });

  it('publishes vitals with Particle names on connect, on schedule and on request', async () => {
    const id = newId();
    device(id, { app: DEMO_APP + 'cloud.vitals(1);' });
    await cloud.kind(id, 'hello');
    const first = await cloud.kind(id, 'vitals');
    assert.equal(first.values['device.power.battery.charge'], 87);
    assert.equal(first.values['device.network.signal.strength'], 64);
    assert.equal(first.values['device.cloud.connection.status'], 2);
    assert.ok(first.values['device.system.memory.used']! > 0);
    // On schedule: every second.
    const t0 = Date.now();
    await cloud.kind(id, 'vitals');
    await cloud.kind(id, 'vitals');
    assert.ok(Date.now() - t0 >= 900, 'two more vitals took ' + (Date.now() - t0) + ' ms');
    // On request.
    assert.equal((await cloud.request(id, { op: 'vitals' })).status, 'ok');
  });

  /** Every message of a kind the device sent so far. */
  function sent<K extends 'hello' | 'vitals' | 'error'>(id: string, kind: K): Messages[K][] {
    return cloud.all.filter((r) => r.deviceId === id && r.msg.kind === kind).map((r) => r.msg as unknown as Messages[K]);
  }

  // The cloud stores hello, vitals and error reports under a per-device rate (LIMITS.reportPerSecond); the agent keeps under it.
  it('sends error reports at their rate, a burst and then one a second, repeats waiting as counts', async () => {
    const start = Date.now();
    const id = newId();
    // Twelve different errors, one every 10 ms.
    device(id, { app: "var n = 0; cloud.every(10, function () { n++; throw new Error('e' + (n % 12)); });" });
    await cloud.kind(id, 'hello');
    await sleep(2500);
    const reports = sent(id, 'error');
    // Timers never fire early: in the time since start, at most the burst plus one per second earned.
    const most = LIMITS.errorReportBurst + Math.floor(((Date.now() - start) / 1000) * LIMITS.errorReportsPerSecond) + 1;
    assert.ok(reports.length >= LIMITS.errorReportBurst && reports.length <= most, reports.length + ' reports, at most ' + most);
    assert.ok(reports.slice(LIMITS.errorReportBurst).every((r) => r.count > 1), 'a report that waited carries its repeats');
  });

  it('sends vitals at most once a second when asked, but always on connect', async () => {
    const start = Date.now();
    const id = newId();
    device(id);
    await cloud.kind(id, 'hello');
    await cloud.kind(id, 'vitals');
    for (let i = 0; i < 5; i++) assert.equal((await cloud.request(id, { op: 'vitals' })).status, 'ok');
    await sleep(200);
    const most = 1 + Math.floor((Date.now() - start) / LIMITS.vitalsMinIntervalMs);
    assert.ok(sent(id, 'vitals').length <= most, sent(id, 'vitals').length + ' vitals, at most ' + most);
    // A second later, asked again: fresh vitals.
    await sleep(LIMITS.vitalsMinIntervalMs);
    const before = sent(id, 'vitals').length;
    assert.equal((await cloud.request(id, { op: 'vitals' })).status, 'ok');
    await cloud.kind(id, 'vitals');
    assert.equal(sent(id, 'vitals').length, before + 1);
  });

  it('says hello again only when its names or types change, not when a value or handler is replaced', async () => {
    const id = newId();
    device(id, {
      app: DEMO_APP + `
cloud.fn('rereg', function (a) { cloud.variable('name', a); cloud.fn('setLed', function () { return 2; }); return 1; });
cloud.fn('retype', function () { cloud.variable('count', 1.5); return 1; });
cloud.fn('addvar', function (a) { cloud.variable(a, 1); return 1; });`,
    });
    await cloud.kind(id, 'hello');
    assert.equal((await cloud.request(id, { op: 'call', name: 'rereg', arg: 'hall' })).value, 1);
    assert.equal((await cloud.request(id, { op: 'var', name: 'name' })).value, 'hall');
    assert.equal((await cloud.request(id, { op: 'call', name: 'setLed', arg: 'on' })).value, 2);
    assert.equal((await cloud.request(id, { op: 'call', name: 'retype', arg: '' })).value, 1);
    const retyped = await cloud.kind(id, 'hello');
    assert.deepEqual(retyped.variables.find((v) => v.name === 'count'), { name: 'count', type: 'double' });
    assert.equal((await cloud.request(id, { op: 'call', name: 'addvar', arg: 'extra' })).value, 1);
    const added = await cloud.kind(id, 'hello');
    assert.ok(added.variables.some((v) => v.name === 'extra'));
    // The replacements said nothing: three hellos in all (connect, new type, new variable).
    assert.equal(sent(id, 'hello').length, 3);
  });

  it('keeps a number variable double once it is, and types a getter\'s number as double (a reading that is sometimes whole flipped the type, a hello each time)', async () => {
    const id = newId();
    device(id, {
      app: DEMO_APP + `
var level = 21;
cloud.variable('level', function () { return level; });
cloud.fn('reading', function (a) { cloud.variable('temp2', Number(a)); level = Number(a); return 1; });`,
    });
    const first = await cloud.kind(id, 'hello');
    assert.deepEqual(first.variables.find((v) => v.name === 'level'), { name: 'level', type: 'double' }, 'its first reading, 21, said nothing of the next');
    assert.equal((await cloud.request(id, { op: 'call', name: 'reading', arg: '21.5' })).value, 1);
    assert.deepEqual((await cloud.kind(id, 'hello')).variables.find((v) => v.name === 'temp2'), { name: 'temp2', type: 'double' });
    for (const r of ['21', '22.5', '23']) assert.equal((await cloud.request(id, { op: 'call', name: 'reading', arg: r })).value, 1);
    assert.deepEqual((await cloud.request(id, { op: 'var', name: 'level' })).value, 23);
    assert.deepEqual((await cloud.request(id, { op: 'var', name: 'temp2' })).value, 23);
    // Before: a hello for each whole/fractional flip. Now: the connect's and the new variable's.
    assert.equal(sent(id, 'hello').length, 2);
  });

  it('reports an exception in a publish\'s done callback and keeps running (before, it escaped into the socket handler: a crash and a reboot)', async () => {
    const id = newId();
    const d = device(id, {
      app: DEMO_APP + `
cloud.fn('pubthrow', function (a) { cloud.publish('p/' + a, 'x', { ack: a === 'acked' }, function () { undefinedVariable.call(); }); return 1; });`,
    });
    await cloud.kind(id, 'hello');
    for (const how of ['acked', 'unacked']) {
      assert.equal((await cloud.request(id, { op: 'call', name: 'pubthrow', arg: how })).value, 1);
      await cloud.next((r) => r.deviceId === id && r.event === 'p/' + how);
    }
    const e = await cloud.kind(id, 'error', 5000, (m) => m.source === 'publish');
    assert.equal(e.name, 'p/acked');
    assert.match(e.message, /undefinedVariable/);
    await cloud.kind(id, 'error', 5000, (m) => m.source === 'publish' && m.name === 'p/unacked');
    assert.deepEqual(d.crashes, []);
    assert.deepEqual(d.boots.length, 1, 'no reboot');
    assert.equal((await cloud.request(id, { op: 'call', name: 'setLed', arg: 'on' })).value, 1);
  });

  it('answers a getter that returns text with a lone UTF-16 surrogate with handler_error at once (before, the reply could not be encoded: the read timed out)', async () => {
    const id = newId();
    device(id, { app: DEMO_APP + `\ncloud.variable('label', function () { return 'caf\\ud83c'; }, 'string');` });
    await cloud.kind(id, 'hello');
    const r = await cloud.request(id, { op: 'var', name: 'label' });
    assert.deepEqual([r.status, r.value], ['handler_error', 'cloud.variable("label"): returned text with a lone UTF-16 surrogate (half a character)']);
    await cloud.kind(id, 'error', 5000, (m) => m.source === 'variable' && m.name === 'label');
  });

  it('survives a garbage frame and a dropped link, and counts the reconnects', async () => {
    const id = newId();
    device(id);
    assert.equal((await cloud.kind(id, 'hello')).bootReason, 'power_down');
    const sock = [...broker.sockets].find((s) => (broker.aedes as unknown as { clients: Record<string, { conn: unknown }> }).clients[id]?.conn === s);
    assert.ok(sock, 'the device socket');
    // Garbage on the device's link: a PUBLISH claiming QoS 3, then bytes.
    sock.write(Buffer.from([0x36, 0x04, 0xff, 0xff, 0x00, 0x00]));
    const hello2 = await cloud.kind(id, 'hello', 10000);
    assert.equal(hello2.firmware, 1);
    // A reconnect is no reset: the cloud had this boot's reason from the first hello (spark/device/last_reset once per boot).
    assert.equal(hello2.bootReason, 'none');
    // The broker drops it.
    for (const s of broker.sockets) if ((broker.aedes as unknown as { clients: Record<string, { conn: unknown }> }).clients[id]?.conn === s) s.destroy();
    assert.equal((await cloud.kind(id, 'hello', 10000)).bootReason, 'none');
    // Vitals go out on every connection: the third connection's count both links lost.
    const v = await cloud.kind(id, 'vitals', 10000, (m) => m.values['device.cloud.connection.attempts'] === 3);
    assert.equal(v.values['device.cloud.connection.disconnects'], 2);
    assert.equal((await cloud.request(id, { op: 'call', name: 'setLed', arg: 'on' })).value, 1);
  });

  it('answers a double that is no finite number with handler_error (the cloud would refuse the reply and end the session)', async () => {
    const id = newId();
    device(id);
    await cloud.kind(id, 'hello');
    // parseFloat of a bad reading: NaN; the wire has no NaN or infinities.
    assert.equal((await cloud.request(id, { op: 'call', name: 'setTemp', arg: 'not a number' })).value, 1);
    const r = await cloud.request(id, { op: 'var', name: 'temp' });
    assert.deepEqual([r.status, r.value], ['handler_error', 'cloud.variable("temp"): returned NaN, not double']);
    await cloud.kind(id, 'error', 5000, (m) => m.source === 'variable' && m.name === 'temp');
    assert.equal((await cloud.request(id, { op: 'call', name: 'setTemp', arg: '1e999' })).value, 1);
    assert.match(String((await cloud.request(id, { op: 'var', name: 'temp' })).value), /returned Infinity, not double/);
    assert.equal((await cloud.request(id, { op: 'call', name: 'setTemp', arg: '20' })).value, 1);
    assert.equal((await cloud.request(id, { op: 'var', name: 'temp' })).value, 20);
  });

  it('leaves out of its vitals a HAL reading that is no number, and sends the rest', async () => {
    const id = newId();
    const { dev } = device(id);
    await cloud.kind(id, 'hello');
    const sys = dev.hal!.system;
    sys.memoryUsed = () => NaN;
    sys.memoryTotal = () => undefined as unknown as number;
    await sleep(1100); // past the vitals' minimum interval
    await cloud.request(id, { op: 'vitals' });
    const v = await cloud.kind(id, 'vitals', 5000, (m) => !('device.system.memory.used' in m.values));
    assert.equal('device.system.memory.total' in v.values, false);
    assert.equal(typeof v.values['device.system.uptime'], 'number');
  });

  it('cuts a long exception message to its limit at a character, in one pass (a megabyte message took minutes)', async () => {
    const id = newId();
    device(id, { app: DEMO_APP + "cloud.fn('long', function (n) { throw new Error(new Array(+n + 1).join('\\u00e9')); });" });
    await cloud.kind(id, 'hello');
    const r = await cloud.request(id, { op: 'call', name: 'long', arg: '500000' }, 10000);
    assert.equal(r.status, 'handler_error');
    // 'é' is 2 bytes: 128 of them fill the 256 bytes exactly.
    assert.equal(r.value, '\u00e9'.repeat(LIMITS.errorMessageMaxBytes / 2));
    const e = await cloud.kind(id, 'error', 5000, (m) => m.name === 'long');
    assert.equal(Buffer.byteLength(e.message), LIMITS.errorMessageMaxBytes);
  });

  it('reports a HAL call that throws while a request is handled, and goes on with the next requests', async () => {
    const id = newId();
    const { dev, crashes } = device(id);
    await cloud.kind(id, 'hello');
    let calls = 0;
    dev.hal!.system.signal = () => {
      calls++;
      throw new Error('no LED on this board');
    };
    cloud.send(id, 'request', { id: 9001, op: 'signal', on: true });
    const e = await cloud.kind(id, 'error', 5000, (m) => m.source === 'agent' && m.name === 'message');
    assert.equal(e.message, 'no LED on this board');
    for (let i = 0; i < 3; i++) assert.equal((await cloud.request(id, { op: 'var', name: 'count' })).value, 42);
    assert.equal(calls, 1, 'handled once');
    assert.deepEqual(crashes, []);
  });

  it('answers a request it cannot read with bad_request and why (an op from a newer cloud, an argument over its limit), and reports it', async () => {
    const id = newId();
    device(id);
    await cloud.kind(id, 'hello');
    const raw = (bytes: number[]) => cloud.client.publish(topics.cloud.request(id), Buffer.from(bytes), { qos: 1 });
    // [16 request, 77 id, 99 an op this agent does not know]
    raw([0x83, 0x10, 0x18, 0x4d, 0x18, 0x63]);
    const unknown = await cloud.kind(id, 'reply', 5000, (m) => m.id === 77);
    assert.deepEqual([unknown.status, unknown.value], ['bad_request', 'unexpected message kind or op']);
    // [16 request, 78 id, 2 call, "setLed", 1,025 × "x"]: one byte over the argument limit
    raw([0x85, 0x10, 0x18, 0x4e, 0x02, 0x66, ...Buffer.from('setLed'), 0x79, 0x04, 0x01, ...Buffer.alloc(LIMITS.functionArgMaxBytes + 1, 'x')]);
    const long = await cloud.kind(id, 'reply', 5000, (m) => m.id === 78);
    assert.deepEqual([long.status, long.value], ['bad_request', 'field 4 is over 1024 bytes']);
    // [16 request, "a" no id, 1 var, "count"]: nobody to answer, only the report
    raw([0x84, 0x10, 0x61, 0x61, 0x01, 0x65, ...Buffer.from('count')]);
    const reports = [];
    for (let i = 0; i < 3; i++) reports.push((await cloud.kind(id, 'error', 5000, (m) => m.source === 'agent' && m.name === 'decode')).message);
    assert.deepEqual(reports, ['unexpected message kind or op', 'field 4 is over 1024 bytes', 'field 1: expected an unsigned integer']);
    assert.equal((await cloud.request(id, { op: 'var', name: 'count' })).value, 42);
    assert.deepEqual(cloud.all.filter((r) => r.deviceId === id && r.msg.kind === 'reply').map((r) => (r.msg as Messages['reply']).id).filter((n) => n >= 77 && n <= 78), [77, 78], 'one reply each');
  });

  it('ends an update with flash_error when its boot record cannot be written, and keeps running', async () => {
    const id = newId();
    const { flash, crashes } = device(id);
    await cloud.kind(id, 'hello');
    const writeBoot = flash.writeBoot.bind(flash);
    let fail = true;
    flash.writeBoot = (record) => {
      if (fail) throw new Error('worn out');
      writeBoot(record);
    };
    const v2 = image({ deviceId: id, product: PRODUCT, firmware: 2, app: DEMO_APP, options: 'keepalive: 5' });
    cloud.send(id, 'otaBegin', { job: 31, product: PRODUCT, version: 2, size: v2.length, sha256: new Uint8Array(createHash('sha256').update(v2).digest()), chunkSize: 1024 });
    const s = await cloud.kind(id, 'otaStatus', 5000, (m) => m.job === 31);
    assert.deepEqual([s.state, s.reason], ['failed', 'flash_error']);
    const e = await cloud.kind(id, 'error', 5000, (m) => m.source === 'ota');
    assert.equal(e.message, 'boot: worn out');
    assert.deepEqual(crashes, []);
    fail = false;
    const done = await sendImage(cloud, id, v2, { job: 32, product: PRODUCT, version: 2 });
    assert.equal(done.state, 'verified', 'a later update goes through');
  });

  it('takes a 64 KB image over the air, boots it on trial and confirms it', async () => {
    const id = newId();
    const { flash, boots } = device(id);
    await cloud.kind(id, 'hello');
    const v2 = image({ deviceId: id, product: PRODUCT, firmware: 2, app: DEMO_APP + "cloud.fn('v2only', function () { return 2; });", options: 'keepalive: 5, backoffMin: 50', padTo: 64 * 1024 });
    assert.ok(v2.length >= 64 * 1024);
    const done = await sendImage(cloud, id, v2, { job: 11, product: PRODUCT, version: 2 });
    assert.deepEqual([done.state, done.offset], ['verified', v2.length]);
    const hello = await cloud.kind(id, 'hello', 10000, (m) => m.firmware === 2);
    assert.equal(hello.bootReason, 'update');
    assert.deepEqual(hello.ota, { slot: 1, trial: false, rolledBackFrom: null });
    assert.ok(hello.functions.includes('v2only'));
    assert.equal((await cloud.request(id, { op: 'call', name: 'v2only', arg: '' })).value, 2);
    assert.deepEqual(boots.map((b) => [b.slot, b.trial]), [[0, false], [1, true]]);
    const rec = decodeBoot(flash.readBoot());
    assert.deepEqual([rec.active, rec.trial, rec.job], [1, 255, null]);
    assert.equal(createHash('sha256').update(flash.state.slots[1].subarray(0, v2.length)).digest('hex'), createHash('sha256').update(v2).digest('hex'));
  });

  it('hashes an image as its chunks are written, so the check at the end reads no more than the header', async () => {
    const id = newId();
    const { flash } = device(id);
    await cloud.kind(id, 'hello');
    // What the agent reads back of the slot it writes (1), and when: after each write, as bytes read since it.
    const read = flash.read.bind(flash);
    const write = flash.write.bind(flash);
    const readBoot = flash.readBoot.bind(flash);
    const sinceWrite: number[] = [0];
    // The agent reads the boot record only as it starts: from then on the reads are the next boot's (the
    // simulated bootloader reading the new image), which may come before the test has seen "verified".
    let rebooted = false;
    flash.readBoot = () => ((rebooted = true), readBoot());
    flash.read = (slot, offset, length) => {
      if (slot === 1 && !rebooted) sinceWrite[sinceWrite.length - 1] += length;
      return read(slot, offset, length);
    };
    flash.write = (slot, offset, bytes) => {
      if (slot === 1) sinceWrite.push(0);
      write(slot, offset, bytes);
    };
    const v2 = image({ deviceId: id, product: PRODUCT, firmware: 2, app: DEMO_APP, options: 'keepalive: 5', padTo: 40 * 1024 });
    assert.equal((await sendImage(cloud, id, v2, { job: 15, product: PRODUCT, version: 2 })).state, 'verified');
    const chunks = Math.ceil(v2.length / 1024);
    assert.equal(sinceWrite.length, chunks + 1, 'one write per chunk');
    // Each chunk is read back once, right after its write; after the last, only the header besides (52 bytes).
    assert.deepEqual(sinceWrite.slice(1, -1), new Array<number>(chunks - 1).fill(1024));
    assert.equal(sinceWrite[chunks], v2.length - (chunks - 1) * 1024 + 52);
    await cloud.kind(id, 'hello', 10000, (m) => m.firmware === 2);
  });

  it('verifies an image while the app hashes between its chunks (the SHA-256 state is one: the receiver starts its hash again)', async () => {
    const id = newId();
    device(id, { app: DEMO_APP + '\ncloud.onOta(function (e) { if (e.type === "progress") Flotilla.sha256(new Uint8Array([1, 2, 3])); });' });
    await cloud.kind(id, 'hello');
    const v2 = image({ deviceId: id, product: PRODUCT, firmware: 2, app: DEMO_APP, options: 'keepalive: 5', padTo: 12 * 1024 });
    const done = await sendImage(cloud, id, v2, { job: 18, product: PRODUCT, version: 2 });
    assert.deepEqual([done.state, done.reason], ['verified', null]);
    await cloud.kind(id, 'hello', 10000, (m) => m.firmware === 2);
  });

  it('verifies an image begun again after a link drop, and a new job that replaces one half sent', async () => {
    const id = newId();
    device(id);
    await cloud.kind(id, 'hello');
    const v2 = image({ deviceId: id, product: PRODUCT, firmware: 2, app: DEMO_APP, options: 'keepalive: 5', padTo: 12 * 1024 });
    const v3 = image({ deviceId: id, product: PRODUCT, firmware: 3, app: DEMO_APP, options: 'keepalive: 5', padTo: 16 * 1024 });
    // Job 16 half sent, then dropped for job 17, which is half sent, then begun again on a new link: both hashes start where they must.
    const half = await sendImage(cloud, id, v2, { job: 16, product: PRODUCT, version: 2, window: 1, stopAfterStatuses: 6 });
    assert.ok(half.offset > 0 && half.offset < v2.length);
    await sleep(200);
    await sendImage(cloud, id, v3, { job: 17, product: PRODUCT, version: 3, window: 1, stopAfterStatuses: 4 });
    await sleep(200);
    for (const s of broker.sockets) if ((broker.aedes as unknown as { clients: Record<string, { conn: unknown }> }).clients[id]?.conn === s) s.destroy();
    await cloud.kind(id, 'hello', 10000);
    const done = await sendImage(cloud, id, v3, { job: 17, product: PRODUCT, version: 3 });
    assert.deepEqual([done.state, done.reason], ['verified', null]);
    await cloud.kind(id, 'hello', 10000, (m) => m.firmware === 3);
  });

  it('waits for the cloud to acknowledge "verified" before it resets, on a slow link', async () => {
    // The broker holds the PUBACK of "verified" 3.5 s (authorizePublish runs
    // before it): longer than a fixed short wait, shorter than the agent's grace.
    const order: string[] = [];
    let boots: { slot: number; trial: boolean }[] = [];
    const slow = await startBroker({
      authorizePublish: (_client, packet, cb) => {
        const m = packet.topic.endsWith('/ota') ? decode(new Uint8Array(packet.payload as Buffer)) : null;
        if (!m || m.kind !== 'otaStatus' || m.state !== 'verified') return cb(null);
        order.push('verified held');
        setTimeout(() => {
          order.push('verified acknowledged after ' + boots.length + ' boot(s)');
          cb(null);
        }, 3500);
      },
    });
    const slowCloud = await TestCloud.connect(slow.port);
    try {
      const id = newId();
      boots = device(id, { port: slow.port }).boots;
      await slowCloud.kind(id, 'hello');
      const v2 = image({ deviceId: id, product: PRODUCT, firmware: 2, app: DEMO_APP, options: 'keepalive: 5, backoffMin: 50', padTo: 8 * 1024 });
      const done = await sendImage(slowCloud, id, v2, { job: 12, product: PRODUCT, version: 2 });
      assert.equal(done.state, 'verified');
      await slowCloud.kind(id, 'hello', 10000, (m) => m.firmware === 2);
      // Still on v1 when the acknowledgement came: the reset waited for it.
      assert.deepEqual(order, ['verified held', 'verified acknowledged after 1 boot(s)']);
      assert.deepEqual(boots.map((b) => [b.slot, b.trial]), [[0, false], [1, true]]);
    } finally {
      await slowCloud.close();
      await slow.close();
    }
  });

  it('answers an abort of the image it has just verified with verified again: it resets into it all the same', async () => {
    // The broker holds the PUBACK of the first "verified" (the device waits for it to reset) while the abort goes out.
    let held = 0;
    let slowCloud: TestCloud | null = null;
    let id = '';
    const heard: string[] = [];
    const slow = await startBroker({
      authorizePublish: (_client, packet, cb) => {
        const m = packet.topic.endsWith('/ota') ? decode(new Uint8Array(packet.payload as Buffer)) : null;
        if (!m || m.kind !== 'otaStatus' || m.state !== 'verified' || held++) return cb(null);
        slowCloud!.send(id, 'otaAbort', { job: 14, reason: 'aborted' });
        setTimeout(() => cb(null), 1000);
      },
    });
    slowCloud = await TestCloud.connect(slow.port);
    try {
      id = newId();
      const { boots } = device(id, { port: slow.port, app: DEMO_APP + '\ncloud.onOta(function (e) { cloud.publish("ota-" + e.type, e.reason || ""); });' });
      await slowCloud.kind(id, 'hello');
      const v2 = image({ deviceId: id, product: PRODUCT, firmware: 2, app: DEMO_APP, options: 'keepalive: 5, backoffMin: 50', padTo: 4 * 1024 });
      assert.equal((await sendImage(slowCloud, id, v2, { job: 14, product: PRODUCT, version: 2 })).state, 'verified');
      const again = await slowCloud.kind(id, 'otaStatus', 5000, (m) => m.job === 14);
      assert.deepEqual([again.state, again.offset, again.reason], ['verified', v2.length, null]);
      await slowCloud.kind(id, 'hello', 10000, (m) => m.firmware === 2);
      assert.deepEqual(boots.map((b) => [b.slot, b.trial]), [[0, false], [1, true]]);
      for (const r of slowCloud.all) if (r.deviceId === id && r.event?.startsWith('ota-')) heard.push(r.event);
      assert.ok(heard.includes('ota-begin'), 'the app heard the update: ' + heard.join(' '));
      assert.equal(heard.includes('ota-failed'), false, 'the app heard no failure: ' + heard.join(' '));
    } finally {
      await slowCloud.close();
      await slow.close();
    }
  });

  it('rolls back a trial image that never reaches the cloud', async () => {
    const id = newId();
    const { boots } = device(id);
    await cloud.kind(id, 'hello');
    // v3 never connects: its agent waits for a connect() the app never makes.
    const v3 = image({ deviceId: id, product: PRODUCT, firmware: 3, app: '', options: 'autoConnect: false, trialWindow: 300' });
    const done = await sendImage(cloud, id, v3, { job: 12, product: PRODUCT, version: 3 });
    assert.equal(done.state, 'verified');
    const hello = await cloud.kind(id, 'hello', 10000, (m) => m.ota.rolledBackFrom === 3);
    assert.equal(hello.firmware, 1);
    assert.deepEqual(hello.ota, { slot: 0, trial: false, rolledBackFrom: 3 });
    assert.equal(hello.bootReason, 'update_timeout');
    assert.deepEqual(boots.map((b) => [b.slot, b.trial, b.version]), [[0, false, 1], [1, true, 3], [0, false, 1]]);
  });

  it('sent every message byte for byte as the cloud\'s encoder writes it', () => {
    const kinds = new Set<string>();
    for (const r of cloud.all) {
      const { kind, ...body } = r.msg;
      assert.equal(hex(encode(kind, body as never)), hex(r.raw), kind + ' from ' + r.deviceId);
      kinds.add(kind);
    }
    assert.deepEqual([...kinds].sort(), ['error', 'event', 'hello', 'otaStatus', 'reply', 'status', 'vitals']);
  });

  it('rolls back a trial image that crashes at start', async () => {
    const id = newId();
    const { crashes } = device(id);
    await cloud.kind(id, 'hello');
    const v4 = image({ deviceId: id, product: PRODUCT, firmware: 4, app: "throw new Error('v4 is broken');" });
    assert.equal((await sendImage(cloud, id, v4, { job: 13, product: PRODUCT, version: 4 })).state, 'verified');
    const hello = await cloud.kind(id, 'hello', 10000, (m) => m.ota.rolledBackFrom === 4);
    assert.equal(hello.firmware, 1);
    assert.equal(hello.bootReason, 'panic');
    assert.match(String(crashes[0]), /v4 is broken/);
    await cloud.kind(id, 'error', 5000, (m) => m.source === 'crash');
  });
});
