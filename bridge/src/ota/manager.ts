/**
 * OTA for the fleet: which devices get which image, when, and what came of it.
 *
 * A device's version is decided by desired.ts (lock, group, product default);
 * a release creates a rollout, whose gate (gate.ts) says how many jobs may run
 * now and when to pause; a job is one image to one device, carried by a
 * Transfer while the device is connected and resumed when it comes back. A
 * job is done only when the device says hello running the new version,
 * confirmed; an image that rolls back fails its job. Everything that must
 * survive a restart is in the store: jobs, rollouts, releases. What is in
 * memory (connected devices, transfers, rollout counts) is rebuilt from it.
 *
 * Work on one device is serialized (hello, outcomes, flashes, the rollout
 * tick), so two decisions about a device never interleave.
 */
import { encode, LIMITS, topics, type Hello, type Messages, type OtaFailure } from '@flotilla/protocol';
import type { Logger } from '../mqtt/deps.js';
import type { DeviceOtaHooks } from '../mqtt/context.js';
import type { DeviceTarget, FirmwareVersion, OtaJob, OtaJobSource, Rollout, RolloutCounts, Store } from '../store/store.js';
import { desiredVersion, impact, type Impact, type ReleasePlan } from './desired.js';
import { OtaError } from './errors.js';
import { checkImage, discard, flashPath, ImageCache, isFlashPath, keep, removeImage, sweepFlashImages, sweepIncoming, versionPath, type ImageSource, type UploadedFile } from './files.js';
import { gate } from './gate.js';
import { Transfer, type TransferOutcome } from './transfer.js';

export interface OtaOptions {
  /** Bytes per chunk (the agent accepts up to LIMITS.otaChunkMaxBytes). */
  chunkSize: number;
  /** Chunks in flight ahead of the device's acknowledged offset. */
  window: number;
  /** A device silent this long mid-transfer is sent begin again... */
  ackTimeoutMs: number;
  /** ...this many times in a row, then the job fails (timeout). */
  maxSilences: number;
  /** Transfers one job may start (retries after a bad SHA-256, a bad chunk or a flash error; resumes after a link drop that had moved nothing); then it fails. */
  maxAttempts: number;
  /** A device that verified an image has this long to come back running it, confirmed; then the job fails. */
  confirmTimeoutMs: number;
  /**
   * A rollout's job whose device is offline (it dropped mid-transfer, or has not come back since the
   * bridge started) holds one of the rollout's slots this long; then the slot goes to another device.
   * The job stays: the device resumes it when it comes back.
   */
  offlineSlotMs: number;
  /** How often running rollouts look for devices to start, and transfers' offsets are saved (all in one transaction). */
  tickMs: number;
  /**
   * A device that answers a release's begin with busy (its app's onOta says not now, or it still finishes
   * another image) is asked again after this long, or at its next connection: the job waits, counted
   * neither failed nor done, until its attempts (maxAttempts) run out. Particle's intelligent release.
   */
  busyRetryMs: number;
  /** Largest image accepted. */
  imageMaxBytes: number;
  /** Images kept in memory for transfers, one copy per image, at most this many bytes in all; beyond, chunks are read from disk. */
  imageCacheBytes: number;
}

export const defaultOtaOptions: OtaOptions = {
  chunkSize: LIMITS.otaChunkDefaultBytes,
  // 8 KB in flight per device: a round trip per 8 chunks keeps a loopback or LAN link busy, and a device's buffers small.
  window: 8,
  ackTimeoutMs: 5000,
  maxSilences: 4,
  maxAttempts: 10,
  // The agent's trial window is 60 s; a reboot and a reconnect fit in the rest.
  confirmTimeoutMs: 180000,
  // Long enough for a reconnect (the agent's backoff tops out at a minute), short enough that devices
  // going away mid-rollout do not stall it.
  offlineSlotMs: 120000,
  tickMs: 1000,
  busyRetryMs: 60000,
  imageMaxBytes: LIMITS.otaImageMaxBytes,
  // A few releases' images at once (16 of the largest); what a rollout to any number of devices holds.
  imageCacheBytes: 16 * LIMITS.otaImageMaxBytes,
};

/** Rollout settings as a release asks for them; unset ones take these defaults. */
export const defaultRolloutSettings = { concurrency: 50, batchSize: 0, failureThreshold: 0.1, minAttempts: 20 };
export type RolloutSettings = typeof defaultRolloutSettings;

/** Arms `fn` in `ms` under `key`, in place of what was armed there; the timer forgets itself as it fires, and holds no process open. */
function rearm<K>(timers: Map<K, NodeJS.Timeout>, key: K, ms: number, fn: () => void): void {
  clearTimeout(timers.get(key));
  const timer = setTimeout(() => {
    timers.delete(key);
    fn();
  }, ms);
  timer.unref();
  timers.set(key, timer);
}

function disarm<K>(timers: Map<K, NodeJS.Timeout>, key: K): void {
  clearTimeout(timers.get(key));
  timers.delete(key);
}

/** Failures a new transfer of the same job may cure. */
const RETRYABLE: readonly OtaFailure[] = ['bad_sha', 'bad_chunk', 'flash_error'];

export interface RolloutProgress {
  /** Devices the release targets (their desired version is the rollout's; locks and development devices excluded). */
  total: number;
  done: number;
  failed: number;
  inProgress: number;
  /** Not reached yet: the rollout will get to them. */
  pending: number;
  /** Not reached, or stopped midway, and never will be by this rollout: it was aborted, or a newer release superseded it. */
  aborted: number;
}

