/**
 * A guard in front of aedes.handle. aedes has no maximum packet size: its
 * parser buffers whatever remaining length a client claims (up to 268 MB),
 * even before CONNECT. The guard follows MQTT frame boundaries on the raw
 * bytes and destroys the link, before anything is buffered, when a frame
 * claims more than `maxPacket`, uses a fifth length byte, or when the first
 * packet is not a CONNECT ([MQTT-3.1.0-1]). A CONNECT naming a protocol
 * level no parser here reads (mqtt-packet reads 3, 4 and 5) is answered
 * CONNACK 0x01 before the link ends ([MQTT-3.1.2-2]): mqtt-packet would throw
 * on it and the client would see the link drop with no reason.
 */
import type { Duplex } from 'node:stream';

export type GuardVerdict = 'ok' | 'too-large' | 'bad-length' | 'not-connect' | 'bad-level';

/** CONNACK, return code 0x01: unacceptable protocol level. */
export const CONNACK_BAD_LEVEL: Uint8Array = Uint8Array.of(0x20, 0x02, 0x00, 0x01);
/** The protocol levels mqtt-packet parses (3.1, 3.1.1, 5); aedes itself answers 5 with 0x01. */
const LEVELS = [3, 4, 5];
/** Protocol name, as its length prefix and bytes, and the level byte: at most 2 + 6 + 1 bytes of CONNECT's body. */
const HEAD = 9;

/** Frame-boundary state across chunks: pure, so it is tested on its own. */
export interface FrameState {
  /** Bytes of the current frame's body still to skip. */
  skip: number;
  /** Bytes of the current header seen (0: at a frame start). */
  headerBytes: number;
  /** Remaining length being read, and its multiplier. */
  length: number;
  multiplier: number;
  /** Frames completed so far (the first must be CONNECT). */
  frames: number;
  /** The first bytes of CONNECT's body, up to HEAD, until its protocol level is read. */
  head: number[];
}

export function frameState(): FrameState {
  return { skip: 0, headerBytes: 0, length: 0, multiplier: 1, frames: 0, head: [] };
}

/** Advances `s` over `chunk`; the first problem found, or 'ok'. */
export function scanFrames(s: FrameState, chunk: Uint8Array, maxPacket: number): GuardVerdict {
  let i = 0;
  while (i < chunk.length) {
    if (s.skip > 0) {
      const n = Math.min(s.skip, chunk.length - i);
      if (s.frames === 0 && s.head.length < HEAD && levelRefused(s.head, chunk.subarray(i, i + n))) return 'bad-level';
      s.skip -= n;
      i += n;
      if (s.skip === 0) s.frames++;
      continue;
    }
    const b = chunk[i++];
    if (s.headerBytes === 0) {
      if (s.frames === 0 && b >> 4 !== 1) return 'not-connect';
      s.headerBytes = 1;
      s.length = 0;
      s.multiplier = 1;
      continue;
    }
    // Remaining length: up to 4 bytes of 7 bits, least significant first.
    s.length += (b & 127) * s.multiplier;
    s.headerBytes++;
    if (b & 128) {
      s.multiplier *= 128;
      if (s.headerBytes > 4) return 'bad-length';
      continue;
    }
    if (s.length > maxPacket) return 'too-large';
    s.headerBytes = 0;
    s.skip = s.length;
    if (s.skip === 0) s.frames++;
  }
  return 'ok';
}

/**
 * Adds `bytes` of CONNECT's body to `head`; true once the head names MQTT or
 * MQIsdp with a level outside LEVELS. Any other name is left to the parser,
 * which refuses it (the server may then just close, [MQTT-3.1.2-1]).
 */
function levelRefused(head: number[], bytes: Uint8Array): boolean {
  for (let k = 0; k < bytes.length && head.length < HEAD; k++) head.push(bytes[k]);
  if (head.length < 2) return false;
  const nameLength = (head[0] << 8) | head[1];
  if (head.length < 2 + nameLength + 1) return false;
  const name = String.fromCharCode(...head.slice(2, 2 + nameLength));
  // The high bit marks a bridge connection (mosquitto's convention, which mqtt-packet reads too).
  return (name === 'MQTT' || name === 'MQIsdp') && !LEVELS.includes(head[2 + nameLength] & 0x7f);
}

/**
 * Puts the guard on a connection, in place: every chunk the connection pushes
 * to its readers (a TCP or TLS socket's reads, a WebSocket stream's messages)
 * is checked first, and the connection is destroyed on a refusal before aedes
 * reads a byte of it. In place rather than as a stream in front: a wrapper
 * stream doubled the work per packet (measured: a quarter of broker time at
 * QoS 1, where every message is four packets).
 */
export function guardConnection(conn: Duplex, maxPacket: number, onRefused: (verdict: GuardVerdict) => void): void {
  const state = frameState();
  const push = conn.push;
  conn.push = function guardedPush(this: Duplex, chunk: unknown, encoding?: BufferEncoding): boolean {
    if (chunk instanceof Uint8Array) {
      const verdict = scanFrames(state, chunk, maxPacket);
      if (verdict !== 'ok') {
        conn.push = push; // nothing more to check: the connection ends here
        onRefused(verdict);
        // The refusal is said when the protocol has a way to say it; the link ends once it is written.
        // (A WebSocket stream's end waits for the close handshake: a peer that never answers is cut after a second.)
        if (verdict === 'bad-level') {
          conn.end(CONNACK_BAD_LEVEL, () => conn.destroy());
          setTimeout(() => conn.destroy(), 1000).unref();
        } else conn.destroy();
        return false;
      }
    }
    return push.call(this, chunk, encoding);
  };
}

/**
 * Bounds what a connection holds unsent. aedes waits for a full socket to drain
 * before it takes the next message for anyone (mqemitter runs a hundred
 * deliveries at once, then queues), so one client that stops reading stalled
 * every delivery on the broker, requests to devices included, until its
 * drainTimeout (60 s). Here a write never reports back-pressure to aedes;
 * instead a connection whose unsent bytes pass `maxBuffered` (above what the
 * kernel's buffers already hold) is cut: a slow reader loses its own session.
 */
export function boundOutbound(conn: Duplex, maxBuffered: number, onCut: () => void): void {
  const write = conn.write;
  conn.write = function boundedWrite(this: Duplex, ...args: unknown[]): boolean {
    (write as (...a: unknown[]) => boolean).apply(this, args);
    if (this.writableLength > maxBuffered && !this.destroyed) {
      onCut();
      this.destroy();
    }
    return true;
  } as Duplex['write'];
}
