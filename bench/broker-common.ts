/**
 * What bench/broker.ts (the load generator) and bench/broker-server.ts (the
 * broker under test, in its own process) agree on: device ids and secrets,
 * and the messages between the two processes.
 */

/** The i-th benchmark device: 24 lowercase hex characters. */
export function benchDeviceId(i: number): string {
  return 'be' + i.toString(16).padStart(22, '0');
}

/** Its secret (deterministic, so the load generator needs nothing from the provisioning run). */
export function benchSecret(i: number): string {
  return 'bench-secret-' + i.toString(36).padStart(8, '0');
}

/** The operator app that subscribes to every device's events on the bridge. */
export const SUBSCRIBER_CLIENT_ID = 'bench-subscriber';

/** Parent → broker process. */
export type Request =
  | { id: number; op: 'mem' }
  | { id: number; op: 'cpu' }
  | { id: number; op: 'storeCalls' }
  | { id: number; op: 'profileStart' }
  | { id: number; op: 'profileStop'; dir: string; label: string }
  | { id: number; op: 'exit' };

/** Broker process → parent. */
export type Reply =
  | { op: 'ready'; port: number; startupMs: number }
  | { op: 'provisioned'; devices: number; ms: number; token: string; productId: string }
  | { op: 'error'; message: string }
  | { id: number; op: 'mem'; rss: number; heapUsed: number; gc: boolean }
  | { id: number; op: 'cpu'; userMs: number; systemMs: number }
  | { id: number; op: 'storeCalls'; calls: Record<string, number> }
  | { id: number; op: 'profileStart' }
  | { id: number; op: 'profileStop'; file: string }
  | { id: number; op: 'exit' };