/** What the HTTP API asks of OTA. */
export interface OtaControl {
  /** Checks and stores an uploaded image as a product version. OtaError invalid; StoreError conflict (version taken). */
  upload(productId: number, file: UploadedFile, meta: { version: number | null; title: string | null; description: string | null; by: string | null }): Promise<FirmwareVersion>;
  /** Deletes an unreleased version and its file. */
  remove(productId: number, version: number): Promise<boolean>;
  /** Releases a version and starts its rollout. */
  release(productId: number, plan: ReleasePlan, settings: RolloutSettings, by: string | null): Promise<{ firmware: FirmwareVersion; rollout: Rollout }>;
  /** Devices a release would update, by their current version. */
  impact(productId: number, plan: ReleasePlan): Promise<Impact>;
  /** Flashes one device with an uploaded image (a FLIM image, or a JS bundle and its version). */
  flashFile(deviceId: string, productId: number, file: UploadedFile, version: number | null, by: string | null): Promise<OtaJob>;
  /** Flashes one device with a stored version of its product, now (or when it next connects). */
  flashVersion(deviceId: string, productId: number, version: number, by: string | null): Promise<OtaJob>;
  /** The device was locked to a version with flash: its job, or null when it runs that version already. */
  lockNow(deviceId: string, productId: number, version: number, by: string | null): Promise<OtaJob | null>;
  /** A device's lock, groups or development flag changed: decide again (when connected). */
  reconcile(deviceId: string): void;
  rolloutAction(id: number, action: 'pause' | 'resume' | 'abort', by: string): Promise<Rollout>;
  progress(r: Rollout): Promise<RolloutProgress>;
}

export interface OtaDeps {
  store: Store;
  log: Logger;
  dataDir: string;
  publish(topic: string, payload: Uint8Array, qos: 0 | 1): void;
  /** Publishes one of Particle's special events for a device (spark/flash/status). */
  deviceEvent(deviceId: string, name: string, data: string): void;
}

interface Live {
  r: Rollout;
  c: RolloutCounts;
}

interface Running {
  job: OtaJob;
  t: Transfer;
  reader: ImageSource;
  /** The last quarter of the image announced (0: none yet). */
  quarter: number;
  /** The offset the device held when this transfer began (its first answer); null before it. */
  from: number | null;
}

export class OtaManager implements OtaControl, DeviceOtaHooks {
  /** Connected devices (said hello) → product and running version. */
  private readonly online = new Map<string, { productId: number; firmware: number }>();
  private readonly transfers = new Map<string, Running>();
  private readonly live = new Map<number, Live>();
  private readonly queues = new Map<string, Promise<void>>();
  private readonly confirmTimers = new Map<number, NodeJS.Timeout>();
  /** Jobs whose device said busy → the timer that asks it again. */
  private readonly busyTimers = new Map<number, NodeJS.Timeout>();
  /** Rollout jobs of offline devices, by device: when the job gives up its slot. */
  private readonly offlineTimers = new Map<string, NodeJS.Timeout>();
  /**
   * Devices resetting into a verified image: its job, and whether the link has dropped since (the
   * agent resets with its link down at the latest, so a hello after the drop is from the new boot).
   */
  private readonly resetting = new Map<string, { job: number; gone: boolean }>();
  /** Rollout jobs that gave up their slot (job → rollout): not counted active until their device resumes them. */
  private readonly parked = new Map<number, number>();
  /** Jobs whose last transfer took the device past any offset it had held before the link dropped: the resume is not a new attempt. */
  private readonly progressed = new Set<number>();
  /** The highest offset each job's transfers have reached (since the bridge started). */
  private readonly highest = new Map<number, number>();
  private tickTimer: NodeJS.Timeout | null = null;
  /** Offsets reached since the last save (job → offset): saved together at each tick. */
  private readonly offsets = new Map<number, number>();
  private ticking = false;
  private closed = false;
  private readonly images: ImageCache;

  constructor(
    private readonly d: OtaDeps,
    private readonly o: OtaOptions = defaultOtaOptions,
  ) {
    this.images = new ImageCache(d.dataDir, o.imageCacheBytes);
  }

