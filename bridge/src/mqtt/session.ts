/**
 * What the broker knows about a connected client, computed once at CONNECT so
 * the publish and delivery paths decide without touching the database.
 */
import type { Actor } from '../policy/types.js';
import type { DeviceRef } from './deps.js';
import type { Bucket, DeviceBudget } from './budget.js';

/** What the cloud counts of a device's session (protocol SERVICE_VITALS). */
export interface DeviceService {
  /** When its CONNECT was accepted (ms). */
  since: number;
  /** Events taken from it. */
  events: number;
  /** Its last request → reply, as the cloud timed it (ms); null before any. */
  roundTrip: number | null;
}

export type Session =
  | {
      kind: 'device';
      deviceId: string;
      /** Its product, claimers, version and quarantine as read at CONNECT: what the broker's map of devices starts from (its hello, a refresh, replace that entry, not this). */
      ref: DeviceRef;
      actor: Actor;
      /** The three cloud → device topics it may subscribe to. */
      inbox: readonly string[];
      /** Its publish budgets: the device's (BrokerContext.budgets), shared by its sessions. */
      budget: DeviceBudget;
      /** The cloud's own view of this session, added to each vitals report under Particle's `service` names. */
      service: DeviceService;
    }
  | (TokenHolder & {
      kind: 'operator';
      clientId: string;
      /** "product/customer" of a device → may it watch that device's events (memo of decide(), cleared on refresh). */
      watch: Map<string, boolean>;
      /** Publish budget, against floods. */
      packets: Bucket;
      /** What it may make the bridge store: its audited decisions (BrokerContext.rates.audits), shared by its account's sessions (auditBudgets). */
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
