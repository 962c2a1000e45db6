/**
 * What the broker needs from the rest of the bridge: a narrow view of the
 * store (the SQLite store satisfies it), a clock and a logger.
 */
import type { ErrorReport, Hello, VitalValues } from '@flotilla/protocol';
import type { Memberships, ProductRef } from '../policy/types.js';

export interface TokenSubject {
  kind: 'user' | 'customer' | 'apiUser';
  id: string;
}

export interface BrokerStore {
  verifyDeviceSecret(deviceId: string, secret: string): Promise<boolean>;
  /** The device's product, or null for an unknown device. */
  deviceProduct(deviceId: string): Promise<ProductRef | null>;
  productRef(productIdOrSlug: string): Promise<ProductRef | null>;
  findToken(token: string): Promise<{ subject: TokenSubject; expiresAt: Date | null; revokedAt: Date | null; scopes: string[] } | null>;
  memberships(userId: string): Promise<Memberships>;
  recordHello(deviceId: string, hello: Pick<Hello, 'firmware' | 'variables' | 'functions'>, at: Date): Promise<void>;
  setOnline(deviceId: string, online: boolean, at: Date): Promise<void>;
  recordVitals(deviceId: string, values: VitalValues, at: Date): Promise<void>;
  recordError(deviceId: string, report: ErrorReport, at: Date): Promise<void>;
  audit(entry: AuditEntry): Promise<void>;
}

export interface AuditEntry {
  at: Date;
  actorKind: string;
  actorId: string;
  action: string;
  resourceKind: string;
  resourceId: string;
  allowed: boolean;
  status: number;
  reason: string;
}

export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}
