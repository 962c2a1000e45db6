/**
 * A guard in front of aedes.handle. aedes has no maximum packet size: its
 * parser buffers whatever remaining length a client claims (up to 268 MB),
 * even before CONNECT. The guard follows MQTT frame boundaries on the raw
 * bytes and destroys the link, before anything is buffered, when a frame
 * claims more than `maxPacket`, uses a fifth length byte, or when the first
 * packet is not a CONNECT ([MQTT-3.1.0-1]).
 */
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';

export type GuardVerdict = 'ok' | 'too-large' | 'bad-length' | 'not-connect';

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
}

export function frameState(): FrameState {
  return { skip: 0, headerBytes: 0, length: 0, multiplier: 1, frames: 0 };
}

/** Advances `s` over `chunk`; the first problem found, or 'ok'. */
export function scanFrames(s: FrameState, chunk: Uint8Array, maxPacket: number): GuardVerdict {
  let i = 0;
  while (i < chunk.length) {
    if (s.skip > 0) {
      const n = Math.min(s.skip, chunk.length - i);
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
 * The socket as aedes sees it: reads pass through the guard, writes go to the
 * socket. `socket` stays reachable for TLS peer certificates and addresses.
 */
export class GuardedConnection extends Duplex {
  private readonly state = frameState();

  constructor(
    readonly socket: Socket,
    maxPacket: number,
    onRefused: (verdict: GuardVerdict) => void,
  ) {
    super({ allowHalfOpen: false });
    socket.on('data', (chunk: Buffer) => {
      const verdict = scanFrames(this.state, chunk, maxPacket);
      if (verdict !== 'ok') {
        onRefused(verdict);
        socket.destroy();
        return;
      }
      if (!this.push(chunk)) socket.pause();
    });
    socket.on('end', () => this.push(null));
    socket.on('close', () => this.destroy());
    socket.on('error', (err) => this.destroy(err));
  }

  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    this.socket.write(chunk, done);
  }

  /**
   * aedes writes a packet as several small chunks; one socket write each would
   * cost a system call each (measured: a third of the broker's time). Corked,
   * they leave together.
   */
  override _writev(chunks: Array<{ chunk: Buffer }>, done: (err?: Error | null) => void): void {
    this.socket.cork();
    for (let i = 0; i < chunks.length - 1; i++) this.socket.write(chunks[i].chunk);
    this.socket.write(chunks[chunks.length - 1].chunk, done);
    process.nextTick(() => this.socket.uncork());
  }

  override _final(done: (err?: Error | null) => void): void {
    this.socket.end(done);
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.socket.destroy();
    done(err);
  }
}
