/**
 * The firmware's own codec against every vector in test/vectors/messages.ts,
 * in Node from source and inside QuickJS and Duktape from the built bundle:
 *   - CBOR: cborEncode(toWire(body)) gives the vector's bytes exactly, and
 *     cborDecode(bytes) gives the wire value back, for every kind; every
 *     malformed-CBOR vector fails with the exact message.
 *   - Messages: decodeIn reads every kind the cloud sends a device exactly, and
 *     refuses every other vector (malformed, over a limit, or a kind a device
 *     never receives). The agent's outbound messages are checked against the
 *     cloud's codec in agent-vm.test.ts.
 */
import assert from 'node:assert/strict';
import { isProtocolError, KINDS, toWire } from '@flotilla/protocol';
import { cborDecode, cborEncode, decodeIn } from '../../firmware/src/wire.js';
import { DECODE_ERRORS, DECODE_ONLY, VECTORS } from '../vectors/messages.js';
import { hex, plain } from '../helpers/bytes.js';
import { ENGINES, emptyFlash, startEngine } from '../helpers/engines/index.js';
import { agentBundle } from '../helpers/images.js';

const INBOUND = new Set<string>(KINDS.filter((k) => k.from === 'cloud').map((k) => k.kind));

describe('firmware codec against the vectors (Node, from source)', () => {
  for (const v of VECTORS) {
    it(v.name, () => {
      const wire = toWire(v.kind, v.body as never);
      assert.equal(hex(cborEncode(wire)), hex(v.bytes));
      assert.deepStrictEqual(plain(cborDecode(Uint8Array.from(v.bytes))), plain(wire));
      if (INBOUND.has(v.kind)) assert.deepStrictEqual(plain(decodeIn(Uint8Array.from(v.bytes))), plain({ kind: v.kind, ...v.body }));
      else assert.throws(() => decodeIn(Uint8Array.from(v.bytes)), isProtocolError, 'a device never accepts ' + v.kind);
    });
  }
  for (const v of DECODE_ONLY) {
    it('decodes ' + v.name, () => assert.deepStrictEqual(plain(cborDecode(Uint8Array.from(v.bytes))), plain(toWire(v.kind, v.body as never))));
  }
  for (const v of DECODE_ERRORS) {
    it('refuses ' + v.name, () => {
      if (v.error.code === 'cbor')
        assert.throws(() => cborDecode(Uint8Array.from(v.bytes)), (e: unknown) => isProtocolError(e) && e.code === 'cbor' && e.message === v.error.message);
      assert.throws(() => decodeIn(Uint8Array.from(v.bytes)), isProtocolError);
    });
  }
});

/** JSON that an ES5 engine can rebuild: Uint8Array as {"$bytes": [...]}. */
function toJson(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (x instanceof Uint8Array ? { $bytes: Array.from(x) } : x));
}

/** Canonical text of a value: keys sorted, bytes as {"$bytes": [...]}; computed the same way inside the engines. */
function canonical(v: unknown): string {
  if (v instanceof Uint8Array) return '{"$bytes":[' + Array.from(v).join(',') + ']}';
  if (Array.isArray(v)) return '[' + v.map(canonical).join(',') + ']';
  if (v !== null && typeof v === 'object') return '{' + Object.keys(v).sort().map((k) => JSON.stringify(k) + ':' + canonical((v as Record<string, unknown>)[k])).join(',') + '}';
  return JSON.stringify(v);
}

