/**
 * What the broker needs from the rest of the bridge: a narrow view of the
 * store (the SQLite store satisfies it), a clock and a logger.
 */
import type { ErrorReport, Hello, SampleValues } from '@flotilla/protocol';
import type { ActorStore } from '../identity/actor.js';
import type { AuditEntry, ClaimCode, DeviceRef, TokenSubject, UsageCount } from '../store/store.js';

export type { AuditEntry, DeviceRef, TokenSubject, UsageCount };

export interface BrokerStore extends ActorStore {
  verifyDeviceSecret(deviceId: string, secret: string): Promise<boolean>;
  /** The device's product and the customer that claimed it, or null for an unknown device. */
  deviceAccess(deviceId: string): Promise<DeviceRef | null>;
  findToken(token: string): Promise<{ subject: TokenSubject; expiresAt: Date | null; revokedAt: Date | null; scopes: string[] } | null>;
  recordHello(deviceId: string, hello: Pick<Hello, 'firmware' | 'variables' | 'functions'>, at: Date, handshakeAt?: Date): Promise<void>;
  setOnline(deviceId: string, online: boolean, at: Date, ip?: string | null): Promise<void>;
  touchMany(heard: ReadonlyArray<readonly [deviceId: string, at: Date]>): Promise<void>;
  recordVitals(deviceId: string, values: SampleValues, at: Date): Promise<void>;
  recordError(deviceId: string, report: ErrorReport, at: Date, firmwareVersion?: number | null): Promise<void>;
  audit(entry: AuditEntry): Promise<void>;
  recordUsage(rows: readonly UsageCount[]): Promise<void>;
  findClaimCode(code: string): Promise<ClaimCode | null>;
  spendClaimCode(code: string, deviceId: string): Promise<boolean>;
}

export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}
