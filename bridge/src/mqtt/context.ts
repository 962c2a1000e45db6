/** The shared state the hooks and handlers work with: one per broker. */
import type { ProductRef } from '../policy/types.js';
import type { BrokerStore, Logger } from './deps.js';
import type { RequestRouter } from './requests.js';

export interface BrokerContext {
  store: BrokerStore;
  log: Logger;
  /** Devices connected to this broker → their product (what delivery decisions need, synchronously). */
  devices: Map<string, ProductRef>;
  requests: RequestRouter;
  now(): Date;
  /** Publishes a message from the bridge itself (bypasses the client hooks). */
  publish(topic: string, payload: Uint8Array, qos: 0 | 1): void;
}
