/** Topic builders and the parser: examples, refusals, and fast-check round trips. */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isProtocolError, parseFilter, parseTopic, ProtocolError, topics, kindFitsTopic } from '@flotilla/protocol';

const ID = '0123456789abcdef01234567';

function refuses(topic: string, message: string): void {
  assert.throws(() => parseTopic(topic), (e: unknown) => isProtocolError(e) && e.code === 'topic' && e.message === message);
}

describe('protocol topics', () => {
  it('builds and parses every device and cloud topic', () => {
    assert.equal(topics.device.hello(ID), 'dev/' + ID + '/hello');
    assert.deepEqual(parseTopic(topics.device.hello(ID)), { root: 'dev', deviceId: ID, channel: 'hello' });
    assert.deepEqual(parseTopic(topics.device.event(ID, 'temp/kitchen')), { root: 'dev', deviceId: ID, channel: 'evt', event: 'temp/kitchen' });
    for (const ch of ['vitals', 'error', 'reply', 'ota', 'status'] as const) {
      const p = parseTopic(topics.device[ch](ID));
      assert.equal(p.root, 'dev');
    }
    assert.deepEqual(parseTopic(topics.cloud.request(ID)), { root: 'cloud', deviceId: ID, channel: 'req' });
    assert.deepEqual(parseTopic(topics.cloud.ota(ID)), { root: 'cloud', deviceId: ID, channel: 'ota' });
    assert.deepEqual(parseTopic(topics.cloud.event(ID)), { root: 'cloud', deviceId: ID, channel: 'evt' });
    assert.deepEqual(parseTopic(topics.app.reply('particle-cli_1')), { root: 'app', clientId: 'particle-cli_1', channel: 'reply' });
  });

  it('builds the subscription filters', () => {
    assert.deepEqual(topics.filter.deviceInbox(ID), ['cloud/' + ID + '/req', 'cloud/' + ID + '/ota', 'cloud/' + ID + '/evt']);
    assert.equal(topics.filter.deviceEvents(), 'dev/+/evt/#');
    assert.equal(topics.filter.deviceEvents(ID), 'dev/' + ID + '/evt/#');
    assert.equal(topics.filter.deviceEventsNamed(ID, 'temp'), 'dev/' + ID + '/evt/temp/#');
    assert.equal(topics.filter.allDevices(), 'dev/+/#');
  });

  it('refuses to build a topic from a bad id or name', () => {
    assert.throws(() => topics.device.hello('#'), ProtocolError);
    assert.throws(() => topics.device.hello(ID.toUpperCase()), ProtocolError);
    assert.throws(() => topics.device.event(ID, 'a/+'), ProtocolError);
    assert.throws(() => topics.device.event(ID, ''), ProtocolError);
    assert.throws(() => topics.app.reply('a/b'), ProtocolError);
    assert.throws(() => topics.filter.deviceEventsNamed(ID, '#'), ProtocolError);
  });

  it('refuses anything that is not exactly a protocol topic', () => {
    refuses('', 'topic must not be empty');
    refuses('#', 'unknown topic root "#"');
    refuses('+/#', 'unknown topic root "+"');
    refuses('$SYS/broker/uptime', 'unknown topic root "$SYS"');
    refuses('dev/' + ID, 'topic has no channel');
    refuses('dev/+/hello', 'device id must be 24 lowercase hex characters');
    refuses('dev/#', 'topic has no channel');
    refuses('dev/' + ID.toUpperCase() + '/hello', 'device id must be 24 lowercase hex characters');
    refuses('dev/' + ID + 'a/hello', 'device id must be 24 lowercase hex characters');
    refuses('dev/' + ID + '/hello/', 'unknown device channel "hello/"');
    refuses('dev/' + ID + '/#', 'unknown device channel "#"');
    refuses('dev/' + ID + '/req', 'unknown device channel "req"');
    refuses('cloud/' + ID + '/hello', 'unknown cloud channel "hello"');
    refuses('dev/' + ID + '/evt', 'event topic has no event name');
    refuses('dev/' + ID + '/evt/', 'event name must not be empty');
    refuses('dev/' + ID + '/evt/a//b', 'event name must not have an empty level');
    refuses('dev/' + ID + '/evt/a/', 'event name must not end with "/"');
    refuses('dev/' + ID + '/evt/a/+', 'event name may only contain letters, digits, "_", "-", ".", ":" and "/"');
    refuses('dev/' + ID + '/evt/a\u0000b', 'event name may only contain letters, digits, "_", "-", ".", ":" and "/"');
    refuses('dev/' + ID + '/evt/' + 'x'.repeat(65), 'event name is 65 bytes, over the limit of 64');
    refuses('/dev/' + ID + '/hello', 'unknown topic root ""');
    refuses('Dev/' + ID + '/hello', 'unknown topic root "Dev"');
    refuses('app/a b/reply', 'client id must be 1 to 64 characters of [A-Za-z0-9_-]');
    refuses('app/x/req', 'unknown app channel "req"');
    refuses('x'.repeat(65535), 'topic is longer than 160 characters');
    refuses(Array(101).fill('a').join('/'), 'topic is longer than 160 characters'); // 101 levels never fit
  });

  it('parses the subscription filters apps may use, and refuses every other', () => {
    assert.deepEqual(parseFilter(topics.filter.deviceEvents()), { root: 'dev', deviceId: '+', channel: 'evt', prefix: '' });
    assert.deepEqual(parseFilter(topics.filter.deviceEvents(ID)), { root: 'dev', deviceId: ID, channel: 'evt', prefix: '' });
    assert.deepEqual(parseFilter(topics.filter.deviceEventsNamed(ID, 'temp')), { root: 'dev', deviceId: ID, channel: 'evt', prefix: 'temp/' });
    assert.deepEqual(parseFilter('dev/+/evt/temp/kitchen'), { root: 'dev', deviceId: '+', channel: 'evt', prefix: 'temp/kitchen' });
    assert.deepEqual(parseFilter(topics.app.reply('app-1')), { root: 'app', clientId: 'app-1', channel: 'reply' });
    const refused = (f: string, message: string) =>
      assert.throws(() => parseFilter(f), (e: unknown) => isProtocolError(e) && e.code === 'topic' && e.message === message, f);
    refused('', 'filter must not be empty');
    refused('#', 'only device events and app replies can be subscribed to');
    refused('+/#', 'only device events and app replies can be subscribed to');
    refused('$SYS/#', 'only device events and app replies can be subscribed to');
    refused('dev/+/#', 'only device events and app replies can be subscribed to');
    refused('dev/+/hello', 'only device events and app replies can be subscribed to');
    refused('dev/#/evt/#', 'device id must be 24 lowercase hex characters or +');
    refused('dev/+/evt/+/x', 'event name may only contain letters, digits, "_", "-", ".", ":" and "/"');
    refused('dev/+/evt/a/#/b', 'event name may only contain letters, digits, "_", "-", ".", ":" and "/"');
    refused('dev/+/evt/', 'event name must not be empty');
    refused('cloud/' + ID + '/req', 'only device events and app replies can be subscribed to');
    refused('app/+/reply', 'client id must be 1 to 64 characters of [A-Za-z0-9_-]');
  });

  it('parseFilter throws nothing but ProtocolError (fast-check)', () => {
    const parts = fc.constantFrom('dev', 'app', 'cloud', 'evt', 'reply', '+', '#', '$SYS', '', 'a', ID, '/', '\u0000');
    fc.assert(
      fc.property(fc.oneof(fc.array(parts, { maxLength: 10 }).map((p) => p.join('/')), fc.string({ maxLength: 60 })), (f) => {
        try {
          parseFilter(f);
          return true;
        } catch (e) {
          return isProtocolError(e);
        }
      }),
      { numRuns: 10000 },
    );
  });

  it('pairs each kind with the topics it may travel on', () => {
    assert.ok(kindFitsTopic('hello', 'dev', 'hello'));
    assert.ok(kindFitsTopic('otaChunk', 'cloud', 'ota'));
    assert.ok(kindFitsTopic('otaStatus', 'dev', 'ota'));
    assert.ok(!kindFitsTopic('otaChunk', 'dev', 'ota'));
    assert.ok(!kindFitsTopic('request', 'dev', 'req'));
    assert.ok(kindFitsTopic('reply', 'app', 'reply'));
    assert.ok(!kindFitsTopic('hello', 'app', 'reply'));
  });

  describe('properties (fast-check)', () => {
    const deviceId = fc.stringMatching(/^[0-9a-f]{24}$/);
    const level = fc.stringMatching(/^[A-Za-z0-9_.:-]{1,12}$/);
    const eventName = fc.array(level, { minLength: 1, maxLength: 5 }).map((l) => l.join('/')).filter((n) => n.length <= 64);

    it('parse(build(id, name)) gives back id and name', () => {
      fc.assert(
        fc.property(deviceId, eventName, (id, name) => {
          const p = parseTopic(topics.device.event(id, name));
          return p.root === 'dev' && p.deviceId === id && p.channel === 'evt' && p.event === name;
        }),
        { numRuns: 10000 },
      );
    });

    it('every fixed channel round-trips', () => {
      const builders = [topics.device.hello, topics.device.vitals, topics.device.error, topics.device.reply, topics.device.ota, topics.device.status, topics.cloud.request, topics.cloud.ota, topics.cloud.event];
      fc.assert(
        fc.property(deviceId, fc.constantFrom(...builders), (id, build) => {
          const t = build(id);
          const p = parseTopic(t);
          return 'deviceId' in p && p.deviceId === id && t === p.root + '/' + p.deviceId + '/' + p.channel;
        }),
        { numRuns: 10000 },
      );
    });

    it('any string either parses to a topic that rebuilds to itself, or is refused with a ProtocolError', () => {
      const alphabet = fc.constantFrom('dev', 'cloud', 'app', 'evt', 'hello', 'req', 'ota', '/', '+', '#', '$', '\u0000', 'a', '0123456789abcdef01234567', '0123456789ABCDEF01234567', '', 'é');
      const topic = fc.array(alphabet, { maxLength: 12 }).map((p) => p.join(''));
      fc.assert(
        fc.property(fc.oneof(topic, fc.string({ maxLength: 80 })), (t) => {
          let p;
          try {
            p = parseTopic(t);
          } catch (e) {
            return isProtocolError(e) && e.code === 'topic';
          }
          const rebuilt =
            p.root === 'app' ? topics.app.reply(p.clientId)
            : p.root === 'dev' && p.channel === 'evt' ? topics.device.event(p.deviceId, p.event)
            : p.root + '/' + p.deviceId + '/' + p.channel;
          return rebuilt === t && !/[+#$\u0000]/.test(t);
        }),
        { numRuns: 10000 },
      );
    });
  });
});
