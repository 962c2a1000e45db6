/**
 * The answers of the bridge's HTTP API that the operator CLI reads, as
 * bridge/src/http/routes/firmware.ts and devices.ts write them (snake_case,
 * dates as ISO strings). Only the fields the CLI uses are required.
 */

/** A product's firmware version (GET/POST /v1/products/:p/firmware). */
export interface Firmware {
  version: number;
  title: string;
  description: string | null;
  size: number;
  sha256: string;
  product_default: boolean;
  released: boolean;
  groups: string[];
  /** Devices running this version now. */
  device_count: number;
  uploaded_on: string;
  product_id: number;
}

/** Where a rollout's target devices are. */
export interface RolloutCounts {
  total: number;
  done: number;
  failed: number;
  in_progress: number;
  pending: number;
  /** Never to be updated by this rollout: it was aborted or superseded (absent from bridges before it was counted). */
  aborted?: number;
}

/** The bridge never marks a rollout complete: it is complete when nothing is pending or in progress. */
export type RolloutState = 'running' | 'paused' | 'aborted' | 'superseded';

export interface Rollout {
  id: number;
  product_id: number;
  version: number;
  product_default: boolean;
  groups: string[];
  state: RolloutState;
  /** Why it is paused, aborted or superseded. */
  reason: string | null;
  concurrency: number;
  batch_size: number;
  /** A fraction (0.1 is 10%). */
  failure_threshold: number;
  min_attempts: number;
  created_at: string;
  updated_at: string;
  devices: RolloutCounts;
}

/** PUT /v1/products/:p/firmware/release. */
export type Release = Firmware & { rollout: Rollout };

/** One OTA job of a device. */
export interface OtaJob {
  id: number;
  device_id: string;
  version: number;
  state: string;
  reason: string | null;
}

/** PUT /v1/devices/:id with a file. */
export interface FlashAnswer {
  id: string;
  status: string;
  job: OtaJob;
}
