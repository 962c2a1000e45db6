/**
 * What the host sees of a device's link: the MQTT packets in both directions,
 * split out of the socket's chunks. The simulator counts connections,
 * refusals and messages from here, as a sniffer on a real device's UART
 * would, so it needs nothing from inside the image (which may be any
 * firmware an operator flashed).
 */
import { parseTopic } from '@flotilla/protocol';
import { Frames } from './mqtt-frames.js';

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

/** Watches one link; `reset()` at each new connection (a packet never spans two). */
export class LinkWatch {
  private out: Frames;
  private in: Frames;

  constructor(private readonly events: LinkEvents) {
    this.out = this.splitter('out');
    this.in = this.splitter('in');
  }

  reset(): void {
    this.out = this.splitter('out');
    this.in = this.splitter('in');
  }

  sent(chunk: Uint8Array): void {
    this.out.push(chunk);
  }

  received(chunk: Uint8Array): void {
    this.in.push(chunk);
  }

  private splitter(dir: Direction): Frames {
    return new Frames((type, _flags, buf, start, end) => {
      if (type === CONNACK && dir === 'in' && end - start >= 2) this.events.connack(buf[start + 1]);
      else if (type === PUBLISH && end - start >= 2) this.events.publish(dir, channelOf(buf.toString('utf8', start + 2, Math.min(end, start + 2 + buf.readUInt16BE(start)))), end - start);
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
