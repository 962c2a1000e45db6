/**
 * The OTA module's pure decisions, case by case: which version a device
 * should run (desired.ts), what a release would touch (impact), how many jobs
 * a rollout may start and when it pauses (gate.ts); and the Transfer state
 * machine against a scripted device (no network).
 */
import assert from 'node:assert/strict';
import type { Messages } from '@flotilla/protocol';
import { afterRelease, desiredVersion, impact } from '../../bridge/src/ota/desired.js';
import { gate } from '../../bridge/src/ota/gate.js';
import { Transfer, type TransferOutcome } from '../../bridge/src/ota/transfer.js';
import type { DeviceTarget, ProductReleases } from '../../bridge/src/store/store.js';

const dev = (over: Partial<DeviceTarget> = {}): DeviceTarget => ({ id: 'd', productId: 1, firmwareVersion: 1, lockedFirmware: null, development: false, quarantined: false, groupVersions: [], ...over });
const rel = (productDefault: number | null, groups: [string, number][] = []): ProductReleases => ({ productDefault, groups: new Map(groups) });

describe('OTA decisions', () => {
  describe('desiredVersion: lock, then group (the highest), then product default; development devices take no release', () => {
    const cases: [string, DeviceTarget, ProductReleases, ReturnType<typeof desiredVersion>][] = [
      ['nothing released', dev(), rel(null), null],
      ['product default', dev(), rel(3), { version: 3, by: 'default' }],
      ['a group beats the default', dev({ groupVersions: [2] }), rel(3), { version: 2, by: 'group' }],
      ['two groups: the highest', dev({ groupVersions: [2, 5, 4] }), rel(3), { version: 5, by: 'group' }],
      ['a lock beats a group', dev({ lockedFirmware: 1, groupVersions: [5] }), rel(3), { version: 1, by: 'lock' }],
      ['development: no default', dev({ development: true }), rel(3), null],
      ['development: no group', dev({ development: true, groupVersions: [4] }), rel(3), null],
      ['development: an explicit lock still holds', dev({ development: true, lockedFirmware: 7 }), rel(3), { version: 7, by: 'lock' }],
      ['quarantined: nothing, not even a lock', dev({ quarantined: true, lockedFirmware: 7, groupVersions: [4] }), rel(3), null],
    ];
    for (const [what, t, r, want] of cases) it(what, () => assert.deepEqual(desiredVersion(t, r), want));
  });

  it('afterRelease: a version becomes (or stops being) the default and holds exactly its groups', () => {
    const before = rel(2, [['beta', 3], ['canary', 3], ['gamma', 1]]);
    assert.deepEqual(afterRelease(before, { version: 3, productDefault: false, groups: ['beta'] }), rel(2, [['beta', 3], ['gamma', 1]]));
    assert.deepEqual(afterRelease(before, { version: 4, productDefault: true, groups: ['gamma'] }), rel(4, [['beta', 3], ['canary', 3], ['gamma', 4]]));
    assert.deepEqual(afterRelease(before, { version: 2, productDefault: false, groups: [] }).productDefault, null);
  });

  it('impact: the devices a release would move, by the version they run; not those already on it, locked or in development', () => {
    const targets = [
      dev({ id: 'a', firmwareVersion: 1 }),
      dev({ id: 'b', firmwareVersion: 2 }),
      dev({ id: 'c', firmwareVersion: 5 }),
      dev({ id: 'd', firmwareVersion: 1, lockedFirmware: 1 }),
      dev({ id: 'e', firmwareVersion: 1, development: true }),
      dev({ id: 'f', firmwareVersion: null }),
      // Locked to the released version: its lock moves it, not the release (the rollout leaves it out; the preview counted it).
      dev({ id: 'g', firmwareVersion: 1, lockedFirmware: 5 }),
    ];
    const groups = new Map([['b', ['beta']], ['c', ['beta']], ['e', ['beta']]]);
    const toBeta = impact(targets, groups, rel(1), { version: 5, productDefault: false, groups: ['beta'] });
    assert.deepEqual([toBeta.total, [...toBeta.byVersion]], [1, [[2, 1]]]);
    const toAll = impact(targets, groups, rel(1), { version: 5, productDefault: true, groups: [] });
    assert.deepEqual([toAll.total, [...toAll.byVersion]], [3, [[1, 1], [2, 1], [null, 1]]]);
  });

  describe('gate: concurrency, batches, and a pause past the failure threshold once enough finished', () => {
    const r = { state: 'running' as const, concurrency: 5, batchSize: 0, failureThreshold: 0.1, minAttempts: 20 };
    const c = (active: number, done: number, failed: number, started = active + done + failed) => ({ active, done, failed, started });
    const cases: [string, Parameters<typeof gate>[0], ReturnType<typeof c>, ReturnType<typeof gate>][] = [
      ['free slots up to the concurrency', r, c(2, 0, 0), { slots: 3, pause: null }],
      ['all slots taken', r, c(5, 10, 0), { slots: 0, pause: null }],
      ['paused rollouts start nothing', { ...r, state: 'paused' }, c(0, 0, 0), { slots: 0, pause: null }],
      ['many failures, too few attempts: no pause yet', r, c(0, 10, 9), { slots: 5, pause: null }],
      ['at the threshold exactly: no pause', r, c(0, 18, 2), { slots: 5, pause: null }],
      ['past the threshold with enough attempts: pause', r, c(1, 17, 3), { slots: 0, pause: '3 of 20 updates failed (15%), above the threshold of 10%' }],
      ['a batch fully started waits for its last job', { ...r, batchSize: 4 }, c(1, 3, 0), { slots: 0, pause: null }],
      ['the next batch opens when the last one finished', { ...r, batchSize: 4 }, c(0, 4, 0), { slots: 4, pause: null }],
      ['a partly started batch fills up', { ...r, batchSize: 4 }, c(1, 1, 0), { slots: 2, pause: null }],
      ['a batch larger than the concurrency', { ...r, batchSize: 50 }, c(3, 0, 0), { slots: 2, pause: null }],
    ];
    for (const [what, rr, cc, want] of cases) it(what, () => assert.deepEqual(gate(rr, cc), want));
  });

  describe('Transfer against a scripted device', () => {
    const size = 10 * 100;
    const image = { job: 9, product: 1, version: 2, size, sha256: new Uint8Array(32) };
    function harness(o: { window?: number; ackTimeoutMs?: number; maxSilences?: number } = {}) {
      const sent: (['begin'] | ['chunk', number])[] = [];
      const outcomes: TransferOutcome[] = [];
      const t = new Transfer(image, {
        begin: () => sent.push(['begin']),
        chunk: (m) => sent.push(['chunk', m.offset]),
        read: async (offset, length) => new Uint8Array(length).fill(offset & 255),
        progress: () => {},
        end: (x) => outcomes.push(x),
      }, { chunkSize: 100, window: o.window ?? 3, ackTimeoutMs: o.ackTimeoutMs ?? 10000, maxSilences: o.maxSilences ?? 2 });
      const status = async (state: Messages['otaStatus']['state'], offset: number, reason: Messages['otaStatus']['reason'] = null) => {
        t.status({ job: 9, state, offset, reason });
        await new Promise((r) => setImmediate(r));
      };
      return { t, sent, outcomes, status };
    }
    const chunks = (sent: (['begin'] | ['chunk', number])[]) => sent.filter((s) => s[0] === 'chunk').map((s) => s[1]);

    it('begins, resumes at the offset the device holds and keeps `window` chunks ahead of its acknowledgements', async () => {
      const h = harness();
      h.t.start();
      assert.deepEqual(h.sent, [['begin']]);
      await h.status('offset', 300); // a resume: the device holds 300 bytes
      assert.deepEqual(chunks(h.sent), [300, 400, 500]);
      await h.status('offset', 400);
      assert.deepEqual(chunks(h.sent), [300, 400, 500, 600]);
      h.t.stop();
    });

    it('resends from an offset the device repeats (a lost chunk), once per offset', async () => {
      const h = harness();
      h.t.start();
      await h.status('offset', 0);
      await h.status('offset', 100); // 100 got lost: the device holds 100 and refuses 200, 300
      await h.status('offset', 100);
      await h.status('offset', 100);
      assert.deepEqual(chunks(h.sent), [0, 100, 200, 300, 100, 200, 300]);
      h.t.stop();
    });

    it('resends from an offset the device goes back to once per offset: a device that keeps going back costs one window, not one each time', async () => {
      const h = harness();
      h.t.start();
      await h.status('offset', 0); // sends 0, 100, 200
      await h.status('offset', 200); // 300, 400
      await h.status('offset', 0); // back: 0, 100, 200 again
      await h.status('offset', 200); // 300, 400 again (sent since the resend point)
      // A device that keeps saying 0 and 200 (each status a few bytes) gets nothing more.
      for (let i = 0; i < 50; i++) {
        await h.status('offset', 0);
        await h.status('offset', 200);
      }
      assert.deepEqual(chunks(h.sent), [0, 100, 200, 300, 400, 0, 100, 200, 300, 400]);
      assert.deepEqual(h.outcomes, []);
      h.t.stop();
    });

    it('ignores another job\'s status; ends on verified (of the whole image) and on failed with the device\'s reason; an offset past the end, or verified short of it, is a bad chunk', async () => {
      const h = harness();
      h.t.start();
      h.t.status({ job: 8, state: 'verified', offset: size, reason: null });
      assert.deepEqual(h.outcomes, []);
      await h.status('failed', 0, 'bad_sha');
      assert.deepEqual(h.outcomes, [{ kind: 'failed', reason: 'bad_sha' }]);
      const v = harness();
      v.t.start();
      await v.status('verified', size);
      assert.deepEqual(v.outcomes, [{ kind: 'verified' }]);
      // Verified with less than the whole image (no chunk was sent yet): not a verified job.
      const early = harness();
      early.t.start();
      await early.status('verified', 0);
      assert.deepEqual(early.outcomes, [{ kind: 'failed', reason: 'bad_chunk' }]);
      const past = harness();
      past.t.start();
      await past.status('offset', size + 1);
      assert.deepEqual(past.outcomes, [{ kind: 'failed', reason: 'bad_chunk' }]);
    });

    it('sends begin again to a silent device, then ends as silent', async () => {
      const h = harness({ ackTimeoutMs: 20, maxSilences: 2 });
      h.t.start();
      await new Promise((r) => setTimeout(r, 150));
      assert.deepEqual(h.sent, [['begin'], ['begin'], ['begin']]);
      assert.deepEqual(h.outcomes, [{ kind: 'silent' }]);
    });

    it('ends as silent a device that answers every begin but never takes a chunk: an answer that moves nothing does not count as heard', async () => {
      const h = harness({ ackTimeoutMs: 30, maxSilences: 2 });
      let begins = 0;
      h.t.start();
      // The device answers each begin with offset 0 (and repeats it), and never acknowledges a chunk.
      const answer = setInterval(() => {
        const n = h.sent.filter((x) => x[0] === 'begin').length;
        if (n > begins) {
          begins = n;
          h.t.status({ job: 9, state: 'offset', offset: 0, reason: null });
          h.t.status({ job: 9, state: 'offset', offset: 0, reason: null });
        }
      }, 5);
      try {
        for (let i = 0; i < 100 && h.outcomes.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      } finally {
        clearInterval(answer);
      }
      // Before, every answer reset the count of silences: begin was sent for ever and the transfer never ended.
      assert.deepEqual(h.outcomes, [{ kind: 'silent' }]);
      assert.equal(h.sent.filter((x) => x[0] === 'begin').length, 3);
    });

    /**
     * A whole transfer to a device behind a slow link, as the agent answers: every frame answered `delayMs`
     * after it is sent, a chunk kept only in order, and the first copies of the chunks at `lost` never arrive.
     */
    async function overSlowLink(o: { delayMs: number; lost?: number[]; window: number; ackTimeoutMs: number }) {
      const sent: (['begin'] | ['chunk', number])[] = [];
      const outcomes: TransferOutcome[] = [];
      const lost = new Set(o.lost ?? []);
      let held = 0;
      const answer = () => t.status(held === size ? { job: 9, state: 'verified', offset: size, reason: null } : { job: 9, state: 'offset', offset: held, reason: null });
      const t: Transfer = new Transfer(image, {
        begin: () => (sent.push(['begin']), setTimeout(answer, o.delayMs)),
        chunk: (m) => {
          sent.push(['chunk', m.offset]);
          if (lost.delete(m.offset)) return;
          setTimeout(() => {
            if (m.offset === held) held += m.data.length;
            answer();
          }, o.delayMs);
        },
        read: async (offset, length) => new Uint8Array(length).fill(offset & 255),
        progress: () => {},
        end: (x) => outcomes.push(x),
      }, { chunkSize: 100, window: o.window, ackTimeoutMs: o.ackTimeoutMs, maxSilences: 3 });
      t.start();
      for (let i = 0; i < 300 && outcomes.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      t.stop();
      assert.deepEqual(outcomes, [{ kind: 'verified' }]);
      return { begins: sent.filter((x) => x[0] === 'begin').length, chunks: chunks(sent) };
    }

    it('waits as long as the link takes: a device whose answers come after the acknowledgement timeout is not sent begin and the window again and again', async () => {
      // 10 chunks of 100 bytes; the device answers 100 ms after anything is sent, the timeout is 60 ms.
      const r = await overSlowLink({ delayMs: 100, window: 2, ackTimeoutMs: 60 });
      // Before the first answer nothing is known of the link: begin may go once more. Once the answers time it, no more.
      assert.ok(r.begins <= 2, r.begins + ' begins');
      assert.ok(r.chunks.length <= 10 + 2, 'at most one window sent twice: ' + r.chunks.join(','));
    });

    it('recovers a chunk lost on a slow link at once, from the device\'s repeated offset, not after a silence', async () => {
      const r = await overSlowLink({ delayMs: 100, lost: [300, 700], window: 3, ackTimeoutMs: 1000 });
      assert.equal(r.begins, 1, 'no silence: the losses were seen from the repeated offsets');
      assert.deepEqual([r.chunks.filter((x) => x === 300).length, r.chunks.filter((x) => x === 700).length], [2, 2], r.chunks.join(','));
      assert.ok(r.chunks.length <= 10 + 2 * 3, 'a window again per loss at most: ' + r.chunks.join(','));
    });

    it('ends with an error when the image cannot be read', async () => {
      const outcomes: TransferOutcome[] = [];
      const t = new Transfer(image, {
        begin: () => {}, chunk: () => {}, progress: () => {}, end: (x) => outcomes.push(x),
        read: async () => {
          throw new Error('image file ended at 0, expected 100');
        },
      }, { chunkSize: 100, window: 2, ackTimeoutMs: 10000, maxSilences: 1 });
      t.start();
      t.status({ job: 9, state: 'offset', offset: 0, reason: null });
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(outcomes, [{ kind: 'error', message: 'image file ended at 0, expected 100' }]);
    });
  });
});
