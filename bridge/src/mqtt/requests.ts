/**
 * Requests to devices and their replies. Every request gets a bridge-wide id
 * on its way to the device (requesters choose their own ids, which would
 * collide); the device's reply is matched back to exactly one requester: an
 * MQTT app (republished to app/<clientId>/reply with its own id) or a caller
 * inside the bridge (the HTTP API), whose promise it settles.
 */
import { encode, topics } from '@flotilla/protocol';
import type { Messages } from '@flotilla/protocol';

type Request = Messages['request'];
type Reply = Messages['reply'];
type RequestBody = Request extends infer R ? (R extends unknown ? Omit<R, 'id'> : never) : never;

interface Pending {
  deviceId: string;
  /** What was asked (a variable read and a function call are data operations once answered). */
  op: Request['op'];
  /** An MQTT app's client id, the session that asked (dropSession), and its own request id; or a caller's resolve. */
  clientId?: string;
  session?: object;
  originalId?: number;
  resolve?: (r: Reply) => void;
  reject?: (e: Error) => void;
  timer: NodeJS.Timeout;
  /** When it went to the device (performance.now()): its answer times the round trip. */
  sentAt: number;
}

/** A reply matched to its request: what was asked, and how long the device took to answer (ms). */
export interface Answered {
  op: Request['op'];
  ms: number;
}

export class RequestTimeout extends Error {
  constructor(readonly deviceId: string) {
    super('the device did not answer in time');
  }
}

export class RequestRouter {
  private readonly pending = new Map<number, Pending>();
  private seq = 0;

  constructor(
    private readonly publish: (topic: string, payload: Uint8Array, qos: 0 | 1) => void,
    /** How long an MQTT app's request waits for its reply before it is forgotten. */
    private readonly appTimeoutMs = 60000,
  ) {}

  private nextId(): number {
    // uint32, skipping ids still waiting.
    do this.seq = (this.seq + 1) % 0x100000000;
    while (this.pending.has(this.seq) || this.seq === 0);
    return this.seq;
  }

  /** An MQTT app's request, authorized: the payload to forward, carrying the bridge's id. `session`: the one that asked. */
  forward(clientId: string, session: object, deviceId: string, req: Request): Uint8Array {
    const id = this.nextId();
    const timer = setTimeout(() => this.pending.delete(id), this.appTimeoutMs);
    timer.unref();
    this.pending.set(id, { deviceId, op: req.op, clientId, session, originalId: req.id, timer, sentAt: performance.now() });
    return encode('request', { ...req, id });
  }

  /**
   * An app's session ended: its requests' replies are dropped. Its reply topic names only a client id,
   * which the next session to take it (anyone's) would subscribe to; apps have clean sessions, so no
   * reply was owed to a later one.
   */
  dropSession(session: object): void {
    for (const [id, p] of this.pending) {
      if (p.session !== session) continue;
      clearTimeout(p.timer);
      this.pending.delete(id);
    }
  }

  /** The bridge's own request: resolves with the device's reply, rejects with RequestTimeout. */
  ask(deviceId: string, body: RequestBody, timeoutMs: number): Promise<Reply> {
    const id = this.nextId();
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new RequestTimeout(deviceId));
      }, timeoutMs);
      this.pending.set(id, { deviceId, op: body.op, resolve, reject, timer, sentAt: performance.now() });
      this.publish(topics.cloud.request(deviceId), encode('request', { ...body, id } as Request), 1);
    });
  }

  /** A device's reply: to its requester, if it is still waiting (answers what it answered and when); otherwise dropped (null). */
  reply(deviceId: string, reply: Reply): Answered | null {
    const p = this.pending.get(reply.id);
    // A reply naming another device's request is refused: devices cannot answer for each other.
    if (!p || p.deviceId !== deviceId) return null;
    this.pending.delete(reply.id);
    clearTimeout(p.timer);
    if (p.resolve) p.resolve(reply);
    else this.publish(topics.app.reply(p.clientId as string), encode('reply', { ...reply, id: p.originalId as number }), 1);
    return { op: p.op, ms: Math.round(performance.now() - p.sentAt) };
  }

  /** Requests still waiting (for tests and metrics). */
  get size(): number {
    return this.pending.size;
  }

  close(): void {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject?.(new Error('bridge closing'));
    }
    this.pending.clear();
  }
}
