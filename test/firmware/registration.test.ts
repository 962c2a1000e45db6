/**
 * Registering past a limit, a bad name or type, and publishing what cannot be
 * sent fail at once, with a message that says what to do. The built bundle in
 * a node:vm realm, not connected.
 */
import assert from 'node:assert/strict';
import vm from 'node:vm';
import { createNodeHal, emptyFlash, MemoryFlash, type NodeHal } from '@flotilla/simulator';
import type { Cloud } from '@flotilla/firmware';
import { agentBundle } from '../helpers/images.js';

describe('agent registration and publish errors', () => {
  let hal: NodeHal;
  let cloud: Cloud;

  beforeEach(() => {
    hal = createNodeHal({ host: '127.0.0.1', port: 9, flash: new MemoryFlash(emptyFlash(1024)) });
    const ctx = vm.createContext({ hal });
    vm.runInContext(agentBundle() + "\nvar cloud = Flotilla.create(hal, { deviceId: 'aaaaaaaaaaaaaaaaaaaaaaaa', secret: 's', product: 1, firmware: 1, autoConnect: false });", ctx);
    cloud = ctx.cloud as Cloud;
  });
  afterEach(() => hal.dispose());

  const fails = (fn: () => unknown, message: string) => assert.throws(fn, (e: unknown) => (e as Error).message === message);

  it('refuses bad variable names, types and values', () => {
    fails(() => cloud.variable('', 1), 'cloud.variable(""): the name must not be empty');
    fails(() => cloud.variable('a/b', 1), 'cloud.variable("a/b"): the name may only contain letters, digits, "_", "-" and "."');
    fails(() => cloud.variable('x'.repeat(65), 1), 'cloud.variable("' + 'x'.repeat(65) + '"): the name is 65 bytes, over the limit of 64');
    fails(() => cloud.variable('v', {} as never), 'cloud.variable("v"): give the type as the third argument: "bool", "int32", "double" or "string"');
    fails(() => cloud.variable('v', () => 1, 'float' as never), 'cloud.variable("v"): give the type as the third argument: "bool", "int32", "double" or "string"');
    fails(() => cloud.variable('v', 'text', 'int32'), 'cloud.variable("v"): the value is not of type int32');
    fails(() => cloud.variable('v', 'é'.repeat(513)), 'cloud.variable("v"): the value is over 1024 bytes');
    cloud.variable('ok', 1.5);
    cloud.variable('ok', 2); // re-registering replaces
    // A type named as one of Object's own properties is no type (before, accepted: a crash at every connect, or a hello the cloud refused).
    for (const t of ['constructor', 'toString', '__proto__', 'hasOwnProperty'])
      fails(() => cloud.variable('v', () => 1, t as never), 'cloud.variable("v"): give the type as the third argument: "bool", "int32", "double" or "string"');
    // "." and ".." are no HTTP path segments: such a variable could never be read.
    fails(() => cloud.variable('..', 1), 'cloud.variable(".."): the name must not be "." or ".." (it is a segment of an HTTP path)');
    fails(() => cloud.fn('.', () => 1), 'cloud.fn("."): the name must not be "." or ".." (it is a segment of an HTTP path)');
    cloud.variable('a.b', 1);
    cloud.variable('...', 1);
  });

  it('refuses text with a lone UTF-16 surrogate (half an emoji) at once, naming the call (before: a read that timed out, a RangeError from publish)', () => {
    const half = 'temp \ud83c';
    fails(() => cloud.variable('v', half), 'cloud.variable("v"): the value has a lone UTF-16 surrogate (half a character)');
    fails(() => cloud.publish('t', half), 'cloud.publish("t"): data has a lone UTF-16 surrogate (half a character)');
    fails(() => cloud.publish('t', '\udc00 and more'), 'cloud.publish("t"): data has a lone UTF-16 surrogate (half a character)');
    fails(() => cloud.setClaimCode(half), 'setClaimCode: the code has a lone UTF-16 surrogate (half a character)');
    cloud.variable('v', 'temp \ud83c\udf21'); // a whole pair is text
    // The refused publishes spent no rate-limit token: the burst of 4 is still there.
    assert.deepEqual([1, 2, 3, 4].map(() => cloud.publish('t', 'x')), [true, true, true, true]);
  });

  it('says what to do past the 20 variables, 15 functions and 4 subscriptions', () => {
    for (let i = 0; i < 20; i++) cloud.variable('v' + i, i);
    fails(() => cloud.variable('v20', 1), 'cloud.variable("v20"): at most 20 variables; combine several into one string');
    for (let i = 0; i < 15; i++) cloud.fn('f' + i, () => 1);
    fails(() => cloud.fn('f15', () => 1), 'cloud.fn("f15"): at most 15 functions; dispatch several commands on one argument');
    for (let i = 0; i < 4; i++) cloud.subscribe('s' + i, () => {});
    fails(() => cloud.subscribe('s4', () => {}), 'cloud.subscribe("s4"): at most 4 subscriptions; use a shorter common prefix');
  });

  it('refuses handlers that are not functions and bad subscription prefixes', () => {
    fails(() => cloud.fn('f', 1 as never), 'cloud.fn("f"): the handler must be a function');
    fails(() => cloud.subscribe('a//b', () => {}), 'cloud.subscribe("a//b"): the name must not have an empty level');
    fails(() => cloud.subscribe('a/#', () => {}), 'cloud.subscribe("a/#"): the name may only contain letters, digits, "_", "-", ".", ":" and "/"');
    cloud.subscribe('alerts/', () => {}); // a prefix may end with '/'
    fails(() => cloud.every(10, 'x' as never), 'cloud.every: the callback must be a function');
  });

  it('refuses events it must not send', () => {
    fails(() => cloud.publish('spark/status', 'x'), 'cloud.publish("spark/status"): the name starts with the reserved prefix "spark"');
    fails(() => cloud.publish('a/', 'x'), 'cloud.publish("a/"): the name must not end with "/"');
    fails(() => cloud.publish('t', 'x'.repeat(1025)), 'cloud.publish("t"): data is over 1024 bytes');
    fails(() => cloud.publish('t', 42 as never), 'cloud.publish("t"): data must be a string, a Uint8Array or null; convert numbers with String(x)');
    fails(() => cloud.publish('t', 'x', { ttl: -1 }), 'cloud.publish("t"): ttl must be a whole number of seconds up to 16777215');
  });

  it('refuses a claim code that is empty, not text or over 63 bytes', () => {
    fails(() => cloud.setClaimCode(''), 'setClaimCode: a code of 1..63 bytes');
    fails(() => cloud.setClaimCode(5 as never), 'setClaimCode: a code of 1..63 bytes');
    fails(() => cloud.setClaimCode('x'.repeat(64)), 'setClaimCode: a code of 1..63 bytes');
    cloud.setClaimCode('x'.repeat(63)); // kept until connected
  });

  it('rate-limits publishing at 1 per second with bursts of 4, and says so', () => {
    const results: (string | null)[] = [];
    const accepted = [1, 2, 3, 4, 5].map(() => cloud.publish('t', 'x', {}, (err) => results.push(err ? err.message : null)));
    assert.deepEqual(accepted, [true, true, true, true, false]);
    assert.deepEqual(results, ['rate limited: 1 event per second, bursts of 4']);
    // A done callback that throws is the app's error, reported as any other: publish returns, the agent goes on (before, it threw out of publish).
    assert.equal(cloud.publish('t', 'x', {}, () => { throw new Error('oops in done'); }), false);
  });
});
