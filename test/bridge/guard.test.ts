/** The frame guard's scanner: frames split anywhere pass; each refusal is exact. */
import assert from 'node:assert/strict';
import mqttPacket from 'mqtt-packet';
import { frameState, scanFrames } from '../../bridge/src/mqtt/guard.js';

const gen = (p: object) => mqttPacket.generate(p as never);
const traffic = Buffer.concat([
  gen({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 30, clientId: 'c1' }),
  gen({ cmd: 'publish', topic: 'dev/x/evt/t', payload: Buffer.alloc(300, 1), qos: 1, messageId: 7 }),
  gen({ cmd: 'pingreq' }), // a frame with no body
  gen({ cmd: 'publish', topic: 't', payload: Buffer.alloc(20000, 2), qos: 0 }), // a 3-byte remaining length
  gen({ cmd: 'disconnect' }),
]);

describe('bridge frame guard (scanFrames)', () => {
  it('passes valid traffic however it is split, and counts the frames', () => {
    for (const size of [1, 2, 3, 7, 64, 1000, traffic.length]) {
      const s = frameState();
      for (let i = 0; i < traffic.length; i += size) assert.equal(scanFrames(s, traffic.subarray(i, i + size), 65536), 'ok', 'chunks of ' + size);
      assert.equal(s.frames, 5);
      assert.deepEqual([s.skip, s.headerBytes], [0, 0], 'at a frame boundary');
    }
  });

  it('refuses a frame over the limit, at its header, before its body', () => {
    const s = frameState();
    assert.equal(scanFrames(s, traffic.subarray(0, 16), 19999), 'ok');
    const big = gen({ cmd: 'publish', topic: 't', payload: Buffer.alloc(20000), qos: 0 });
    assert.equal(scanFrames(frameState(), Buffer.concat([traffic.subarray(0, 16), big.subarray(0, 4)]), 19999), 'too-large');
    assert.equal(scanFrames(frameState(), Buffer.from([0x10, 0xff, 0xff, 0xff, 0x7f]), 1 << 20), 'too-large');
  });

  it('refuses a fifth length byte and a first packet that is not CONNECT', () => {
    assert.equal(scanFrames(frameState(), Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x01]), 1 << 30), 'bad-length');
    assert.equal(scanFrames(frameState(), gen({ cmd: 'pingreq' }), 100), 'not-connect');
    assert.equal(scanFrames(frameState(), Buffer.from([0x30]), 100), 'not-connect');
  });
});
