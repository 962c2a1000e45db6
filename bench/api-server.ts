/**
 * The server under test for bench/api.ts, in a process of its own (pinned to
 * another CPU than the load generator). Started by bench/api.ts with an IPC
 * channel; not meant to be run by hand.
 *
 *   api-server.ts bare                                     bare aedes 1.2 on a NODELAY net server (the anchor)
 *   api-server.ts floor                                    node:http answering the bridge's two routes at once
 *                                                          with the same JSON, no device and no work behind them
 *                                                          (what HTTP alone costs on this core)
 *   api-server.ts bridge <dataDir> <devices> <callTimeoutMs> [--keep-rate-limit]
 *                                                          createBridge (MQTT + HTTP API) on an empty data dir,
 *                                                          then a user, a product, the devices with their
 *                                                          secrets and a bearer token of the user; the
 *                                                          per-token request limit lifted unless kept
 *
 * Answers the parent's requests: CPU time used, and (bridge) how many
 * benchmark devices the store sees online with their function and variable.
 */
import { createServer } from 'node:http';
import { benchDeviceId } from './broker-common.js';
import { CALL_RETURN, FUNCTION, VAR_VALUE, VARIABLE, type ServerReply, type ServerRequest } from './api-common.js';
import { listenBareAedes, PLAIN_MQTT_ONLY, provisionBench, runMode, send as sendAny, serve as serveAny } from './server-harness.js';

const send: (r: ServerReply) => void = sendAny;

/** How many benchmark devices are ready; CPU time and exit as every server. */
function serve(devicesReady: (n: number) => Promise<{ ready: number; online: number }>): void {
  serveAny<ServerRequest, ServerReply>(async (m) => ({ id: m.id, op: 'devicesReady', ...(await devicesReady(m.n)) }));
}

async function bare(): Promise<void> {
  const t0 = performance.now();
  const mqttPort = await listenBareAedes();
  serve(async () => ({ ready: 0, online: 0 }));
  send({ op: 'ready', mqttPort, httpPort: null, token: null, startupMs: performance.now() - t0, provisionMs: 0, requestLimit: null });
}

async function floor(): Promise<void> {
  const t0 = performance.now();
  const at = new Date().toISOString();
  // The shapes the bridge answers with (Particle's), so the bytes written are alike.
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const [, , , id, name] = (req.url ?? '').split('/');
      const body = req.method === 'POST'
        ? { id, name, connected: true, return_value: CALL_RETURN }
        : { cmd: 'VarReturn', name, result: VAR_VALUE, coreInfo: { last_app: '', last_heard: at, connected: true, last_handshake_at: at, deviceID: id, product_id: 1000 } };
      const text = JSON.stringify(body);
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    });
  });
  server.on('connection', (sock) => sock.setNoDelay(true));
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  serve(async () => ({ ready: 0, online: 0 }));
  send({ op: 'ready', mqttPort: 0, httpPort: (server.address() as { port: number }).port, token: 'floor', startupMs: performance.now() - t0, provisionMs: 0, requestLimit: null });
}

async function bridge(dataDir: string, n: number, callTimeoutMs: number, keepRateLimit: boolean): Promise<void> {
  const t0 = performance.now();
  // Imported here, not at the top: the bare broker's process loads none of the bridge.
  const { createBridge, defaultOptions } = await import('@flotilla/bridge');
  // Particle's limit (10,000 requests per 5 minutes per token) would answer 429 after the first
  // 10,000 calls of the bench's one token: lifted through the bridge's option; the limiter still counts every request.
  const defaults = defaultOptions.rateLimits;
  const rateLimits = keepRateLimit ? defaults : { ...defaults, requests: { ...defaults.requests, limit: 1e9 } };
  const b = await createBridge({
    dataDir, host: '127.0.0.1', ...PLAIN_MQTT_ONLY, httpPort: 0, mqttPort: 0,
    logLevel: 'silent', ownerPassword: 'bench-owner-password', callTimeoutMs, rateLimits,
  });
  const startupMs = performance.now() - t0;
  const s = b.store;
  const t1 = performance.now();
  // scrypt runs on libuv's pool: a few at a time keep it busy.
  const { token } = await provisionBench(s, n, 4, 3600);
  const provisionMs = performance.now() - t1;
  serve(async (count) => {
    let ready = 0;
    let online = 0;
    for (let i = 0; i < count; i++) {
      const d = await s.getDevice(benchDeviceId(i));
      if (!d?.online) continue;
      online++;
      if (d.functions.includes(FUNCTION) && VARIABLE in d.variables) ready++;
    }
    return { ready, online };
  });
  send({ op: 'ready', mqttPort: b.ports.mqtt, httpPort: b.ports.http, token, startupMs, provisionMs, requestLimit: { ...defaults.requests, lifted: !keepRateLimit } });
}

runMode({
  bare: () => bare(),
  floor: () => floor(),
  bridge: (dir, n, timeout, keep) => bridge(dir, Number(n), Number(timeout), keep === '--keep-rate-limit'),
});
