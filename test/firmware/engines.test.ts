/**
 * The built agent bundle on real embedded engines, QuickJS (wasm, in process)
 * and Duktape 2.7 (32-bit C host with a counting allocator), each relayed to
 * a real aedes broker on loopback: everything a device does, the OTA faults,
 * a power cut after every persisted write, and the heap staying flat.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { decodeBoot } from '@flotilla/firmware/boot';
import { ENGINES, emptyFlash, EngineName, FlashState } from '../helpers/engines/index.js';
import { EngineDevice } from '../helpers/engine-device.js';
import { startBroker, TestBroker } from '../helpers/broker.js';
import { TestCloud } from '../helpers/test-cloud.js';
import { DEMO_APP, image } from '../helpers/images.js';
import { sendImage } from '../helpers/ota-sender.js';

const PRODUCT = 7;
const OPTIONS = 'keepalive: 5, backoffMin: 50, backoffMax: 400';
let seq = 0;
const newId = () => (0x2000000 + ++seq).toString(16).padStart(24, 'b');

function flashWith(id: string, app = DEMO_APP, options = OPTIONS, slotSize = 160 * 1024): FlashState {
  const f = emptyFlash(slotSize);
  f.slots[0].set(image({ deviceId: id, product: PRODUCT, firmware: 1, app, options }));
  return f;
}

/**
 * Each engine as the other tests run it, and Duktape built with the low-memory
 * options a board port uses (no function name property, 16-bit sizes): on that
 * one, a session and an OTA, not the fault matrix again.
 */
const RUNS: { engine: EngineName; label: string; duktapeConfig?: 'low-memory'; full: boolean }[] = [
  ...ENGINES.map((engine) => ({ engine, label: engine, full: true })),
  { engine: 'duktape', label: 'duktape with low-memory options', duktapeConfig: 'low-memory', full: false },
];