/** Runs inside the engine: ES5 only (no Array.from, no Uint8Array#join on Duktape). */
const ENGINE_CHECK = `
function revive(v) {
  if (v && typeof v === 'object' && !(v instanceof Array) && v.$bytes) { var b = new Uint8Array(v.$bytes.length); for (var i = 0; i < b.length; i++) b[i] = v.$bytes[i]; return b; }
  if (v instanceof Array) { var a = []; for (var j = 0; j < v.length; j++) a.push(revive(v[j])); return a; }
  if (v && typeof v === 'object') { var o = {}; for (var k in v) if (Object.prototype.hasOwnProperty.call(v, k)) o[k] = revive(v[k]); return o; }
  return v;
}
function canonical(v) {
  if (v instanceof Uint8Array) { var s = []; for (var i = 0; i < v.length; i++) s.push(v[i]); return '{"$bytes":[' + s.join(',') + ']}'; }
  if (v instanceof Array) { var p = []; for (var j = 0; j < v.length; j++) p.push(canonical(v[j])); return '[' + p.join(',') + ']'; }
  if (v !== null && typeof v === 'object') { var keys = []; for (var k in v) if (Object.prototype.hasOwnProperty.call(v, k)) keys.push(k); keys.sort();
    var q = []; for (var m = 0; m < keys.length; m++) q.push(JSON.stringify(keys[m]) + ':' + canonical(v[keys[m]])); return '{' + q.join(',') + '}'; }
  // ASCII only: Duktape hands strings out as CESU-8, which would mangle astral characters on the way to Node.
  return JSON.stringify(v).replace(/[\\u0080-\\uffff]/g, function (ch) { return '\\\\u' + ('0000' + ch.charCodeAt(0).toString(16)).slice(-4); });
}
function hex(b) { var s = ''; for (var i = 0; i < b.length; i++) s += (b[i] < 16 ? '0' : '') + b[i].toString(16); return s; }
function attempt(f) { try { return 'ok:' + f(); } catch (e) { return 'error:' + e.code + ':' + e.message; } }
var results = [];
for (var i = 0; i < CASES.length; i++) {
  var c = CASES[i];
  if (c.op === 'encode') results.push(attempt(function () { return hex(Flotilla.cborEncode(revive(c.wire))); }));
  else if (c.op === 'cbor') results.push(attempt(function () { return canonical(Flotilla.cborDecode(revive(c.bytes))); }));
  else results.push(attempt(function () { return canonical(Flotilla.decodeIn(revive(c.bytes))); }));
}
`;

interface Case {
  op: 'encode' | 'cbor' | 'message';
  name: string;
  wire?: unknown;
  bytes?: unknown;
  /** Exact result, or 'error:<code>:' to accept any message of that code, or 'error:' for any ProtocolError. */
  expect: string;
}

function cases(): Case[] {
  const bytes = (b: number[]) => ({ $bytes: b });
  const out: Case[] = [];
  for (const v of VECTORS) {
    const wire = toWire(v.kind, v.body as never);
    out.push({ op: 'encode', name: 'encode ' + v.name, wire, expect: 'ok:' + hex(v.bytes) });
    out.push({ op: 'cbor', name: 'cbor-decode ' + v.name, bytes: bytes(v.bytes), expect: 'ok:' + canonical(wire) });
    out.push({ op: 'message', name: 'decodeIn ' + v.name, bytes: bytes(v.bytes), expect: INBOUND.has(v.kind) ? 'ok:' + canonical({ kind: v.kind, ...v.body }) : 'error:' });
  }
  for (const v of DECODE_ONLY) out.push({ op: 'cbor', name: 'cbor-decode ' + v.name, bytes: bytes(v.bytes), expect: 'ok:' + canonical(toWire(v.kind, v.body as never)) });
  for (const v of DECODE_ERRORS) {
    if (v.error.code === 'cbor') out.push({ op: 'cbor', name: 'refuse ' + v.name, bytes: bytes(v.bytes), expect: 'error:cbor:' + v.error.message });
    out.push({ op: 'message', name: 'decodeIn refuses ' + v.name, bytes: bytes(v.bytes), expect: 'error:' });
  }
  return out;
}

for (const engine of ENGINES) {
  describe('firmware codec against the vectors (' + engine + ', built bundle)', function () {
    this.timeout(60000);
    it('gives every vector\'s exact bytes, message or error', async () => {
      const list = cases();
      const host = await startEngine(engine, { flash: emptyFlash(1024) });
      try {
        await host.run(agentBundle() + '\nvar CASES = ' + toJson(list.map(({ expect: _e, name: _n, ...c }) => c)) + ';\n' + ENGINE_CHECK);
        const results = JSON.parse(await host.evaluate('JSON.stringify(results)')) as string[];
        assert.equal(results.length, list.length);
        // Compared as values: engines print some doubles with more digits than V8 (QuickJS: 2^-24).
        const same = (a: string, b: string | undefined) =>
          a === b ||
          (b !== undefined && a === 'error:' && b.startsWith('error:') && !b.startsWith('error:undefined')) ||
          (b !== undefined && /^ok:[[{]/.test(a) && /^ok:[[{]/.test(b) && canonical(JSON.parse(a.slice(3))) === canonical(JSON.parse(b.slice(3))));
        const wrong = list.map((c, i) => ({ name: c.name, expect: c.expect, got: results[i] })).filter((r) => !same(r.expect, r.got));
        assert.deepEqual(wrong, []);
      } finally {
        await host.close();
      }
    });
  });
}
