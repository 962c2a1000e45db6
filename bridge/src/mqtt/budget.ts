/**
 * Publish budgets: token buckets, pure (the caller passes the time).
 *
 * A device's budget is kept per device across its sessions
 * (BrokerContext.budgets), not per session: a device that reconnects gets back
 * what it had left, so reconnecting in a loop does not refill its rate.
 */
import { LIMITS } from '@flotilla/protocol';

export interface Rate {
  perSecond: number;
  burst: number;
}

export interface Bucket {
  tokens: number;
  /** When `tokens` was last brought up to date (ms). */
  at: number;
}

/** The rates a device's budget refills at. */
export interface DeviceRates {
  /** Events (Particle's 1/s with bursts of 4 by default). */
  events: Rate;
  /** Every kind of message, against floods (an operator session has this bucket too). */
  packets: Rate;
  /** What the bridge stores for a device: hello, vitals, error reports (LIMITS.reportPerSecond, reportBurst). */
  reports: Rate;
}

export interface DeviceBudget {
  events: Bucket;
  packets: Bucket;
  reports: Bucket;
  /**
   * Events the agent queued while offline, let past the event rate when they
   * arrive at once after a reconnect: at most LIMITS.offlineQueueMax, earned
   * back at the event rate between sessions (an agent offline for t seconds
   * queued about t × rate events). Brought up to date when a session starts
   * (resume), not during one.
   */
  backlog: Bucket;
}

export function bucket(r: Rate, now: number): Bucket {
  return { tokens: r.burst, at: now };
}

/** What `b` holds at `now`: refilled at the rate since it was last brought up to date, up to the burst. */
function level(b: Bucket, r: Rate, now: number): number {
  return Math.min(r.burst, b.tokens + (Math.max(0, now - b.at) / 1000) * r.perSecond);
}

function refill(b: Bucket, r: Rate, now: number): void {
  b.tokens = level(b, r, now);
  b.at = now;
}

/** The backlog credit's rate: the event rate, up to the agent's offline queue. */
function backlogRate(events: Rate): Rate {
  return { perSecond: events.perSecond, burst: LIMITS.offlineQueueMax };
}

/** Takes one token; false (nothing taken) when fewer than one is left. */
export function take(b: Bucket, r: Rate, now: number): boolean {
  refill(b, r, now);
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

export function deviceBudget(r: DeviceRates, now: number): DeviceBudget {
  return { events: bucket(r.events, now), packets: bucket(r.packets, now), reports: bucket(r.reports, now), backlog: bucket(backlogRate(r.events), now) };
}

/** A new session of a device with a budget: the backlog credit earned since its last session. */
export function resume(b: DeviceBudget, events: Rate, now: number): void {
  refill(b.backlog, backlogRate(events), now);
}

/**
 * One event: from the rate, else from the backlog credit; a device may run
 * past the rate briefly (clock skew, a retransmission), by up to its burst
 * again. False beyond that: abuse.
 */
export function takeEvent(b: DeviceBudget, r: Rate, now: number): boolean {
  refill(b.events, r, now);
  if (b.events.tokens < 1 && b.backlog.tokens >= 1) {
    b.backlog.tokens -= 1;
    return true;
  }
  if (b.events.tokens < 1 - r.burst) return false;
  b.events.tokens -= 1;
  return true;
}

/** Whether a bucket has refilled to its burst: it need not be kept. */
export function full(b: Bucket, r: Rate, now: number): boolean {
  return level(b, r, now) >= r.burst;
}

/** Whether a budget has refilled to what a fresh one holds: it need not be kept. */
export function settled(b: DeviceBudget, r: DeviceRates, now: number): boolean {
  return (
    level(b.events, r.events, now) >= r.events.burst && level(b.packets, r.packets, now) >= r.packets.burst && level(b.reports, r.reports, now) >= r.reports.burst &&
    level(b.backlog, backlogRate(r.events), now) >= LIMITS.offlineQueueMax
  );
}
