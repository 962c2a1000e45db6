/**
 * What the host sees of a device's link: the MQTT packets in both directions,
 * split out of the socket's chunks. The simulator counts connections,
 * refusals and messages from here, as a sniffer on a real device's UART
 * would, so it needs nothing from inside the image (which may be any
 * firmware an operator flashed).
 */
import { parseTopic } from '@flotilla/protocol';

/** MQTT 3.1.1 packet types the watcher reports. */
export const CONNACK = 2;
export const PUBLISH = 3;

export type Direction = 'out' | 'in';

export interface LinkEvents {
  /** CONNACK: return code 0 accepted, else refused (4 bad credentials, 5 not authorized). */
  connack(code: number): void;
  /** A PUBLISH; `channel` is the protocol's channel of its topic ('evt', 'vitals', 'err', 'req', 'ota', …) or '' when the topic is not ours. */
  publish(dir: Direction, channel: string, bytes: number): void;
}

/** Splits one direction of a stream into MQTT packets; hands each fixed header type and body to `onPacket`. */
class Splitter {
  private pending: Buffer | null = null;

  constructor(private readonly onPacket: (first: number, body: Buffer) => void) {}

  feed(chunk: Uint8Array): void {
    let buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.pending) buf = Buffer.concat([this.pending, buf]);
    this.pending = null;
    let at = 0;
    while (at < buf.length) {
      // Remaining length: up to four bytes of 7 bits, least significant first.
      let len = 0;
      let mul = 1;
      let i = at + 1;
      let complete = false;
      for (; i < buf.length && i < at + 5; i++) {
        len += (buf[i] & 0x7f) * mul;
        mul *= 128;
        if ((buf[i] & 0x80) === 0) {
          complete = true;
          i++;
          break;
        }
      }
      if (!complete && i >= at + 5) return; // malformed length: the broker will cut the link, nothing to count
      if (!complete || i + len > buf.length) {
        this.pending = Buffer.from(buf.subarray(at)); // a copy: the socket reuses its buffers
        return;
      }
      this.onPacket(buf[at], buf.subarray(i, i + len));
      at = i + len;
    }
  }
}

/** Watches one link; `reset()` at each new connection (a packet never spans two). */
export class LinkWatch {
  private out: Splitter;
  private in: Splitter;

  constructor(private readonly events: LinkEvents) {
    this.out = this.splitter('out');
    this.in = this.splitter('in');
  }

  reset(): void {
    this.out = this.splitter('out');
    this.in = this.splitter('in');
  }

  sent(chunk: Uint8Array): void {
    this.out.feed(chunk);
  }

  received(chunk: Uint8Array): void {
    this.in.feed(chunk);
  }

  private splitter(dir: Direction): Splitter {
    return new Splitter((first, body) => {
      const type = first >> 4;
      if (type === CONNACK && dir === 'in' && body.length >= 2) this.events.connack(body[1]);
      else if (type === PUBLISH && body.length >= 2) this.events.publish(dir, channelOf(body.toString('utf8', 2, 2 + body.readUInt16BE(0))), body.length);
    });
  }
}

/** The protocol channel of a topic , or '' for a topic that is not ours. */
function channelOf(topic: string): string {
  try {
    return parseTopic(topic).channel;
  } catch {
    return '';
  }
}
