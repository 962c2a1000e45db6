/**
 * The cloud codec against the commented vectors in test/vectors/messages.ts:
 * every vector decoded, encoded (hex equal), round-tripped, and every
 * malformed variant refused with its exact error.
 */
import assert from 'node:assert/strict';
import { decode, encode, isProtocolError, Kind, LIMITS, Messages, ProtocolError } from '@flotilla/protocol';
import { DECODE_ERRORS, DECODE_ONLY, ENCODE_ERRORS, VECTORS } from '../vectors/messages.js';
import { hex, plain } from '../helpers/bytes.js';

function expectError(fn: () => unknown, error: { code: string; message: string }): void {
  try {
    fn();
  } catch (e) {
    assert.ok(isProtocolError(e), 'expected a ProtocolError, got ' + String(e));
    assert.equal((e as ProtocolError).message, error.message);
    assert.equal((e as ProtocolError).code, error.code);
    return;
  }
  assert.fail('expected ProtocolError "' + error.message + '", but nothing was thrown');
}

describe('protocol codec (cbor-x) against the vectors', () => {
  it('has a vector for every message kind', () => {
    const kinds = new Set(VECTORS.map((x) => x.kind));
    for (const k of ['hello', 'event', 'vitals', 'error', 'reply', 'otaStatus', 'status', 'request', 'otaBegin', 'otaChunk', 'otaAbort', 'cloudEvent'])
      assert.ok(kinds.has(k as Kind), 'no vector for ' + k);
  });

  for (const vec of VECTORS) {
    describe(vec.name, () => {
      it('decodes', () => {
        assert.deepStrictEqual(plain(decode(Uint8Array.from(vec.bytes))), plain({ kind: vec.kind, ...vec.body }));
      });
      it('encodes to the same bytes', () => {
        assert.equal(hex(encode(vec.kind, vec.body as never)), hex(vec.bytes));
      });
      it('round-trips', () => {
        const back = decode(encode(vec.kind, vec.body as never));
        assert.deepStrictEqual(plain(back), plain({ kind: vec.kind, ...vec.body }));
      });
    });
  }

  for (const vec of DECODE_ONLY) {
    it('decodes (input only): ' + vec.name, () => {
      assert.deepStrictEqual(plain(decode(Uint8Array.from(vec.bytes))), plain({ kind: vec.kind, ...vec.body }));
    });
  }

  for (const vec of DECODE_ERRORS) {
    it('refuses: ' + vec.name, () => expectError(() => decode(Uint8Array.from(vec.bytes)), vec.error));
  }

  for (const vec of ENCODE_ERRORS) {
    it('refuses to encode: ' + vec.name, () => expectError(() => encode(vec.kind, vec.body as never), vec.error));
  }

  it('names the field and the limit in a limit error', () => {
    try {
      encode('event', { data: 'x'.repeat(2000), ttl: 1 });
      assert.fail('no error');
    } catch (e) {
      assert.ok(e instanceof ProtocolError);
      assert.ok(e instanceof Error, 'a ProtocolError is an Error too');
      assert.equal(e.field, 'event.data');
      assert.equal(e.limit, LIMITS.eventDataMaxBytes);
      assert.equal(e.name, 'ProtocolError');
    }
  });

  it('returns an encoding that later encodes do not overwrite', () => {
    const a = encode('status', { online: true });
    const before = hex(a);
    for (let i = 0; i < 1000; i++) encode('otaChunk', { job: i, offset: 0, data: new Uint8Array(64).fill(i & 255) });
    assert.equal(hex(a), before);
  });

  it('fits the largest valid message of every kind in LIMITS.messageMaxBytes', () => {
    const name = (i: number) => ('n' + i).padEnd(LIMITS.nameMaxBytes, 'x');
    const big: { [K in Kind]: Messages[K] } = {
      hello: {
        agent: 'a'.repeat(LIMITS.agentVersionMaxBytes), firmware: LIMITS.firmwareVersionMax, product: 2 ** 32 - 1,
        variables: Array.from({ length: LIMITS.maxVariables }, (_, i) => ({ name: name(i), type: 'string' as const })),
        functions: Array.from({ length: LIMITS.maxFunctions }, (_, i) => name(i)),
        subscriptions: Array.from({ length: LIMITS.maxSubscriptions }, (_, i) => name(i)),
        bootReason: 'update_timeout', ota: { slot: 1, trial: true, rolledBackFrom: LIMITS.firmwareVersionMax },
      },
      event: { data: '€'.repeat(LIMITS.eventDataMaxBytes / 4), ttl: LIMITS.eventTtlMax },
      vitals: { values: { 'device.system.uptime': 0.1, 'device.system.memory.used': 0.1, 'device.system.memory.total': 0.1, 'device.network.signal.strength': 0.1, 'device.power.battery.charge': 0.1, 'device.cloud.coap.round_trip': 0.1 } },
      error: { source: 'crash', name: name(0), message: 'm'.repeat(LIMITS.errorMessageMaxBytes), stack: 's'.repeat(LIMITS.errorStackMaxBytes), count: 2 ** 32, uptime: 2 ** 32 },
      reply: { id: 2 ** 32 - 1, status: 'ok', value: 'v'.repeat(LIMITS.variableValueMaxBytes) },
      otaStatus: { job: 2 ** 32 - 1, state: 'failed', offset: LIMITS.otaImageMaxBytes, reason: 'rolled_back' },
      status: { online: true },
      request: { id: 2 ** 32 - 1, op: 'call', name: name(0), arg: 'a'.repeat(LIMITS.functionArgMaxBytes) },
      otaBegin: { job: 2 ** 32 - 1, product: 2 ** 32 - 1, version: LIMITS.firmwareVersionMax, size: LIMITS.otaImageMaxBytes, sha256: new Uint8Array(32), chunkSize: LIMITS.otaChunkMaxBytes },
      otaChunk: { job: 2 ** 32 - 1, offset: LIMITS.otaImageMaxBytes - LIMITS.otaChunkMaxBytes, data: new Uint8Array(LIMITS.otaChunkMaxBytes) },
      otaAbort: { job: 2 ** 32 - 1, reason: 'rolled_back' },
      cloudEvent: { name: name(0), data: 'd'.repeat(LIMITS.eventDataMaxBytes) },
    };
    for (const kind of Object.keys(big) as Kind[]) {
      const size = encode(kind, big[kind] as never).length;
      assert.ok(size <= LIMITS.messageMaxBytes, kind + ' encodes to ' + size + ' bytes');
    }
  });
});
