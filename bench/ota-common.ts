/**
 * What bench/ota.ts (the load: the simulated fleet, or the anchor's raw
 * devices) and bench/ota-server.ts (the bridge, or bare aedes with the
 * anchor's publisher, in a process of its own) agree on: the devices, the
 * scenario and its images, and the messages between the two processes.
 */
import { IMAGE_HEADER_SIZE } from '@flotilla/protocol';
import { buildImage, fleetProgram, parseScenario, type Scenario } from '@flotilla/simulator';

/** The two products the template holds: one device, and the fleet. */
export const PRODUCT_SLUGS = { one: 'ota-one', fleet: 'ota-fleet' } as const;
export type ProductKey = keyof typeof PRODUCT_SLUGS;

/** The i-th device of a product: 24 lowercase hex characters, distinct across the two. */
export function otaDeviceId(p: ProductKey, i: number): string {
  return (p === 'one' ? 'b1' : 'bf') + i.toString(16).padStart(22, '0');
}

export function otaSecret(p: ProductKey, i: number): string {
  return 'ota-bench-' + p + '-' + i.toString(36).padStart(6, '0');
}

/** The fleet's app at `firmware`: one constant variable, one function, vitals on connect only, no events (no traffic beside the OTA). */
export function otaScenario(firmware: number): Scenario {
  return parseScenario(
    {
      description: 'bench/ota.ts: one variable, one function, vitals on connect only, no events',
      firmware,
      vitals: 0,
      keepalive: 60,
      variables: { temperature: { type: 'double', value: 21.5 } },
      functions: { setLed: { returns: 1 } },
    },
    'ota-bench-v' + firmware,
  );
}

/**
 * The fleet's app at `firmware` for `product`, as an image of exactly `size`
 * bytes (header included): the same program with a comment after it, so it
 * runs the same whatever its size (as test/bridge/ota.test.ts pads images).
 */
export function paddedImage(product: number, firmware: number, size: number): Uint8Array {
  const program = fleetProgram(otaScenario(firmware), product);
  const bare = IMAGE_HEADER_SIZE + Buffer.byteLength(program, 'utf8');
  // "\n/*" + padding + "*/": 5 bytes of comment around the padding.
  if (size < bare + 5) throw new Error(`--size ${size}: the app alone is ${bare} bytes; give at least ${bare + 5}`);
  const img = buildImage(product, firmware, program + '\n/*' + 'x'.repeat(size - bare - 5) + '*/');
  if (img.length !== size) throw new Error(`padded image is ${img.length} bytes, not ${size}`);
  return img;
}

// ------------------------------------------------------------------ messages

/** One product of the template: its id, slug and devices. */
export interface TemplateProduct {
  id: number;
  slug: string;
  devices: { id: string; secret: string }[];
}

/** The anchor's transfer: the same image, chunk size and window, to these devices (their inbox cloud/<id>/ota). */
export interface AnchorPlan {
  /**
   * 'wire': the anchor's raw devices (bench/ota-anchor.ts): begin to every device at once, done when it
   * acknowledges the last byte as verified. 'agent': the real agents of a simulator Fleet: begin to every
   * device of `devices` whose last hello ran another version than `version` (and to any that says such a
   * hello later), verified on their 'verified' status, done on their next hello running `version`.
   */
  kind: 'wire' | 'agent';
  devices: string[];
  /** The image file (the bytes the bridge sends), read once into memory by the publisher. */
  imageFile: string;
  chunkSize: number;
  window: number;
  /** As the bridge's Transfer: a device silent this long is sent begin again (it answers with the offset it holds)... */
  ackTimeoutMs: number;
  /** ...this many times in a row, then its transfer fails (timeout). */
  maxSilences: number;
  job: number;
  product: number;
  version: number;
}

/** Per-job times, ms since the epoch (Date.now() in the server process; same clock as the parent's). */
export interface JobTimes {
  device: string;
  created: number;
  verified: number | null;
  ended: number | null;
  state: string;
  reason: string | null;
  attempts: number;
}

/** Progress of a delivery, as the server sees it. */
export interface Progress {
  /** Jobs created (bridge) or transfers started (anchor). */
  started: number;
  /** Devices that hold the whole image (bridge, anchor with agents: the device said verified; anchor with raw devices: the device acknowledged the last byte). */
  verified: number;
  /** Bridge, anchor with agents: jobs done (the device said hello running the new version); anchor with raw devices: as verified. */
  done: number;
  failed: number;
  /** Ended jobs by state and reason (bridge; anchor with agents: failed statuses by reason). */
  reasons: Record<string, number>;
  /** Transfers the bridge (or the anchor) is running now. */
  running: number;
  /** Anchor: windows resent from an offset a device repeated, and begins sent (one per device unless a device reconnected or went silent). */
  resends?: number;
  begins?: number;
  /** Anchor: begins sent again after ackTimeoutMs of silence (counted in begins too). */
  silentBegins?: number;
  /** Anchor with agents: devices done (hello on the new version) whose "verified" status never arrived (the agent resets 2 s after verifying, sent or not). */
  unverified?: number;
}

/** Parent → server. */
export type OtaRequest =
  | { id: number; op: 'cpu' }
  | { id: number; op: 'exit' }
  | { id: number; op: 'mem' }
  | { id: number; op: 'rss' }
  | { id: number; op: 'rssReset' }
  | { id: number; op: 'close' }
  | { id: number; op: 'online' }
  | { id: number; op: 'progress' }
  | { id: number; op: 'jobs' }
  | { id: number; op: 'start'; plan: AnchorPlan }
  | { id: number; op: 'profileStart' }
  | { id: number; op: 'profileStop'; file: string };

/** Server → parent. */
export type OtaReply =
  | { op: 'ready'; mqttPort: number; httpPort: number | null; token: string | null; products: Record<ProductKey, TemplateProduct> | null; startupMs: number }
  | { op: 'error'; message: string }
  | { id: number; op: 'cpu'; userMs: number; systemMs: number }
  | { id: number; op: 'exit' }
  /** After a forced GC: RSS, V8 heap in use, and memory outside it that V8 tracks (Buffers: external, arrayBuffers included). */
  | { id: number; op: 'mem'; rss: number; heapUsed: number; external: number; gc: boolean }
  /** RSS now, and the highest RSS sampled (every 50 ms) since the last rssReset. */
  | { id: number; op: 'rss'; rss: number; peak: number; heapUsed: number }
  | { id: number; op: 'rssReset' }
  | { id: number; op: 'close' }
  /** Bridge: devices the OTA manager knows to be connected (said hello), and MQTT sessions of devices; bare: devices that said hello since the start of the process, and sessions. */
  | { id: number; op: 'online'; online: number; sessions: number }
  | ({ id: number; op: 'progress' } & Progress)
  | { id: number; op: 'jobs'; jobs: JobTimes[] }
  | { id: number; op: 'start' }
  | { id: number; op: 'profileStart' }
  | { id: number; op: 'profileStop'; file: string };
