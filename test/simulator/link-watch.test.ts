/**
 * The simulator's wire watcher: MQTT packets split out of socket chunks in
 * any cut, counted by kind, and random bytes never make it throw.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { LinkWatch } from '@flotilla/simulator';

function watcher() {
  const seen: string[] = [];
  const w = new LinkWatch({ connack: (code) => seen.push('connack ' + code), publish: (dir, channel, bytes) => seen.push(`${dir} ${channel || '?'} ${bytes}`) });
  return { w, seen };
}

const b = (...x: number[]) => Uint8Array.from(x);
/** PUBLISH QoS 0 on `topic` with `payload` bytes of body after the topic. */
function publish(topic: string, payload: number): Uint8Array {
  const t = Buffer.from(topic);
  const len = 2 + t.length + payload;
  const head = len < 128 ? [0x30, len] : [0x30, (len & 0x7f) | 0x80, len >> 7];
  return Buffer.concat([Buffer.from(head), Buffer.from([t.length >> 8, t.length & 0xff]), t, Buffer.alloc(payload)]);
}

const ID = 'a1a1a1a1a1a1a1a1a1a1a1a1';

describe('simulator: LinkWatch', () => {
  it('reads a CONNACK: 20 02 (type 2, length 2) 00 (no session) 04 (bad credentials)', () => {
    const { w, seen } = watcher();
    w.received(b(0x20, 0x02, 0x00, 0x04));
    assert.deepEqual(seen, ['connack 4']);
  });

  it('joins a packet cut anywhere, including inside its length', () => {
    // Remaining length 2 + 40 (topic) + 200 = 242: two bytes, f2 01.
    const p = publish(`dev/${ID}/evt/reading`, 200);
    for (let cut = 1; cut < p.length; cut++) {
      const { w, seen } = watcher();
      w.sent(p.subarray(0, cut));
      w.sent(p.subarray(cut));
      assert.deepEqual(seen, ['out evt 242'], 'cut at ' + cut);
    }
  });

  it('splits packets packed into one chunk, and names their channels', () => {
    const { w, seen } = watcher();
    w.received(Buffer.concat([b(0x20, 2, 0, 0), publish(`cloud/${ID}/req`, 3), b(0xd0, 0), publish('some/other/topic', 1)]));
    assert.deepEqual(seen, ['connack 0', 'in req 39', 'in ? 19']);
  });

  it('starts afresh on a new connection (reset drops a half packet)', () => {
    const { w, seen } = watcher();
    w.sent(publish(`dev/${ID}/vitals`, 10).subarray(0, 5));
    w.reset();
    w.sent(publish(`dev/${ID}/vitals`, 10));
    assert.deepEqual(seen, ['out vitals 47']);
  });

  it('never throws on random bytes', () => {
    for (let i = 0; i < 2000; i++) {
      const { w } = watcher();
      const junk = randomBytes(1 + (i % 300));
      w.received(junk);
      w.sent(junk.subarray(i % junk.length));
    }
  });
});
