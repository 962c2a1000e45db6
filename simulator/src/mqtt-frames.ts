/**
 * MQTT 3.1.1 frames out of a byte stream cut anywhere: each packet's type,
 * flags and body range, without copying the body. The simulator's wire
 * watcher and the benchmarks' raw-socket load generators share it.
 */
export class Frames {
  private rest: Buffer | null = null;

  constructor(private readonly on: (type: number, flags: number, buf: Buffer, start: number, end: number) => void) {}

  push(chunk: Uint8Array): void {
    const head = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const buf = this.rest ? Buffer.concat([this.rest, head]) : head;
    this.rest = null;
    let i = 0;
    while (i < buf.length) {
      // Remaining length: up to four bytes of 7 bits, least significant first.
      let len = 0;
      let mul = 1;
      let j = i + 1;
      let complete = false;
      while (j < buf.length && j <= i + 4) {
        const b = buf[j++];
        len += (b & 127) * mul;
        mul *= 128;
        if (!(b & 128)) {
          complete = true;
          break;
        }
      }
      // A fifth length byte is malformed: the peer will cut the link; nothing more to read on it.
      if (!complete && j > i + 4) return;
      if (!complete || j + len > buf.length) break;
      this.on(buf[i] >> 4, buf[i] & 15, buf, j, j + len);
      i = j + len;
    }
    // A copy: the stream may reuse its chunk.
    if (i < buf.length) this.rest = Buffer.from(buf.subarray(i));
  }
}