  /** Loads live rollouts and waiting confirmations from the store, and starts the rollout tick. */
  async start(): Promise<void> {
    for (const r of await this.d.store.liveRollouts()) this.live.set(r.id, { r, c: await this.d.store.rolloutCounts(r.id) });
    const active = await this.d.store.activeJobs();
    const swept = await sweepFlashImages(this.d.dataDir, new Set(active.map((j) => j.path)));
    if (swept > 0) this.d.log.info({ swept }, 'ota: one-off flash images of ended jobs removed');
    const parts = await sweepIncoming(this.d.dataDir);
    if (parts > 0) this.d.log.info({ parts }, 'ota: uploads a stop cut short removed');
    for (const j of active) {
      if (j.state === 'verified') this.armConfirm(j, Math.max(0, j.updatedAt.getTime() + this.o.confirmTimeoutMs - Date.now()));
      // No device is connected yet: one that never comes back must not hold its rollout's slot for good.
      else this.armOffline(j);
    }
    this.tickTimer = setInterval(() => {
      void this.tick();
      void this.saveOffsets();
    }, this.o.tickMs);
    this.tickTimer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.tickTimer) clearInterval(this.tickTimer);
    for (const t of this.confirmTimers.values()) clearTimeout(t);
    for (const t of this.busyTimers.values()) clearTimeout(t);
    for (const t of this.offlineTimers.values()) clearTimeout(t);
    for (const id of [...this.transfers.keys()]) await this.stopTransfer(id);
    await Promise.all(this.queues.values());
    await this.saveOffsets();
  }

  /** The offsets transfers reached, in one write: what a bridge restarted meanwhile shows as progress (the device keeps its own). */
  private async saveOffsets(): Promise<void> {
    if (this.offsets.size === 0) return;
    const rows = [...this.offsets];
    this.offsets.clear();
    await this.d.store.saveJobOffsets(rows).catch((e) => this.d.log.error({ err: e }, 'ota: offsets not saved'));
  }

  // ------------------------------------------------------------ device hooks (mqtt)

  hello(deviceId: string, h: Hello, live: () => boolean): void {
    this.serial(deviceId, () => this.onHello(deviceId, h, live));
  }

  status(deviceId: string, s: Messages['otaStatus']): void {
    const running = this.transfers.get(deviceId);
    if (running) return running.t.status(s);
    // A job stopped as its last chunks were on their way may be verified on the device already: it
    // resets into the image whatever, and answers the abort so. The job's record follows the device.
    if (s.state === 'verified') this.serial(deviceId, () => this.verifiedAfterAbort(deviceId, s.job));
  }

  private async verifiedAfterAbort(deviceId: string, jobId: number): Promise<void> {
    const job = await this.d.store.getJob(jobId);
    if (!job || job.deviceId !== deviceId || job.state !== 'aborted' || (await this.d.store.activeJob(deviceId))) return;
    const v = await this.d.store.updateJob(job.id, { state: 'verified', reason: null, offset: job.size });
    this.resetting.set(deviceId, { job: v.id, gone: !this.online.has(deviceId) });
    this.armConfirm(v, this.o.confirmTimeoutMs);
    // Its rollout counts it under way again (finish takes it out once the device says hello).
    const live = v.rolloutId === null ? undefined : this.live.get(v.rolloutId);
    if (live) live.c.active++;
    this.d.log.info({ deviceId, job: v.id, version: v.version }, 'ota: the device had the whole image when its job was stopped; it resets into it, and the job waits for its hello');
  }

  offline(deviceId: string): void {
    this.online.delete(deviceId);
    const r = this.resetting.get(deviceId);
    if (r) r.gone = true;
    this.serial(deviceId, async () => {
      const job = this.transfers.get(deviceId)?.job;
      await this.suspend(deviceId);
      // A job made as the device went away has no transfer yet: startTransfer arms its timer.
      if (job && !this.online.has(deviceId)) this.armOffline(job);
    });
  }

  /**
   * `live`: whether the hello's connection is still open. One that closed while the hello was stored
   * or waited here has had its offline already: taken now, it would mark the device connected, and
   * an update would start that nobody receives.
   */
  private async onHello(deviceId: string, h: Hello, live: () => boolean): Promise<void> {
    const t = await this.d.store.deviceTarget(deviceId);
    if (!t || !live()) return;
    // A new connection: whatever was being sent on the old one resumes from the device's offset.
    await this.suspend(deviceId);
    this.online.set(deviceId, { productId: t.productId, firmware: h.firmware });
    disarm(this.offlineTimers, deviceId);
    let job = await this.d.store.activeJob(deviceId);
    const reset = this.resetting.get(deviceId);
    if (job && h.firmware === job.version && !h.ota.trial) {
      await this.finish(job, 'done', null);
      job = null;
    } else if (job?.state === 'verified' && h.ota.rolledBackFrom === job.version) {
      await this.finish(job, 'failed', 'rolled_back');
      job = null;
    } else if (job?.state === 'verified' && reset?.job === job.id && reset.gone && !h.ota.trial) {
      // Back from the reset into the image, not rolled back, yet calling itself another version: the
      // code says a version other than the one it was uploaded as. Waiting would end not_confirmed.
      this.d.log.warn({ deviceId, job: job.id, version: job.version, says: h.firmware }, 'ota: the new image runs but says another version');
      await this.finish(job, 'failed', 'wrong_version');
      job = null;
    } else if (!job && !h.ota.trial) await this.confirmLate(deviceId, h.firmware);
    await this.reconcileNow(deviceId, t, job);
  }

  /**
   * A device may confirm its new image (on reaching the broker) and lose its link before its hello
   * arrives; if it stays away past confirmTimeoutMs its job ended not_confirmed. Back on that version,
   * not on trial, the update did succeed: the job ends done after all, and its rollout counts it so.
   */
  private async confirmLate(deviceId: string, firmware: number): Promise<void> {
    const [last] = await this.d.store.deviceJobs(deviceId, 1);
    if (last?.state !== 'failed' || last.reason !== 'not_confirmed' || last.version !== firmware) return;
    await this.d.store.updateJob(last.id, { state: 'done', reason: null, offset: last.size });
    this.d.deviceEvent(deviceId, 'spark/flash/status', 'success');
    this.d.log.info({ deviceId, job: last.id, version: firmware }, 'ota: the device confirmed its image after the wait ran out; the job is done');
    const live = last.rolloutId === null ? undefined : this.live.get(last.rolloutId);
    if (live?.c.failedDevices.delete(deviceId)) {
      live.c.failed = Math.max(0, live.c.failed - 1);
      live.c.done++;
    }
  }

  // ------------------------------------------------------------ deciding

  reconcile(deviceId: string): void {
    this.serial(deviceId, async () => {
      if (!this.online.has(deviceId)) return;
      const t = await this.d.store.deviceTarget(deviceId);
      if (t) await this.reconcileNow(deviceId, t, await this.d.store.activeJob(deviceId));
    });
  }

  /** Brings a connected device toward its desired version: ends a job that is no longer wanted, resumes or starts one. */
  private async reconcileNow(deviceId: string, t: DeviceTarget, job: OtaJob | null): Promise<void> {
    const dev = this.online.get(deviceId);
    if (!dev) return;
    const want = desiredVersion(t, await this.d.store.productReleases(t.productId));
    // A verified image is not stopped: the device is already resetting into it. Its hello ends the
    // job (done or rolled back), and the next reconcile moves it on.
    if (job && job.source !== 'flash' && job.state !== 'verified' && (want === null || want.version !== job.version)) {
      await this.abortJob(job, 'superseded');
      job = null;
    }
    if (job) {
      // Resumed unless it is already being sent, or waits for the device's reboot.
      if (job.state !== 'verified' && this.transfers.get(deviceId)?.job.id !== job.id) await this.startTransfer(job);
      return;
    }
    if (!want || want.version === dev.firmware) return;
    const fw = await this.d.store.getFirmware(t.productId, want.version);
    if (!fw) return this.d.log.warn({ deviceId, version: want.version }, 'ota: the desired version has no image');
    if (want.by === 'lock') {
      // A lock whose job failed is not retried by itself: an operator flashes again.
      const last = await this.d.store.lastJobFor(deviceId, want.version);
      if (last?.state === 'failed') return;
      return this.startTransfer(await this.createJob(deviceId, fw, 'lock', null, null));
    }
    const live = this.rolloutFor(t.productId, want.version);
    if (!live || live.c.failedDevices.has(deviceId)) return;
    const g = gate(live.r, live.c);
    if (g.pause) return this.pause(live, g.pause);
    if (g.slots <= 0) return; // the tick starts it when a slot frees
    live.c.active++;
    live.c.started++;
    await this.startTransfer(await this.createJob(deviceId, fw, 'release', live.r.id, null));
  }

  /** The newest running rollout of this version in the product. */
  private rolloutFor(productId: number, version: number): Live | null {
    let best: Live | null = null;
    for (const l of this.live.values()) if (l.r.productId === productId && l.r.version === version && l.r.state === 'running' && (!best || l.r.id > best.r.id)) best = l;
    return best;
  }

  /** Starts jobs for connected devices waiting on a running rollout with free slots. */
  private async tick(): Promise<void> {
    if (this.ticking || this.closed) return;
    this.ticking = true;
    try {
      for (const live of [...this.live.values()]) {
        if (live.r.state !== 'running') continue;
        const g = gate(live.r, live.c);
        if (g.pause) {
          await this.pause(live, g.pause);
          continue;
        }
        let slots = g.slots;
        if (slots <= 0) continue;
        const waiting = new Set<string>();
        for (const [id, dev] of this.online)
          if (dev.productId === live.r.productId && dev.firmware !== live.r.version && !this.transfers.has(id) && !live.c.failedDevices.has(id)) waiting.add(id);
        if (waiting.size === 0) continue;
        const releases = await this.d.store.productReleases(live.r.productId);
        for (const t of await this.d.store.fleetTargets(live.r.productId)) {
          if (slots <= 0) break;
          const want = waiting.has(t.id) ? desiredVersion(t, releases) : null;
          if (!want || want.by === 'lock' || want.version !== live.r.version) continue;
          slots--;
          // Reserved now, so the next tick does not count this device's slot as free.
          live.c.active++;
          live.c.started++;
          this.serial(t.id, () => this.startReserved(live, t.id));
        }
      }
    } catch (e) {
      this.d.log.error({ err: e }, 'ota: rollout tick failed');
    } finally {
      this.ticking = false;
    }
  }

  private async startReserved(live: Live, deviceId: string): Promise<void> {
    const dev = this.online.get(deviceId);
    const fw = await this.d.store.getFirmware(live.r.productId, live.r.version);
    if (!dev || !fw || live.r.state !== 'running' || (await this.d.store.activeJob(deviceId)) || dev.firmware === live.r.version) {
      live.c.active--;
      live.c.started--;
      return;
    }
    await this.startTransfer(await this.createJob(deviceId, fw, 'release', live.r.id, null));
  }

  // ------------------------------------------------------------ jobs

  private createJob(deviceId: string, image: Pick<FirmwareVersion, 'version' | 'size' | 'sha256' | 'path'>, source: OtaJobSource, rolloutId: number | null, by: string | null): Promise<OtaJob> {
    return this.d.store.createJob({ deviceId, version: image.version, size: image.size, sha256: image.sha256, path: image.path, source, rolloutId, createdBy: by });
  }

  private async startTransfer(job: OtaJob): Promise<void> {
    if (this.closed) return;
    // Every job meant for a device that is not connected passes here: it waits for its device, not in a slot.
    if (!this.online.has(job.deviceId)) return this.armOffline(job);
    // A resume after a link drop that had moved the transfer on is the same attempt; one that had not
    // (a device that drops whenever it is sent this image) is a new one, so it cannot go on for ever.
    const again = job.attempts > 0 && this.progressed.has(job.id);
    if (!again && job.attempts >= this.o.maxAttempts) return this.finish(job, 'failed', 'too_many_attempts');
    let reader: ImageSource;
    try {
      reader = await this.images.open(job.path, job.size, job.sha256);
    } catch (e) {
      this.d.log.error({ err: e, job: job.id }, 'ota: the image file cannot be read');
      return this.finish(job, 'failed', 'image_missing');
    }
    const first = job.attempts === 0;
    this.progressed.delete(job.id);
    job = await this.d.store.updateJob(job.id, { state: 'sending', attempts: again ? job.attempts : job.attempts + 1, reason: null });
    if (first) this.d.deviceEvent(job.deviceId, 'spark/flash/status', 'started');
    this.unpark(job, true);
    const deviceId = job.deviceId;
    const running: Running = { job, reader, quarter: Math.floor((job.offset / job.size) * 4), from: null, t: null as unknown as Transfer };
    const image = { job: job.id, product: job.productId, version: job.version, size: job.size, sha256: Buffer.from(job.sha256, 'hex') };
    running.t = new Transfer(image, {
      begin: (m) => this.d.publish(topics.cloud.ota(deviceId), encode('otaBegin', m), 1),
      chunk: (m) => this.d.publish(topics.cloud.ota(deviceId), encode('otaChunk', m), 1),
      read: (offset, length) => reader.read(offset, length),
      progress: (offset) => {
        running.from ??= offset;
        // Saved with every other transfer's at the next tick: a write (and a sync) per job and quarter
        // was 15% of the bridge's CPU with 500 transfers. Progress events at each quarter.
        this.offsets.set(job.id, offset);
        const quarter = Math.floor((offset / job.size) * 4);
        if (quarter > running.quarter && quarter < 4) {
          running.quarter = quarter;
          this.d.deviceEvent(deviceId, 'spark/flash/status', `progress ${quarter * 25}%`);
        }
      },
      end: (outcome) => void this.serial(deviceId, () => this.onOutcome(running, outcome)),
    }, this.o);
    await this.stopTransfer(deviceId);
    this.transfers.set(deviceId, running);
    running.t.start();
  }

  private async onOutcome(running: Running, outcome: TransferOutcome): Promise<void> {
    const deviceId = running.job.deviceId;
    if (this.transfers.get(deviceId) !== running) return;
    const offset = running.t.offset;
    this.offsets.delete(running.job.id);
    await this.stopTransfer(deviceId);
    const job = await this.d.store.updateJob(running.job.id, { offset });
    if (job.state !== 'sending') return;
    switch (outcome.kind) {
      case 'verified': {
        const v = await this.d.store.updateJob(job.id, { state: 'verified', offset: job.size });
        this.resetting.set(deviceId, { job: v.id, gone: !this.online.has(deviceId) });
        this.armConfirm(v, this.o.confirmTimeoutMs);
        return;
      }
      case 'failed':
        if (outcome.reason === 'busy' && job.source === 'release' && job.attempts < this.o.maxAttempts) {
          // Not now, says the device: asked again later (or at its next hello), not failed for good.
          await this.d.store.updateJob(job.id, { state: 'pending', reason: 'busy' });
          rearm(this.busyTimers, job.id, this.o.busyRetryMs, () => this.reconcile(deviceId));
          return;
        }
        if (RETRYABLE.includes(outcome.reason) && job.attempts < this.o.maxAttempts) {
          this.d.log.info({ deviceId, job: job.id, reason: outcome.reason }, 'ota: the device refused the image; sending it again');
          return this.startTransfer(job);
        }
        return this.finish(job, 'failed', outcome.reason);
      case 'silent':
        this.abortOnDevice(job, 'timeout');
        return this.finish(job, 'failed', 'timeout');
      case 'error':
        this.d.log.error({ deviceId, job: job.id, message: outcome.message }, 'ota: transfer error');
        this.abortOnDevice(job, 'aborted');
        return this.finish(job, 'failed', 'bridge_error');
    }
  }

  private armConfirm(job: OtaJob, ms: number): void {
    rearm(this.confirmTimers, job.id, ms, () =>
      this.serial(job.deviceId, async () => {
        const now = await this.d.store.getJob(job.id);
        if (now?.state === 'verified') await this.finish(now, 'failed', 'not_confirmed');
      }),
    );
  }

  private abortOnDevice(job: OtaJob, reason: OtaFailure): void {
    if (this.online.has(job.deviceId)) this.d.publish(topics.cloud.ota(job.deviceId), encode('otaAbort', { job: job.id, reason }), 1);
  }

  private async abortJob(job: OtaJob, reason: string): Promise<void> {
    if (job.state === 'sending' || job.state === 'pending') this.abortOnDevice(job, 'aborted');
    await this.stopTransfer(job.deviceId);
    await this.finish(job, 'aborted', reason);
  }

  /** Ends a job: stored, announced (spark/flash/status), counted in its rollout. */
  private async finish(job: OtaJob, state: 'done' | 'failed' | 'aborted', reason: string | null): Promise<void> {
    if (this.transfers.get(job.deviceId)?.job.id === job.id) await this.stopTransfer(job.deviceId);
    disarm(this.confirmTimers, job.id);
    disarm(this.busyTimers, job.id);
    if (this.resetting.get(job.deviceId)?.job === job.id) this.resetting.delete(job.deviceId);
    this.progressed.delete(job.id);
    this.highest.delete(job.id);
    const parked = this.parked.has(job.id);
    this.unpark(job, false);
    const ended = await this.d.store.updateJob(job.id, { state, reason, ...(state === 'done' ? { offset: job.size } : {}) });
    // Particle's events end an update with success or failed; one stopped after it started ends failed.
    if (state !== 'aborted' || job.attempts > 0) this.d.deviceEvent(job.deviceId, 'spark/flash/status', state === 'done' ? 'success' : 'failed');
    // A one-off flash's image is its job's alone (a stored version's stays with the version).
    if (isFlashPath(job.path)) {
      await this.dropImage(job.path).catch((e) => this.d.log.warn({ err: e, job: job.id }, 'ota: a flash image not removed'));
    }
    this.d.log.info({ deviceId: job.deviceId, job: job.id, version: job.version, state, reason }, 'ota: job ended');
    // The stored rollout: a newer release of the same version may have taken the job over.
    const live = ended.rolloutId === null ? undefined : this.live.get(ended.rolloutId);
    if (live) {
      if (!parked) live.c.active = Math.max(0, live.c.active - 1);
      if (state === 'done') live.c.done++;
      if (state === 'failed') {
        live.c.failed++;
        live.c.failedDevices.add(job.deviceId);
      }
      const g = gate(live.r, live.c);
      if (g.pause) await this.pause(live, g.pause);
    }
    // A slot is free: look for the next device soon, not at the next tick.
    setImmediate(() => void this.tick());
  }

  /** The device's link dropped (or it connected again): its transfer stops, and resumes on its next hello. */
  private async suspend(deviceId: string): Promise<void> {
    const r = this.transfers.get(deviceId);
    if (r && r.from !== null) {
      // Past the highest offset so far, not only past this transfer's start: a device that drops at the
      // same place again and again is making no progress, and runs out of attempts.
      const best = Math.max(r.from, this.highest.get(r.job.id) ?? -1);
      if (r.t.offset > best) {
        this.progressed.add(r.job.id);
        this.highest.set(r.job.id, r.t.offset);
      }
    }
    await this.stopTransfer(deviceId);
  }

  /** A rollout's job whose device is offline gives up its slot after offlineSlotMs, unless the device is back. */
  private armOffline(job: OtaJob): void {
    if (job.rolloutId === null || job.state === 'verified') return;
    rearm(this.offlineTimers, job.deviceId, this.o.offlineSlotMs, () =>
      this.serial(job.deviceId, async () => {
        // Fresh: the job may have ended, or passed to a newer rollout of its version.
        const now = await this.d.store.getJob(job.id);
        const live = now?.rolloutId == null ? undefined : this.live.get(now.rolloutId);
        if (this.online.has(job.deviceId) || !live || this.parked.has(job.id) || (now?.state !== 'pending' && now?.state !== 'sending')) return;
        this.parked.set(job.id, live.r.id);
        live.c.active = Math.max(0, live.c.active - 1);
        this.d.log.info({ deviceId: job.deviceId, job: job.id, rollout: live.r.id }, 'ota: the device is offline mid-update; its rollout slot goes to another device');
        setImmediate(() => void this.tick());
      }),
    );
  }

  /** A parked job that runs again (its device came back, or it ends) takes its slot back, or is no longer counted apart. */
  private unpark(job: OtaJob, resumed: boolean): void {
    const id = this.parked.get(job.id);
    if (id === undefined) return;
    this.parked.delete(job.id);
    const live = this.live.get(id);
    // Back over the concurrency for a while, if the slot was taken meanwhile: the device holds part of the image.
    if (live && resumed) live.c.active++;
  }

  /** A rollout's counts from the store, less the jobs that gave up their slot. */
  private async counts(id: number): Promise<RolloutCounts> {
    const c = await this.d.store.rolloutCounts(id);
    for (const r of this.parked.values()) if (r === id) c.active = Math.max(0, c.active - 1);
    return c;
  }

  private async stopTransfer(deviceId: string): Promise<void> {
    const r = this.transfers.get(deviceId);
    if (!r) return;
    this.transfers.delete(deviceId);
    r.t.stop();
    await r.reader.close().catch(() => undefined);
  }

  /** Runs `fn` after every earlier piece of work on the same device; resolves when it has run (it never rejects: failures are logged). */
  private serial(deviceId: string, fn: () => Promise<void>): Promise<void> {
    const next = (this.queues.get(deviceId) ?? Promise.resolve())
      .then(fn)
      .catch((e) => this.d.log.error({ err: e, deviceId }, 'ota: device work failed'))
      .finally(() => {
        if (this.queues.get(deviceId) === next) this.queues.delete(deviceId);
      });
    this.queues.set(deviceId, next);
    return next;
  }

  // ------------------------------------------------------------ rollouts

  private async pause(live: Live, reason: string): Promise<void> {
    if (live.r.state !== 'running') return;
    live.r = await this.d.store.updateRollout(live.r.id, { state: 'paused', reason });
    this.d.log.warn({ rollout: live.r.id, product: live.r.productId, version: live.r.version, reason }, 'ota: rollout paused');
  }

  async rolloutAction(id: number, action: 'pause' | 'resume' | 'abort', by: string): Promise<Rollout> {
    const r = await this.d.store.getRollout(id);
    if (!r) throw new OtaError('not_found', `no rollout ${id}`);
    if (r.state === 'aborted' || r.state === 'superseded') throw new OtaError('conflict', `the rollout is ${r.state}`);
    const live = this.live.get(id) ?? { r, c: await this.counts(id) };
    this.live.set(id, live);
    if (action === 'pause') {
      if (r.state !== 'running') throw new OtaError('conflict', 'the rollout is not running');
      live.r = await this.d.store.updateRollout(id, { state: 'paused', reason: 'paused by ' + by });
    } else if (action === 'resume') {
      if (r.state !== 'paused') throw new OtaError('conflict', 'the rollout is not paused');
      // Failures are counted afresh from here, or the threshold would pause it again at once.
      live.r = await this.d.store.updateRollout(id, { state: 'running', reason: null, countFrom: new Date() });
      live.c = await this.counts(id);
      setImmediate(() => void this.tick());
    } else {
      live.r = await this.d.store.updateRollout(id, { state: 'aborted', reason: 'aborted by ' + by });
      this.live.delete(id);
      // Answered once the jobs have ended, so the answer counts them as aborted, not in progress. A
      // verified one is not stopped: its device is resetting into the image, and its hello ends it.
      const jobs = (await this.d.store.activeJobs()).filter((j) => j.rolloutId === id);
      await Promise.all(
        jobs.map((j) =>
          this.serial(j.deviceId, async () => {
            // Read again in the device's turn: it may have verified (or ended) since.
            const now = await this.d.store.getJob(j.id);
            if (now?.rolloutId === id && (now.state === 'pending' || now.state === 'sending')) await this.abortJob(now, 'rollout aborted');
          }),
        ),
      );
    }
    return live.r;
  }

  async progress(r: Rollout): Promise<RolloutProgress> {
    const releases = await this.d.store.productReleases(r.productId);
    const c = this.live.get(r.id)?.c ?? (await this.d.store.rolloutCounts(r.id));
    const out: RolloutProgress = { total: 0, done: 0, failed: 0, inProgress: 0, pending: 0, aborted: 0 };
    const active = new Set((await this.d.store.activeJobs()).filter((j) => j.rolloutId === r.id).map((j) => j.deviceId));
    const ended = r.state === 'aborted' || r.state === 'superseded';
    // An aborted rollout's devices it never reached: those of its groups (or, as the default, of none with
    // a release) that take releases. Not whoever wants its version now: a later release of it elsewhere
    // moved its count, and took its own groups' devices out of it.
    const groupsOf = r.state === 'aborted' ? await this.d.store.groupsOfDevices(r.productId) : null;
    // (Not one another of its groups takes to a higher version: the highest release of its groups is its.
    // A later release to the rollout's own groups does not move its count.)
    const itsOwn = (t: DeviceTarget): boolean => {
      if (t.quarantined || t.development || t.lockedFirmware !== null) return false;
      const groups = groupsOf?.get(t.id) ?? [];
      if (groups.some((g) => r.groups.includes(g))) return !groups.some((g) => !r.groups.includes(g) && (releases.groups.get(g) ?? -Infinity) > r.version);
      return r.productDefault && t.groupVersions.length === 0;
    };
    for (const t of await this.d.store.fleetTargets(r.productId)) {
      const want = desiredVersion(t, releases);
      const wanted = want !== null && want.by !== 'lock' && want.version === r.version;
      const reached = c.reached.get(t.id);
      if (ended) {
        // Kept as they ended in it, whatever the devices run since: those it reached (done, failed,
        // stopped midway), and, when aborted, those it was still to reach and never will. The ones a
        // superseded rollout never reached are the newer rollout's.
        if (reached !== undefined) {
          out.total++;
          if (reached === 'done') out.done++;
          else if (reached === 'failed') out.failed++;
          else if (active.has(t.id)) out.inProgress++; // verified: resetting into the image, not stopped
          else out.aborted++;
        } else if (r.state === 'aborted' && itsOwn(t)) {
          out.total++;
          if (t.firmwareVersion === r.version) out.done++;
          else out.aborted++;
        }
        continue;
      }
      if (!wanted && !active.has(t.id) && !c.failedDevices.has(t.id)) continue;
      out.total++;
      if (t.firmwareVersion === r.version || reached === 'done') out.done++;
      else if (active.has(t.id)) out.inProgress++;
      else if (c.failedDevices.has(t.id)) out.failed++;
      else out.pending++;
    }
    return out;
  }

  // ------------------------------------------------------------ the API's operations

  async upload(productId: number, file: UploadedFile, meta: { version: number | null; title: string | null; description: string | null; by: string | null }): Promise<FirmwareVersion> {
    const image = await checkImage(file, productId, meta.version, this.o.imageMaxBytes);
    if (await this.d.store.getFirmware(productId, image.version)) {
      await discard(image);
      throw new OtaError('conflict', `version ${image.version} already exists in product ${productId}`);
    }
    const path = versionPath(productId, image.version);
    await keep(this.d.dataDir, image, path);
    try {
      return await this.d.store.addFirmware(productId, {
        version: image.version, title: meta.title ?? `Version ${image.version}`, description: meta.description, size: image.size, sha256: image.sha256, path, uploadedBy: meta.by,
      });
    } catch (e) {
      await removeImage(this.d.dataDir, path);
      throw e;
    }
  }

  async remove(productId: number, version: number): Promise<boolean> {
    const gone = await this.d.store.deleteFirmware(productId, version);
    if (gone) await this.dropImage(gone.path);
    return gone !== null;
  }

  /** An image no longer needed: out of the cache and off the disk. */
  private async dropImage(path: string): Promise<void> {
    this.images.forget(path);
    await removeImage(this.d.dataDir, path);
  }

  async release(productId: number, plan: ReleasePlan, settings: RolloutSettings, by: string | null): Promise<{ firmware: FirmwareVersion; rollout: Rollout }> {
    const firmware = await this.d.store.releaseFirmware(productId, plan);
    const rollout = await this.d.store.createRollout(productId, { ...settings, version: plan.version, productDefault: plan.productDefault, groups: [...plan.groups], createdBy: by });
    // Superseded rollouts stop; the new one starts with the jobs of those of its version still under way (the store moved them).
    for (const [job, id] of this.parked) if (this.live.get(id)?.r.productId === productId && this.live.get(id)?.r.version === plan.version) this.parked.set(job, rollout.id);
    for (const [id, l] of this.live) if (l.r.productId === productId) {
      const now = await this.d.store.getRollout(id);
      if (!now || now.state === 'superseded' || now.state === 'aborted') this.live.delete(id);
    }
    this.live.set(rollout.id, { r: rollout, c: await this.counts(rollout.id) });
    // Jobs of the product that the release makes unwanted end now (racing releases); the tick starts the new ones.
    for (const [id, r] of this.transfers) if (r.job.productId === productId && r.job.source !== 'flash') this.reconcile(id);
    for (const j of await this.d.store.activeJobs()) if (j.productId === productId && j.state === 'verified') this.reconcile(j.deviceId);
    setImmediate(() => void this.tick());
    return { firmware, rollout };
  }

  async impact(productId: number, plan: ReleasePlan): Promise<Impact> {
    const [targets, groups, releases] = await Promise.all([this.d.store.fleetTargets(productId), this.d.store.groupsOfDevices(productId), this.d.store.productReleases(productId)]);
    return impact(targets, groups, releases, plan);
  }

  async flashFile(deviceId: string, productId: number, file: UploadedFile, version: number | null, by: string | null): Promise<OtaJob> {
    const image = await checkImage(file, productId, version, this.o.imageMaxBytes);
    await this.notRunning(deviceId, image.version);
    const path = flashPath();
    await keep(this.d.dataDir, image, path);
    return this.flash(deviceId, { version: image.version, size: image.size, sha256: image.sha256, path }, 'flash', by);
  }

  async flashVersion(deviceId: string, productId: number, version: number, by: string | null): Promise<OtaJob> {
    const fw = await this.stored(productId, version);
    await this.notRunning(deviceId, version);
    return this.flash(deviceId, fw, 'flash', by);
  }

  async lockNow(deviceId: string, productId: number, version: number, by: string | null): Promise<OtaJob | null> {
    const fw = await this.stored(productId, version);
    const device = await this.d.store.getDevice(deviceId);
    // A quarantined device takes nothing, lock included: the lock is kept and applies once it is released.
    if (device?.quarantined) {
      this.reconcile(deviceId);
      return null;
    }
    if (device?.firmwareVersion === version) {
      // Nothing to send: a job would fail on the device (bad_version) and, failed, keep the lock from
      // ever being applied again. A job in flight to another version is no longer wanted.
      this.reconcile(deviceId);
      return null;
    }
    return this.flash(deviceId, fw, 'lock', by);
  }

  private async stored(productId: number, version: number): Promise<FirmwareVersion> {
    const fw = await this.d.store.getFirmware(productId, version);
    if (!fw) throw new OtaError('not_found', `no firmware version ${version} in product ${productId}`);
    return fw;
  }

  /** A flash of the version a device runs would only fail on the device (bad_version): refused here, saying so. */
  private async notRunning(deviceId: string, version: number): Promise<void> {
    if (await this.runs(deviceId, version)) throw new OtaError('conflict', `device ${deviceId} already runs version ${version}`);
  }

  /** Whether the device last said it runs `version`. */
  private async runs(deviceId: string, version: number): Promise<boolean> {
    return (await this.d.store.getDevice(deviceId))?.firmwareVersion === version;
  }

  /** An explicit flash: ends the device's active job, creates this one, starts it if the device is connected. */
  private flash(deviceId: string, image: Pick<FirmwareVersion, 'version' | 'size' | 'sha256' | 'path'>, source: OtaJobSource, by: string | null): Promise<OtaJob> {
    return new Promise<OtaJob>((resolve, reject) =>
      this.serial(deviceId, async () => {
        try {
          const was = await this.d.store.activeJob(deviceId);
          // The same image the same way again (a client retrying a slow PUT): the job under way goes on,
          // where restarting it cost a whole transfer and told the streams and webhooks it failed.
          if (was && was.source === source && was.version === image.version && was.sha256 === image.sha256) {
            if (image.path !== was.path && isFlashPath(image.path)) await this.dropImage(image.path);
            return resolve(was);
          }
          if (was) await this.abortJob(was, 'superseded');
          const job = await this.createJob(deviceId, image, source, null, by);
          resolve(job);
          await this.startTransfer(job);
        } catch (e) {
          reject(e);
        }
      }),
    );
  }

  /** For tests and metrics. */
  get transfersRunning(): number {
    return this.transfers.size;
  }
}
