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

  it('refuses a CONNECT naming a protocol level mqtt-packet cannot read, however it is split', () => {
    // 10 0f | 00 04 'MQTT' | level | flags 02 | keepalive 00 1e | client id 00 03 'abc'
    const connect = (name: string, level: number) =>
      Buffer.concat([Buffer.from([0x10, 2 + name.length + 1 + 1 + 2 + 5, 0, name.length]), Buffer.from(name), Buffer.from([level, 0x02, 0, 30, 0, 3]), Buffer.from('abc')]);
    const verdict = (bytes: Buffer, size: number) => {
      const s = frameState();
      let v = 'ok';
      for (let i = 0; i < bytes.length && v === 'ok'; i += size) v = scanFrames(s, bytes.subarray(i, i + size), 100);
      return v;
    };
    for (const size of [1, 2, 5, 100]) {
      for (const level of [0, 1, 2, 6, 7, 0x86, 0xff]) assert.equal(verdict(connect('MQTT', level), size), 'bad-level', `MQTT level ${level}, chunks of ${size}`);
      assert.equal(verdict(connect('MQIsdp', 9), size), 'bad-level', 'MQIsdp level 9');
      // 3.1, 3.1.1, 5 and their bridge forms (high bit set) go on to the parser.
      for (const level of [3, 4, 5, 0x83, 0x84]) assert.equal(verdict(connect('MQTT', level), size), 'ok', `MQTT level ${level}`);
      assert.equal(verdict(connect('MQIsdp', 3), size), 'ok');
      // Another name is the parser's to refuse (it then closes: [MQTT-3.1.2-1] lets a server just close).
      assert.equal(verdict(connect('MQTX', 9), size), 'ok');
    }
    // Only the first frame is a CONNECT: the same bytes later in the stream are a body like any other.
    const s = frameState();
    assert.equal(scanFrames(s, gen({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 30, clientId: 'c1' }), 100), 'ok');
    assert.equal(scanFrames(s, gen({ cmd: 'publish', topic: '\u0000\u0004MQTT\u0009', payload: Buffer.alloc(0), qos: 0 }), 100), 'ok');
  });
});
