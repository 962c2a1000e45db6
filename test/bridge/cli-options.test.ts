/** The bridge's flags and environment variables (bridge/src/cli.ts): what they set, and a clear error for what they cannot. */
import assert from 'node:assert/strict';
import { bridgeOptions, CliError, listening, urlHost } from '../../bridge/src/cli.js';

describe('bridge command line', () => {
  it('--webhook-allow (FLOTILLA_WEBHOOK_ALLOW): comma-separated ranges webhooks may target', () => {
    assert.deepEqual(bridgeOptions({ 'webhook-allow': '10.0.0.0/8, ::1,' }, {}).webhooks?.allowTargets, ['10.0.0.0/8', '::1']);
    assert.deepEqual(bridgeOptions({}, { FLOTILLA_WEBHOOK_ALLOW: '192.168.1.0/24' }).webhooks?.allowTargets, ['192.168.1.0/24']);
    assert.equal(bridgeOptions({}, {}).webhooks, undefined);
    assert.throws(() => bridgeOptions({ 'webhook-allow': '10.0.0.0/' }, {}), (e) =>
      e instanceof CliError && e.message === '--webhook-allow (FLOTILLA_WEBHOOK_ALLOW): "10.0.0.0/" is not an address or a range like 10.0.0.0/8');
  });

  it('--log-level (FLOTILLA_LOG_LEVEL): one of pino\'s levels, or a one-line error instead of pino\'s stack trace', () => {
    assert.equal(bridgeOptions({ 'log-level': 'debug' }, {}).logLevel, 'debug');
    assert.equal(bridgeOptions({}, { FLOTILLA_LOG_LEVEL: 'silent' }).logLevel, 'silent');
    assert.throws(() => bridgeOptions({ 'log-level': 'verbose' }, {}), (e) =>
      e instanceof CliError && e.message === '--log-level (FLOTILLA_LOG_LEVEL) must be one of trace, debug, info, warn, error, fatal, silent, not "verbose"');
  });

  it("--owner-password (FLOTILLA_OWNER_PASSWORD): every password's 8 characters at least (the owner could not set a shorter one again)", () => {
    assert.equal(bridgeOptions({ 'owner-password': 'long-enough' }, {}).ownerPassword, 'long-enough');
    for (const [flags, env] of [[{ 'owner-password': 'abc' }, {}], [{}, { FLOTILLA_OWNER_PASSWORD: '1234567' }]] as const)
      assert.throws(() => bridgeOptions(flags, env), (e) => e instanceof CliError && e.message === '--owner-password (FLOTILLA_OWNER_PASSWORD) must be at least 8 characters');
  });

  it('--mqtts-port=-1 and off turn MQTTS off', () => {
    assert.equal(bridgeOptions({ 'mqtts-port': '-1' }, {}).mqttsPort, null);
    assert.equal(bridgeOptions({}, { FLOTILLA_MQTTS_PORT: 'off' }).mqttsPort, null);
  });

  it('a port is decimal digits: an empty value (an unset variable in FLOTILLA_MQTT_PORT=${PORT}) is refused, not read as 0, a random port', () => {
    assert.equal(bridgeOptions({ 'mqtt-port': '0' }, {}).mqttPort, 0);
    assert.equal(bridgeOptions({}, { FLOTILLA_HTTP_PORT: '8081' }).httpPort, 8081);
    for (const [flags, env, message] of [
      [{}, { FLOTILLA_MQTT_PORT: '' }, 'the MQTT port must be a port number (0 to 65535), not ""'],
      [{ 'http-port': '' }, {}, 'the HTTP port must be a port number (0 to 65535) or off, not ""'],
      [{ 'mqtt-port': ' ' }, {}, 'the MQTT port must be a port number (0 to 65535), not " "'],
      [{ 'mqtt-port': '1e4' }, {}, 'the MQTT port must be a port number (0 to 65535), not "1e4"'],
      [{ 'mqtt-port': '0x4000' }, {}, 'the MQTT port must be a port number (0 to 65535), not "0x4000"'],
      [{ 'mqtt-port': '65536' }, {}, 'the MQTT port must be a port number (0 to 65535), not "65536"'],
    ] as const) {
      assert.throws(() => bridgeOptions(flags as never, env), (e: unknown) => e instanceof CliError && e.message === message, message);
    }
  });

  it('writes the addresses it prints as URLs can hold them: an IPv6 host in brackets, a wildcard as the loopback', () => {
    assert.deepEqual(['::1', '0.0.0.0', '::', '10.0.0.5', 'fe80::1'].map(urlHost), ['[::1]', '127.0.0.1', '127.0.0.1', '10.0.0.5', '[fe80::1]']);
    // Before: http://::1:8080/v1, which no client parses.
    const lines = listening({ ports: { http: 8080, mqtt: 1883, mqtts: 8883, ws: null, wss: null } }, '::1');
    assert.deepEqual(lines, ['HTTP API  http://[::1]:8080/v1   (routes: /v1/openapi.json)', 'MQTT      mqtt://[::1]:1883   mqtts://[::1]:8883']);
    for (const l of lines) for (const u of l.match(/\w+:\/\/\S+/g)!) assert.doesNotThrow(() => new URL(u), u);
  });
});