for (const { engine, label, duktapeConfig, full } of RUNS) {
  describe('agent on ' + label, function () {
    this.timeout(60000);
    let broker: TestBroker;
    let cloud: TestCloud;
    const devices: EngineDevice[] = [];

    before(async () => {
      broker = await startBroker();
      cloud = await TestCloud.connect(broker.port);
    });
    after(async () => {
      for (const d of devices) await d.stop();
      await cloud.close();
      await broker.close();
    });

    async function device(id: string, flash: FlashState = flashWith(id)): Promise<EngineDevice> {
      const d = new EngineDevice(engine, flash, { port: broker.port, battery: 55, signalStrength: 70, duktapeConfig });
      devices.push(d);
      await d.start();
      return d;
    }

    function deviceSocket(id: string) {
      const clients = (broker.aedes as unknown as { clients: Record<string, { conn: unknown }> }).clients;
      return [...broker.sockets].find((s) => clients[id]?.conn === s);
    }

    it('connects, says hello, answers reads and calls, publishes with ack, reports a throwing handler', async () => {
      const id = newId();
      await device(id);
      const hello = await cloud.kind(id, 'hello', 10000);
      assert.equal(hello.firmware, 1);
      assert.deepEqual(hello.functions, ['setLed', 'boom', 'noreturn', 'pub', 'setTemp']);
      assert.equal((await cloud.request(id, { op: 'var', name: 'temp' })).value, 21.5);
      assert.equal((await cloud.request(id, { op: 'var', name: 'name' })).value, 'kitchen');
      assert.equal((await cloud.request(id, { op: 'call', name: 'setLed', arg: 'on' })).value, 1);
      await cloud.request(id, { op: 'call', name: 'pub', arg: 'e' });
      assert.deepEqual((await cloud.next((r) => r.deviceId === id && r.event === 'note/e')).msg, { kind: 'event', data: 'hello e', ttl: 60 });
      assert.equal(((await cloud.next((r) => r.deviceId === id && r.event === 'acked')).msg as { data: string }).data, 'ok');
      const r = await cloud.request(id, { op: 'call', name: 'boom', arg: '' });
      assert.deepEqual([r.status, r.value], ['handler_error', 'kaboom']);
      const err = await cloud.kind(id, 'error', 5000, (m) => m.source === 'function');
      assert.deepEqual([err.name, err.message], ['boom', 'kaboom']);
      await cloud.kind(id, 'error', 5000, (m) => m.source === 'timer' && m.message === 'timer broke');
      cloud.send(id, 'cloudEvent', { name: 'alert/x', data: '1' });
      assert.equal(((await cloud.next((x) => x.deviceId === id && x.event === 'seen')).msg as { data: string }).data, 'alert/x=1');
    });

    it('publishes vitals on schedule, with the engine\'s heap figures', async () => {
      const id = newId();
      await device(id, flashWith(id, DEMO_APP + 'cloud.vitals(1);'));
      await cloud.kind(id, 'hello', 10000);
      const v = await cloud.kind(id, 'vitals');
      assert.equal(v.values['device.power.battery.charge'], 55);
      assert.ok(v.values['device.system.memory.used']! > 10000, 'heap used ' + v.values['device.system.memory.used']);
      const t0 = Date.now();
      await cloud.kind(id, 'vitals');
      await cloud.kind(id, 'vitals');
      assert.ok(Date.now() - t0 >= 900);
    });

    it('survives a garbage frame, and reconnects after the broker drops the link', async () => {
      const id = newId();
      await device(id);
      await cloud.kind(id, 'hello', 10000);
      deviceSocket(id)!.write(Buffer.from([0x36, 0x04, 0xff, 0xff, 0x00, 0x00]));
      await cloud.kind(id, 'hello', 10000);
      deviceSocket(id)!.destroy();
      await cloud.kind(id, 'hello', 10000);
      const v = await cloud.kind(id, 'vitals', 10000, (m) => m.values['device.cloud.connection.attempts'] === 3);
      assert.equal(v.values['device.cloud.connection.disconnects'], 2);
      assert.equal((await cloud.request(id, { op: 'var', name: 'count' })).value, 42);
    });

    it('takes a 64 KB image over the air: SHA-256 checked, slot switched, new code running', async () => {
      const id = newId();
      const d = await device(id);
      await cloud.kind(id, 'hello', 10000);
      const v2 = image({ deviceId: id, product: PRODUCT, firmware: 2, app: DEMO_APP + "cloud.fn('v2only', function () { return 2; });", options: OPTIONS, padTo: 64 * 1024 });
      const done = await sendImage(cloud, id, v2, { job: 21, product: PRODUCT, version: 2, chunkSize: 1024, window: 4 });
      assert.deepEqual([done.state, done.offset], ['verified', v2.length]);
      const hello = await cloud.kind(id, 'hello', 15000, (m) => m.firmware === 2);
      assert.deepEqual([hello.bootReason, hello.ota.slot, hello.ota.trial], ['update', 1, false]);
      assert.equal((await cloud.request(id, { op: 'call', name: 'v2only', arg: '' })).value, 2);
      const f = d.state();
      assert.equal(createHash('sha256').update(f.slots[1].subarray(0, v2.length)).digest('hex'), createHash('sha256').update(v2).digest('hex'));
      assert.deepEqual([decodeBoot(f.boot).active, decodeBoot(f.boot).trial], [1, 255]);
    });

    if (full) {
      describe('OTA faults', () => {
        async function ready(): Promise<{ id: string; d: EngineDevice }> {
          const id = newId();
          const d = await device(id);
          await cloud.kind(id, 'hello', 10000);
          return { id, d };
        }
        const v2 = (id: string) => image({ deviceId: id, product: PRODUCT, firmware: 2, app: DEMO_APP, options: OPTIONS });

        it('a corrupted chunk fails the SHA-256 check and the old image keeps running', async () => {
          const { id, d } = await ready();
          let flipped = false;
          const s = await sendImage(cloud, id, v2(id), {
            job: 31, product: PRODUCT, version: 2, chunkSize: 4096,
            mangle: (c) => {
              if (!flipped && c.offset === 8192) {
                flipped = true;
                const data = c.data.slice();
                data[100] ^= 0x40;
                return [{ ...c, data }];
              }
              return [c];
            },
          });
          assert.deepEqual([s.state, s.reason], ['failed', 'bad_sha']);
          assert.equal(decodeBoot(d.state().boot).trial, 255, 'nothing marked for boot');
          assert.equal((await cloud.request(id, { op: 'ping' })).status, 'ok');
          assert.equal(d.boots.length, 1, 'no reboot');
        });

        it('duplicate, out-of-order and missing chunks still give a byte-identical image', async () => {
          const { id } = await ready();
          const img = v2(id);
          let dropped = false;
          let held: ReturnType<typeof structuredClone> | null = null;
          const s = await sendImage(cloud, id, img, {
            job: 32, product: PRODUCT, version: 2, chunkSize: 2048, window: 4,
            mangle: (c) => {
              if (c.offset === 4096 && !dropped) {
                dropped = true; // missing: never sent the first time
                return [];
              }
              if (c.offset === 10240 && !held) {
                held = c; // out of order: sent after the next one
                return [];
              }
              if (held && c.offset === 12288) {
                const h = held as typeof c;
                return [c, h];
              }
              return [c, c]; // every other chunk twice
            },
          });
          assert.equal(s.state, 'verified');
          const hello = await cloud.kind(id, 'hello', 15000, (m) => m.firmware === 2);
          assert.equal(hello.ota.slot, 1);
        });

        it('an oversize or out-of-range chunk fails the job', async () => {
          const { id } = await ready();
          const s = await sendImage(cloud, id, v2(id), {
            job: 33, product: PRODUCT, version: 2, chunkSize: 1024,
            mangle: (c) => (c.offset === 2048 ? [{ ...c, data: new Uint8Array(1500) }] : [c]),
          });
          assert.deepEqual([s.state, s.reason, s.offset], ['failed', 'bad_chunk', 2048]);
          cloud.send(id, 'otaBegin', { job: 34, product: PRODUCT, version: 2, size: 3000, sha256: new Uint8Array(32), chunkSize: 1024 });
          assert.deepEqual((await cloud.kind(id, 'otaStatus', 5000, (m) => m.job === 34)).offset, 0);
          cloud.send(id, 'otaChunk', { job: 34, offset: 2048, data: new Uint8Array(1000) });
          const range = await cloud.kind(id, 'otaStatus', 5000, (m) => m.job === 34);
          assert.deepEqual([range.state, range.reason], ['failed', 'bad_chunk']);
        });

        it('a wrong SHA-256, a wrong product, the same version and a too-large image are refused', async () => {
          const { id } = await ready();
          const img = v2(id);
          const bad = await sendImage(cloud, id, img, { job: 35, product: PRODUCT, version: 2, chunkSize: 4096, sha256: new Uint8Array(32).fill(7) });
          assert.deepEqual([bad.state, bad.reason], ['failed', 'bad_sha']);
          const wrong = await sendImage(cloud, id, img, { job: 36, product: PRODUCT + 1, version: 2 });
          assert.deepEqual([wrong.state, wrong.reason], ['failed', 'wrong_product']);
          const same = await sendImage(cloud, id, img, { job: 37, product: PRODUCT, version: 1 });
          assert.deepEqual([same.state, same.reason], ['failed', 'bad_version']);
          cloud.send(id, 'otaBegin', { job: 38, product: PRODUCT, version: 2, size: 1024 * 1024, sha256: new Uint8Array(32), chunkSize: 1024 });
          const big = await cloud.kind(id, 'otaStatus', 5000, (m) => m.job === 38);
          assert.deepEqual([big.state, big.reason], ['failed', 'too_large']);
          assert.equal((await cloud.request(id, { op: 'var', name: 'count' })).value, 42, 'still running v1');
        });

        it('a trial image that never reaches the cloud is rolled back', async () => {
          const { id, d } = await ready();
          const v3 = image({ deviceId: id, product: PRODUCT, firmware: 3, app: '', options: 'autoConnect: false, trialWindow: 300' });
          assert.equal((await sendImage(cloud, id, v3, { job: 39, product: PRODUCT, version: 3, chunkSize: 4096 })).state, 'verified');
          const hello = await cloud.kind(id, 'hello', 15000, (m) => m.ota.rolledBackFrom === 3);
          assert.deepEqual([hello.firmware, hello.ota.slot, hello.bootReason], [1, 0, 'update_timeout']);
          assert.deepEqual(d.boots.map((b) => [b.slot, b.trial, b.version]), [[0, false, 1], [1, true, 3], [0, false, 1]]);
        });
      });

      it('boots a complete image after a power cut at every persisted write of an update', async function () {
        this.timeout(240000);
        // One uninterrupted update, recording every persisted write: the agent's and the bootloader's.
        const id = newId();
        const initial = flashWith(id);
        const first = await device(id, initial);
        await cloud.kind(id, 'hello', 10000);
        const img = image({ deviceId: id, product: PRODUCT, firmware: 2, app: DEMO_APP, options: OPTIONS });
        const chunkSize = 4096;
        assert.equal((await sendImage(cloud, id, img, { job: 41, product: PRODUCT, version: 2, chunkSize })).state, 'verified');
        await cloud.kind(id, 'hello', 15000, (m) => m.firmware === 2);
        await first.stop();
        const writes = first.journal.ops.length;
        assert.ok(writes >= Math.ceil(img.length / chunkSize) * 2 + 3, writes + ' persisted writes');
        // Power cut after each k-th write: the device must boot an intact image, reach the
        // cloud, and finish the update when the cloud sends it again.
        for (let k = 0; k <= writes; k++) {
          const state = first.journal.after(k);
          const d = new EngineDevice(engine, state, { port: broker.port, maxBoots: 6 });
          await d.start();
          let phase = 'boot';
          try {
            const hello = await cloud.kind(id, 'hello', 15000);
            assert.ok(hello.firmware === 1 || hello.firmware === 2, 'after write ' + k + ': firmware ' + hello.firmware);
            if (hello.firmware === 1) {
              const job = decodeBoot(state.boot).job;
              phase = 'resend from ' + (job ? job.offset : 0);
              const s = await sendImage(cloud, id, img, { job: 41, product: PRODUCT, version: 2, chunkSize });
              phase = 'reboot into v2';
              assert.equal(s.state, 'verified', 'after write ' + k);
              await cloud.kind(id, 'hello', 15000, (m) => m.firmware === 2);
              if (job) assert.ok(job.offset <= img.length);
            }
            assert.deepEqual(d.crashes, [], 'after write ' + k);
          } catch (e) {
            throw new Error('power cut after write ' + k + ' of ' + writes + ' (' + phase + ', boots ' + JSON.stringify(d.boots) + '): ' + (e as Error).message);
          } finally {
            await d.stop();
          }
          cloud.received.length = 0;
        }
      });

      it('keeps its heap flat: after 1,000 requests within 2 KB of after the first 10', async function () {
        this.timeout(120000);
        const id = newId();
        const d = await device(id);
        await cloud.kind(id, 'hello', 10000);
        const round = async (n: number) => {
          for (let i = 0; i < n; i++) {
            const op = i % 3;
            if (op === 0) await cloud.request(id, { op: 'var', name: 'temp' });
            else if (op === 1) await cloud.request(id, { op: 'call', name: 'setLed', arg: 'on' });
            else await cloud.request(id, { op: 'ping' });
          }
          cloud.received.length = 0;
        };
        await round(10);
        const after10 = (await d.engine!.memory()).used;
        await round(990);
        const after1000 = (await d.engine!.memory()).used;
        assert.ok(after1000 - after10 <= 2048, engine + ': heap after 10 requests ' + after10 + ' B, after 1,000 ' + after1000 + ' B');
      });
    }
  });
}
