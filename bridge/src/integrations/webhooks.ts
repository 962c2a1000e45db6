/**
 * Webhooks: on a device event whose name starts with an enabled integration's
 * prefix (and from its device, when it names one), a request to its URL with its templated body; retried with
 * exponential backoff; the outcome published back as Particle does:
 *   hook-sent/<event>            the request was answered 2xx
 *   hook-response/<event>/<n>    the response body, in 512-byte pieces (at most 100 KB)
 *   hook-error/<event>/0         every attempt failed (the last error)
 * (the response and error names are the integration's responseTopic and
 * errorResponseTopic templates when it has them, e.g.
 * {{PARTICLE_DEVICE_ID}}/hook-response/{{PARTICLE_EVENT_NAME}}, so a device
 * subscribes to its own).
 * An event triggers the integrations of the device's product, of the user who
 * owns that product personally, and of the org that owns it.
 * An integration is disabled after `disableAfter` failed deliveries in a row.
 * hook-* events never trigger webhooks (no loops).
 *
 * What is sent, and what a response turns into: integrations/request.ts;
 * templates: integrations/template.ts; how it goes out: integrations/send.ts.
 */
import { decode, isProtocolError, parseTopic } from '@flotilla/protocol';
import type { ProductRef } from '../policy/types.js';
import { claimerId, integrationOwnerKey, ownerOfIntegration, ownersOf, type Integration, type IntegrationOwner, type IntegrationStore } from '../store/store.js';
import { heldBack } from '../mqtt/quarantine.js';
import { logThrottle } from '../log-throttle.js';
import type { DeviceRef, Logger } from '../mqtt/deps.js';
import { asIs, eventView, render, responseNameProblem, type TemplateVars } from './template.js';
import { pieces, requestFor, responseData, type WebhookRequest } from './request.js';
import { createSender } from './send.js';
import { targetPolicy } from './targets.js';

export interface WebhookOptions {
  store: Pick<IntegrationStore, 'listIntegrations' | 'recordDelivery'>;
  log: Logger;
  /** Devices the broker has seen → their product (the broker's map). */
  devices: Map<string, DeviceRef>;
  /** Publishes a hook-* event into the product (to subscribed devices and event streams). */
  emit(product: ProductRef, name: string, data: string): void;
  /** Attempts per delivery. */
  attempts: number;
  /** Delay before the first retry; doubled each time. */
  backoffMs: number;
  /** Each attempt's time limit. */
  timeoutMs: number;
  /** Failed deliveries in a row that disable an integration. */
  disableAfter: number;
  /** Attempts in flight at once, across all integrations; more wait (bounded queue below). */
  concurrency: number;
  /**
   * Attempts in flight at once for one product's events: a product whose endpoint hangs holds no more
   * than these, and the others' go on in the rest; a busy product alone still has most of the slots.
   */
  productConcurrency: number;
  /** Deliveries waiting; past it, new ones are dropped and logged (a flood must not eat memory). */
  queueLimit: number;
  /** Deliveries waiting for one product's events: one product's flood leaves the others room in the queue. */
  productQueueLimit: number;
  /**
   * Local, private and reserved address ranges webhooks may target anyway
   * ("10.0.0.0/8", "127.0.0.1"): none by default, so a product's team cannot
   * reach the bridge's own machine or network through a webhook (targets.ts).
   */
  allowTargets: readonly string[];
  /**
   * At close, how long the deliveries queued, in flight or waiting for a retry are given to finish
   * (the listeners are closed by then: no new device events come). What is left then is dropped and logged:
   * the queue is in memory, so a stop or a restart loses it.
   */
  drainMs: number;
}

export const defaultWebhookOptions = {
  attempts: 3, backoffMs: 1000, timeoutMs: 10000, disableAfter: 10, concurrency: 16, productConcurrency: 12, queueLimit: 10000, productQueueLimit: 2500, allowTargets: [] as readonly string[], drainMs: 5000,
};

export interface Webhooks {
  /** A device event from the bus (topic and payload as aedes delivers them); `at`: when the bridge took it (ISO), as the streams show it. */
  onEvent(topic: string, payload: Uint8Array, at?: string): void;
  /**
   * One event published through the API into `products` (a user's personal space is several): their
   * webhooks fire as for a device's, with the device ID "api" (Particle's coreid for them), each
   * integration once however many of the products bring it (a user's own, an org's).
   */
  onApiEvent(products: readonly ProductRef[], name: string, data: string | null, at?: string): void;
  /** Why a webhook URL (template) names an address delivery will refuse, or null (integrations/targets.ts). */
  urlRefusal(url: string): string | null;
  /** An integration changed: its owner's list is read afresh. */
  invalidate(owner: IntegrationOwner): void;
  /** Reads the integrations a product's events trigger ahead of its first event (a device of it connected). */
  warm(product: ProductRef): void;
  /** Resolves when nothing is queued or in flight (tests, shutdown). */
  idle(): Promise<void>;
  /** Waits for idle() for at most drainMs (at close, after the listeners). */
  drain(): Promise<void>;
  close(): void;
}

