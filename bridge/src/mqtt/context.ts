/** The shared state the hooks and handlers work with: one per broker. */
import type { DeviceSubscriptions } from './subscriptions.js';
import type { Hello, Messages, ParsedTopic } from '@flotilla/protocol';
import type { BrokerStore, DeviceRef, Logger } from './deps.js';
import type { RequestRouter } from './requests.js';
import type { UsageTally } from '../telemetry/data-ops.js';
import type { Bucket, DeviceBudget, DeviceRates, Rate } from './budget.js';

/** What OTA delivery (bridge/src/ota) is told about devices; the broker knows nothing else of it. */
export interface DeviceOtaHooks {
  /** After the hello is stored; `live` says whether the connection it came on is still open. */
  hello(deviceId: string, hello: Hello, live: () => boolean): void;
  status(deviceId: string, status: Messages['otaStatus']): void;
  /** The device's session ended (it is offline). */
  offline(deviceId: string): void;
}

export interface BrokerContext {
  store: BrokerStore;
  log: Logger;
  /**
   * Devices this broker has seen → their product and customer: what delivery
   * decisions need, synchronously. Kept after a device disconnects (events about
   * it are still being delivered); refreshed on connect and by refreshDevice.
   */
  devices: Map<string, DeviceRef>;
  requests: RequestRouter;
  /** Subscriptions an app's session holds at once (BrokerOptions.appSubscriptionsMax). */
  appSubscriptionsMax: number;
  /** Connected devices' event name prefixes (from their hello), by product: who gets a cloud event. */
  subscriptions: DeviceSubscriptions;
  /** Connected devices whose hello reported a rollback → the version rolled back from: the crash they report in that session was that image's. */
  rolledBack: Map<string, number>;
  /** Devices heard since the last flush → when; written in one batch (a write per message would cap throughput). */
  heard: Map<string, number>;
  /** Traffic since the last flush, per "productId day" (UTC): written with last_heard, in one batch. */
  usage: Map<string, UsageTally>;
  /** Topics delivered recently → parsed (null: not a protocol topic), for authorizeForward. */
  topicCache: Map<string, ParsedTopic | null>;
  /** Devices → their publish budgets, kept across sessions (dropped once refilled, offline). */
  budgets: Map<string, DeviceBudget>;
  /**
   * Accounts (auditKey: a user, an API user, a customer) → the audit budget their app sessions share,
   * whatever token each holds: opening sessions, or minting tokens, gets no more audited decisions than
   * one session (dropped once refilled with no session open).
   */
  auditBudgets: Map<string, Bucket>;
  /** What devices' budgets refill at (events, every packet, stored reports); `packets` is every client's flood limit. */
  rates: DeviceRates & {
    /** What an app's session makes the bridge store: its audited decisions (subscriptions refused or on one device, requests). */
    audits: Rate;
  };
  /** Set by the composition root once OTA delivery exists; null in a bare broker. */
  ota: DeviceOtaHooks | null;
  now(): Date;
  /** Publishes a message from the bridge itself (bypasses the client hooks). */
  publish(topic: string, payload: Uint8Array, qos: 0 | 1): void;
}
