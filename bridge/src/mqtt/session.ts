/**
 * What the broker knows about a connected client, computed once at CONNECT so
 * the publish and delivery paths decide without touching the database.
 */
import type { Actor, ProductRef } from '../policy/types.js';
import type { Bucket, DeviceBudget } from './budget.js';

export type Session =
  | {
      kind: 'device';
      deviceId: string;
      product: ProductRef;
      /** The customer that claimed it, when one has. */
      customerId: string | null;
      /** The user that claimed it, when one has. */
      ownerUserId: string | null;
      /** The version it ran when it last connected (its hello updates the broker's map, not this). */
      firmwareVersion: number | null;
      quarantined: boolean;
      actor: Actor;
      /** The three cloud → device topics it may subscribe to. */
      inbox: readonly string[];
      /** Its publish budgets: the device's (BrokerContext.budgets), shared by its sessions. */
      budget: DeviceBudget;
    }
  | (TokenHolder & {
      kind: 'operator';
      clientId: string;
      /** "product/customer" of a device → may it watch that device's events (memo of decide(), cleared on refresh). */
      watch: Map<string, boolean>;
      /** Publish budget, against floods. */
      packets: Bucket;
      /** What it may make the bridge store: its audited decisions (BrokerContext.rates.audits). */
      audits: Bucket;
      /** The filters it was granted (at most BrokerContext.appSubscriptionsMax). */
      filters: Set<string>;
    });

/**
 * What an operator's MQTT session and an HTTP event stream keep of the token
 * that opened them, so a revocation, a deletion or the token's expiry can end them.
 */
export interface TokenHolder {
  actor: Actor;
  /** SHA-256 (hex) of the token. */
  tokenHash: string;
  /** When the token expires (ms since the epoch); null: never. */
  expiresAt: number | null;
}

/** aedes clients carry their session on this property. */
export interface WithSession {
  id: string;
  session?: Session;
  /** aedes' own flag: false once the connection has closed. */
  connected?: boolean;
}