/** The device ID of an event published through the API, as Particle's webhooks see it (coreid "api"). */
export const API_DEVICE = 'api';

/** Particle splits a webhook's response into events of 512 bytes, at most 100 KB in all (UTF-8, whole characters). */
export const RESPONSE_CHUNK = 512;
export const RESPONSE_MAX = 100 * 1024;
/** A response is read up to this much (a response template may pick a little out of a large JSON document); the rest is not read. */
export const RESPONSE_READ_MAX = 1024 * 1024;

/**
 * The name of a response or error event: the integration's template rendered, or Particle's
 * `<prefix><event>` when it cannot render, or renders to no event name: it is filled in from the
 * event's data, and a line break there wrote events of its own into every stream of the product.
 */
function eventName(template: string | null, prefix: string, vars: TemplateVars): string {
  try {
    if (template !== null) {
      const name = render(template, eventView(vars), asIs);
      if (!responseNameProblem(name)) return name;
    }
  } catch {
    // Past the render limits with this event's data: the default name.
  }
  return prefix + vars.PARTICLE_EVENT_NAME;
}

const triggers = (i: Integration, name: string, deviceId: string): boolean => i.enabled && name.startsWith(i.event) && (i.deviceId === null || i.deviceId === deviceId);

/** One event's delivery to one integration: its attempts run as jobs of the queue, none held between them. */
interface Delivery {
  integration: Integration;
  product: ProductRef;
  vars: TemplateVars;
}

interface Job {
  d: Delivery;
  /** The attempt it is (0 first). */
  n: number;
}

