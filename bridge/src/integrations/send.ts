/**
 * Sends a webhook's request and reads its answer. node:http(s) rather than
 * fetch: an integration may accept a self-signed certificate
 * (rejectUnauthorized false), and an answer is read no further than what
 * can be used. Connections are kept alive per kind of certificate check.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { WebhookRequest } from './request.js';
import { TargetRefused, type TargetPolicy } from './targets.js';

export interface SenderOptions {
  /** The whole exchange's time limit: connect, send, read. */
  timeoutMs: number;
  /** Bytes of an answer read at most; the connection is closed past them. */
  readMax: number;
  /** Which addresses a request may connect to. */
  targets: TargetPolicy;
}

export interface Sender {
  /** The status and the answer (at most readMax bytes of it); rejects with why there is none. */
  send(req: WebhookRequest): Promise<{ status: number; body: string }>;
  /** Closes kept connections; requests under way fail. */
  close(): void;
}

export function createSender(o: SenderOptions): Sender {
  const agents = { http: new HttpAgent({ keepAlive: true }), https: new HttpsAgent({ keepAlive: true }), httpsUnchecked: new HttpsAgent({ keepAlive: true, rejectUnauthorized: false }) };
  return {
    send(req) {
      return new Promise((resolve, reject) => {
        const url = new URL(req.url);
        // A literal address is not looked up: checked here; a name is checked as it resolves.
        const why = o.targets.hostRefusal(url.hostname);
        if (why) return reject(new TargetRefused(why));
        const https = url.protocol === 'https:';
        const body = req.body === undefined ? undefined : Buffer.from(req.body);
        const headers = body === undefined ? req.headers : { ...req.headers, 'content-length': String(body.length) };
        const agent = !https ? agents.http : req.rejectUnauthorized ? agents.https : agents.httpsUnchecked;
        const r = (https ? httpsRequest : httpRequest)(url, { method: req.method, headers, agent, lookup: o.targets.lookup });
        const timer = setTimeout(() => r.destroy(new Error('timed out after ' + o.timeoutMs + ' ms')), o.timeoutMs);
        const fail = (e: Error) => {
          clearTimeout(timer);
          reject(e);
        };
        r.on('error', fail);
        r.on('response', (res: IncomingMessage) => {
          const chunks: Buffer[] = [];
          let size = 0;
          const done = () => {
            clearTimeout(timer);
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
          };
          res.on('data', (c: Buffer) => {
            if (size >= o.readMax) return;
            chunks.push(c.subarray(0, o.readMax - size));
            size += c.length;
            // Enough: the connection goes, the rest is not read.
            if (size >= o.readMax) {
              done();
              res.destroy();
            }
          });
          res.on('end', done);
          res.on('error', fail);
        });
        r.end(body);
      });
    },
    close() {
      for (const a of Object.values(agents)) a.destroy();
    },
  };
}