export function createWebhooks(o: WebhookOptions): Webhooks {
  /** Owner key → its integrations once read (the publish path checks them without waiting), or the read under way. */
  const lists = new Map<string, Integration[] | Promise<Integration[]>>();
  const queue: Job[] = [];
  // A full queue drops each event's delivery, and a disabled integration each of its queued ones: a line per
  // integration every 10 s with how many, not one per delivery (up to 50 a second, and 10,000 at once).
  const throttled = logThrottle();
  let running = 0;
  /** Per product: attempts running, and deliveries queued or waiting for a retry. */
  const busy = new Map<string, number>();
  const held = new Map<string, number>();
  /** Retries waiting out their backoff (not in the queue, not running). */
  let resting = 0;
  let closed = false;
  const idlers: (() => void)[] = [];
  const timers = new Set<NodeJS.Timeout>();

  function integrations(owner: IntegrationOwner): Integration[] | Promise<Integration[]> {
    const key = integrationOwnerKey(owner);
    const known = lists.get(key);
    if (known) return known;
    const read: Promise<Integration[]> = o.store.listIntegrations(owner).then(
      (list) => {
        if (lists.get(key) === read) lists.set(key, list);
        return list;
      },
      (e: unknown) => {
        if (lists.get(key) === read) lists.delete(key);
        o.log.error({ err: e, owner: key }, 'webhooks: integrations not read');
        throw e;
      },
    );
    lists.set(key, read);
    return read;
  }

  /** For an event: an owner whose list cannot be read now triggers nothing (logged where the read failed). */
  function integrationsOrNone(owner: IntegrationOwner): Integration[] | Promise<Integration[]> {
    const l = integrations(owner);
    return Array.isArray(l) ? l : l.catch(() => [] as Integration[]);
  }

  const add = (m: Map<string, number>, key: string, by: number): void => {
    const v = (m.get(key) ?? 0) + by;
    if (v > 0) m.set(key, v);
    else m.delete(key);
  };

  /** Starts queued attempts, oldest first, skipping those of a product already at productConcurrency. */
  function pump(): void {
    for (let k = 0; k < queue.length && running < o.concurrency && !closed; ) {
      const job = queue[k];
      const product = job.d.product.productId;
      if ((busy.get(product) ?? 0) >= o.productConcurrency) {
        k++;
        continue;
      }
      queue.splice(k, 1);
      running++;
      add(busy, product, 1);
      // An attempt settles its own failures; anything else escaping it is a bug, logged, never an unhandled rejection.
      void attemptOf(job)
        .catch((e: unknown) => {
          o.log.error({ err: e }, 'webhooks: delivery failed unexpectedly');
          return true;
        })
        .then((ended) => {
          if (ended) add(held, product, -1);
        })
        .finally(() => {
          running--;
          add(busy, product, -1);
          pump();
        });
    }
    if (running === 0 && queue.length === 0 && resting === 0) for (const f of idlers.splice(0)) f();
  }

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        timers.delete(t);
        resolve();
      }, ms);
      timers.add(t);
    });

  const targets = targetPolicy(o.allowTargets);
  const sender = createSender({ timeoutMs: o.timeoutMs, readMax: RESPONSE_READ_MAX, targets });

  /** Publishes a hook event; one that cannot go (a name past the limits) is logged, never thrown into a delivery. */
  function tell(product: ProductRef, name: string, data: string): void {
    try {
      o.emit(product, name, data);
    } catch (e) {
      o.log.warn({ err: e, event: name }, 'webhooks: hook event not published');
    }
  }

  async function attempt(req: WebhookRequest): Promise<{ ok: true; body: string } | { ok: false; error: string }> {
    try {
      const res = await sender.send(req);
      if (res.status >= 200 && res.status < 300) return { ok: true, body: res.body };
      return { ok: false, error: 'HTTP ' + res.status };
    } catch (e) {
      return { ok: false, error: e instanceof Error ? e.message : String(e) };
    }
  }

  /**
   * The integration as it is now: null once deleted or disabled (by its team, or after repeated
   * failures); undefined when the store cannot say now (the delivery waits, it is not dropped).
   */
  async function current(i: Integration): Promise<Integration | null | undefined> {
    let list: Integration[];
    try {
      list = await integrations(ownerOfIntegration(i));
    } catch {
      return undefined;
    }
    const now = list.find((x) => x.id === i.id);
    return now?.enabled ? now : null;
  }

  /** Queues the delivery's next attempt after its backoff, holding no slot meanwhile; false when it had none left. */
  function retry(d: Delivery, n: number): boolean {
    if (n + 1 >= o.attempts) return false;
    resting++;
    void sleep(o.backoffMs * 2 ** n).then(() => {
      resting--;
      if (closed) return;
      // Already admitted: a retry is not refused for a full queue.
      queue.push({ d, n: n + 1 });
      pump();
    });
    return true;
  }

  /**
   * One attempt of a delivery, made from the integration as it is now (a delivery queued before it was
   * deleted, disabled or edited sends nothing, or its new request). One that fails with attempts left
   * comes back after its backoff, holding no slot meanwhile. Resolves whether the delivery ended.
   */
  async function attemptOf({ d, n }: Job): Promise<boolean> {
    const { product, vars } = d;
    const name = vars.PARTICLE_EVENT_NAME;
    const i = await current(d.integration);
    if (i === undefined && !closed) {
      // The store failed: not the endpoint's fault, so nothing is counted against it; the attempt is spent.
      if (retry(d, n)) return false;
      o.log.error({ integration: d.integration.id }, 'webhooks: the integration could not be read for any attempt; its delivery is dropped');
      return true;
    }
    if (!i || closed) {
      if (!closed) throttled('gone ' + d.integration.id, (count) => o.log.info({ integration: d.integration.id, dropped: count }, 'webhooks: the integration was deleted or disabled; its queued deliveries are dropped'));
      return true;
    }
    let req: WebhookRequest;
    try {
      req = requestFor(i, vars);
    } catch (e) {
      // This event's data cannot make a request (a URL template that renders to no URL, a header it would
      // break, a render past the limits): said as a hook-error, but not held against the endpoint, so one
      // device's odd data cannot disable an integration for everyone.
      const why = 'the request could not be made: ' + (e instanceof Error ? e.message : String(e));
      o.log.info({ integration: i.id, error: why }, 'webhooks: no request for this event');
      tell(product, eventName(i.errorResponseTopic, 'hook-error/', vars) + '/0', why);
      return true;
    }
    const r = await attempt(req);
    if (closed) return true;
    if (r.ok) {
      await o.store.recordDelivery(i.id, true, o.disableAfter).catch((e) => o.log.error({ err: e }, 'webhooks: outcome not saved'));
      tell(product, 'hook-sent/' + name, '');
      const responseName = eventName(i.responseTopic, 'hook-response/', vars);
      pieces(responseData(i, r.body), RESPONSE_CHUNK, RESPONSE_MAX).forEach((piece, k) => tell(product, responseName + '/' + k, piece));
      return true;
    }
    if (retry(d, n)) return false;
    const after = await o.store.recordDelivery(i.id, false, o.disableAfter).catch((e) => {
      o.log.error({ err: e }, 'webhooks: outcome not saved');
      return null;
    });
    o.log.info({ integration: i.id, url: i.url, error: r.error }, 'webhooks: delivery failed');
    tell(product, eventName(i.errorResponseTopic, 'hook-error/', vars) + '/0', r.error);
    if (after && !after.enabled) {
      lists.delete(integrationOwnerKey(ownerOfIntegration(after)));
      // Said once: by the delivery whose failure disabled it.
      if (after.disabledNow) o.log.warn({ integration: i.id, failures: after.failures }, 'webhooks: disabled after repeated failures');
    }
    return true;
  }

  /**
   * Queues the deliveries of the integrations that one event `name` from `deviceId` into `products`
   * triggers: each owner's once, for the first of the products that has it as an owner. Cheap first:
   * most events match no integration, so the data (`dataOf`: null when it is no event) is read only
   * for those that do.
   */
  function fire(products: readonly ProductRef[], name: string, deviceId: string, device: DeviceRef | null, dataOf: () => string | null, at: string): void {
    // The bridge's own events (hook responses, spark/*) never trigger a webhook, whoever published them.
    if (name.startsWith('hook-') || name.startsWith('spark/')) return;
    const owners = new Map<string, { owner: IntegrationOwner; product: ProductRef }>();
    for (const product of products) {
      for (const owner of ownersOf(product)) if (!owners.has(integrationOwnerKey(owner))) owners.set(integrationOwnerKey(owner), { owner, product });
    }
    const by = [...owners.values()];
    const found = by.map((x) => integrationsOrNone(x.owner));
    if (found.every((l) => Array.isArray(l) && !l.some((i) => triggers(i, name, deviceId)))) return;
    let data: string | null;
    try {
      data = dataOf();
    } catch (e) {
      if (isProtocolError(e)) return;
      throw e;
    }
    if (data === null) return;
    const enqueue = (owned: Integration[][]) => {
      for (let k = 0; k < owned.length; k++) for (const i of owned[k]) queueOne(i, by[k].product);
      pump();
    };
    const queueOne = (i: Integration, product: ProductRef): void => {
      if (!triggers(i, name, deviceId)) return;
      const vars: TemplateVars = {
        PARTICLE_EVENT_NAME: name, PARTICLE_EVENT_VALUE: data, PARTICLE_DEVICE_ID: deviceId, PARTICLE_PUBLISHED_AT: at, PRODUCT_ID: product.productId,
        PRODUCT_VERSION: device?.firmwareVersion == null ? '' : String(device.firmwareVersion),
        PRODUCT_USER_ID: (device && claimerId(device)) ?? '',
      };
      if (queue.length >= o.queueLimit || (held.get(product.productId) ?? 0) >= o.productQueueLimit) {
        throttled('full ' + i.id, (count) => o.log.warn({ integration: i.id, product: product.productId, dropped: count }, 'webhooks: queue full, deliveries dropped'));
        return;
      }
      add(held, product.productId, 1);
      queue.push({ d: { integration: i, product, vars }, n: 0 });
    };
    if (found.every((l): l is Integration[] => Array.isArray(l))) enqueue(found);
    else void Promise.all(found).then(enqueue).catch((e: unknown) => o.log.error({ err: e }, 'webhooks: deliveries not queued'));
  }

  return {
    urlRefusal: targets.urlRefusal,
    onEvent(topic, payload, at = new Date().toISOString()) {
      if (closed) return;
      // Cheap first: most events match no integration, and decoding them would tax every publish.
      let t;
      try {
        t = parseTopic(topic);
      } catch (e) {
        if (isProtocolError(e)) return;
        throw e;
      }
      if (t.root !== 'dev' || t.channel !== 'evt') return;
      const deviceId = t.deviceId;
      const ref = o.devices.get(deviceId);
      if (!ref || heldBack(ref, t.event)) return;
      fire([ref.product], t.event, deviceId, ref, () => {
        const m = decode(payload);
        if (m.kind !== 'event') return null;
        return m.data === null ? '' : m.data instanceof Uint8Array ? Buffer.from(m.data).toString('base64') : String(m.data);
      }, at);
    },
    onApiEvent(products, name, data, at = new Date().toISOString()) {
      if (closed) return;
      fire(products, name, API_DEVICE, null, () => data ?? '', at);
    },
    warm(product) {
      for (const owner of ownersOf(product)) void integrationsOrNone(owner);
    },
    invalidate(owner) {
      lists.delete(integrationOwnerKey(owner));
    },
    idle() {
      if (running === 0 && queue.length === 0 && resting === 0) return Promise.resolve();
      return new Promise((resolve) => idlers.push(resolve));
    },
    async drain() {
      let t: NodeJS.Timeout | undefined;
      await Promise.race([this.idle(), new Promise<void>((r) => (t = setTimeout(r, o.drainMs)))]);
      clearTimeout(t);
    },
    close() {
      const dropped = queue.length + running + resting;
      if (dropped > 0 && !closed) o.log.warn({ dropped, drainMs: o.drainMs }, 'webhooks: deliveries not finished at close, dropped');
      closed = true;
      queue.length = 0;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      sender.close();
      for (const f of idlers.splice(0)) f();
    },
  };
}
