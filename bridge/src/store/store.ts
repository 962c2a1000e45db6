/**
 * The bridge's persistence, as one interface. The SQLite implementation is in
 * ./sqlite (openSqliteStore); the schema (typeorm entities and migrations) in
 * ./schema is shared with a future PostgreSQL implementation.
 *
 * Conventions:
 *   - every method is async and is one atomic unit: it either did all of its
 *     writes or none;
 *   - refusals are StoreError (code `conflict`, `not_found`, `invalid`); a
 *     lookup that finds nothing answers null;
 *   - times are Dates in the API (the database keeps epoch milliseconds);
 *   - secrets (passwords, device secrets, tokens) are never stored: passwords
 *     and device secrets as scrypt hashes, tokens as their SHA-256.
 */
import type { ErrorReport, ErrorSource, Hello, Role, VarType, SampleValues } from '@flotilla/protocol';
import type { Memberships, ProductRef } from '../policy/types.js';

export type { Memberships, ProductRef };

export type StoreErrorCode =
  /** A unique name, slug, membership or id is taken; or the change would break a team rule. */
  | 'conflict'
  /** The row the change refers to (user, org, product, device) does not exist. */
  | 'not_found'
  /** The arguments can never be stored (empty name, both owners, a bad device id, ...). */
  | 'invalid';

export class StoreError extends Error {
  readonly code: StoreErrorCode;
  constructor(code: StoreErrorCode, message: string) {
    super(message);
    this.name = 'StoreError';
    this.code = code;
  }
}

export function isStoreError(e: unknown, code?: StoreErrorCode): e is StoreError {
  return e instanceof StoreError && (code === undefined || e.code === code);
}

// ---------------------------------------------------------------- accounts

export interface User {
  /** 24 lowercase hex characters, like Particle's ids. */
  id: string;
  /** Lowercased and trimmed: usernames are e-mail addresses in Particle's API. */
  username: string;
  createdAt: Date;
}

export type SubjectKind = 'user' | 'customer' | 'apiUser';

/** Whom a token acts for. */
export interface TokenSubject {
  kind: SubjectKind;
  id: string;
}

export interface IssueTokenInput {
  subject: TokenSubject;
  /** The OAuth client the token was issued to (`particle-cli`, a product's client id, ...). */
  clientId: string;
  scopes: string[];
  /** Lifetime; null for a token that never expires (Particle's `expires_in=0`). */
  ttlSeconds: number | null;
  /** Also issue a refresh token (OAuth password grant). */
  refresh?: boolean;
}

export interface IssuedToken {
  /** base64url of 32 random bytes: what the client presents. Only its SHA-256 is stored. */
  token: string;
  expiresAt: Date | null;
  /** Present when asked for (`refresh: true`); also stored only as SHA-256. */
  refreshToken: string | null;
}

/** Characters of a token's SHA-256 (hex) that name it in listings: not a credential. */
export const TOKEN_HANDLE_LENGTH = 20;

/** The longest token lifetime, seconds (100 years): past it an expiry is no date every client can read (and past 8.64e12 s none at all). */
export const MAX_TOKEN_TTL_SECONDS = 100 * 365 * 24 * 3600;

/**
 * A refresh token works until this long after its access token expired: one never used is forgotten (and
 * pruned), not a credential kept for good that its user cannot see. An access token that never expires has
 * no such end.
 */
export const REFRESH_GRACE_MS = 90 * 24 * 3600 * 1000;

/**
 * A stored token, valid or not: the caller tells expired and revoked tokens
 * apart (the policy answers both with 401 and says which in the audit).
 */
export interface TokenRecord {
  /** A handle for listings and revocation: the start of the token's SHA-256, never the token. */
  id: string;
  subject: TokenSubject;
  clientId: string;
  scopes: string[];
  expiresAt: Date | null;
  revokedAt: Date | null;
  createdAt: Date;
}

// ---------------------------------------------------------------- teams

export interface Org {
  id: string;
  name: string;
  /** Derived from the name: lowercase letters, digits and dashes. */
  slug: string;
  ownerUserId: string;
  createdAt: Date;
}

/** Free-form product settings (JSON). */
export type ProductSettings = { [key: string]: unknown };

export interface Product {
  /** Integer, as Particle's product ids. */
  id: number;
  name: string;
  /** Never all digits, so `productRef(idOrSlug)` cannot mistake one for the other. */
  slug: string;
  /** Exactly one of ownerUserId and orgId is set. */
  ownerUserId: string | null;
  orgId: string | null;
  settings: ProductSettings;
  createdAt: Date;
}

/**
 * A product id as callers hold it: the integer, or its decimal string (the
 * policy's ProductRef.productId and URL paths carry strings). Anything else
 * is refused as invalid.
 */
export type ProductId = number | string;

export type OwnerOf = { ownerUserId: string; orgId?: undefined } | { orgId: string; ownerUserId?: undefined };

export type CreateProductInput = { name: string; slug: string; settings?: ProductSettings } & OwnerOf;

/** A role a team member can be given: every role but Owner, which only the org or product row holds. */
export type MemberRole = Exclude<Role, 'owner'>;

/** A member of an org's or a product's own team (policy/team.ts TeamMember). */
export interface TeamMember {
  userId: string;
  role: Role;
}

/** Which team: an org's or a product's. */
export type TeamRef = { orgId: string; productId?: undefined } | { productId: ProductId; orgId?: undefined };

/** A pending invitation to a team; accepted ones are kept (acceptedAt set) and no longer listed. */
export interface Invitation {
  id: string;
  orgId: string | null;
  productId: number | null;
  email: string;
  role: MemberRole;
  invitedBy: string;
  createdAt: Date;
}

/** A product-team membership that joining the product's org removed. */
export interface RemovedProductMembership {
  productId: string;
  role: Role;
}

// ---------------------------------------------------------------- devices

export interface Device {
  /** 24 lowercase hex characters. */
  id: string;
  name: string | null;
  notes: string | null;
  productId: number;
  ownerUserId: string | null;
  customerId: string | null;
  /** Version of the running application image, from the last hello. */
  firmwareVersion: number | null;
  /** Particle's device object shape: variable name → type. */
  variables: { [name: string]: VarType };
  functions: string[];
  online: boolean;
  lastHeard: Date | null;
  lastHandshakeAt: Date | null;
  /** The address its last session came from (Particle's last_ip_address). */
  lastIpAddress: string | null;
  development: boolean;
  quarantined: boolean;
  lockedFirmware: number | null;
  createdAt: Date;
}

export interface DeviceChanges {
  name?: string | null;
  notes?: string | null;
  development?: boolean;
  quarantined?: boolean;
  /** The firmware version the device is locked to; null unlocks. */
  lockedFirmware?: number | null;
}

export interface CreateDeviceInput {
  id: string;
  productId: ProductId;
  name?: string | null;
}

export type HelloFacts = Pick<Hello, 'firmware' | 'variables' | 'functions'>;

// ---------------------------------------------------------------- telemetry

export interface VitalsSample {
  at: Date;
  values: SampleValues;
}

/** Errors of one product, counted per (source, name, message, firmware version). */
export interface ErrorGroup {
  source: ErrorSource;
  /** The variable, function or subscription involved, or ''. */
  name: string;
  message: string;
  firmwareVersion: number | null;
  /** Sum of the reports' counts (a report can stand for several occurrences). */
  count: number;
  /** How many distinct devices reported it. */
  devices: number;
  lastAt: Date;
}

/** One error report as a device sent it, with when it came and the firmware it ran. */
export interface DeviceErrorReport extends ErrorReport {
  at: Date;
  firmwareVersion: number | null;
}

/** Traffic of a product on a day (UTC), as the broker counts it. */
export interface UsageCount {
  productId: ProductId;
  /** 'YYYY-MM-DD', UTC. */
  day: string;
  messages: number;
  bytes: number;
  /** Devices that sent something that day. */
  devices: readonly string[];
  /** Data operations (Particle's billing unit; docs/organizations.md says what counts); 0 when absent. */
  dataOps?: number;
}

export interface UsageDay {
  day: string;
  /** Distinct devices active that day. */
  devices: number;
  messages: number;
  bytes: number;
  dataOps: number;
  /** Cellular data of the product's SIMs, as their carrier reported it. */
  simBytes: number;
}

/** What a decision about one device needs: its product, and the customer that claimed it. */
export interface DeviceRef {
  product: ProductRef;
  customerId: string | null;
  /** The user who claimed it, when one has: theirs in their personal space (GET /v1/devices, /v1/devices/events), whatever product it is of. */
  ownerUserId: string | null;
  /** The version it last said it runs (product event streams and webhooks show it); null before its first hello. */
  firmwareVersion: number | null;
  /** Held apart by its team: its events reach no one, and it takes no update (Particle's quarantine). */
  quarantined: boolean;
}

/** Who the device is its user's: the user who claimed it, else its customer (Particle's `userid` and `PRODUCT_USER_ID`). */
export function claimerId(ref: DeviceRef): string | null {
  return ref.ownerUserId ?? ref.customerId;
}

/** One decision of the policy, as the broker and the HTTP API record it. */
export interface AuditEntry {
  at: Date;
  /** 'anonymous', 'user', 'customer', 'apiUser', 'device', 'invalid', ... */
  actorKind: string;
  /** '' when the actor has none (anonymous). */
  actorId: string;
  action: string;
  resourceKind: string;
  resourceId: string;
  allowed: boolean;
  /** HTTP-like status of the decision: 200, 401, 403, 404. */
  status: number;
  reason: string;
}

export interface AuditRecord extends AuditEntry {
  /** Increases with every entry written. */
  id: number;
}

export interface AuditFilter {
  actorKind?: string;
  actorId?: string;
  resourceKind?: string;
  resourceId?: string;
  action?: string;
  allowed?: boolean;
  /** Inclusive. */
  since?: Date;
  /** Exclusive. */
  until?: Date;
  /** Newest first; default 100, at most 10,000. */
  limit?: number;
}

// ---------------------------------------------------------------- the store

export interface UserStore {
  /** conflict: the username is taken; invalid: empty username or password. */
  createUser(username: string, password: string): Promise<User>;
  getUser(id: string): Promise<User | null>;
  /** False on a fresh database: the bridge then creates its first owner. */
  hasUsers(): Promise<boolean>;
  /** The account the bridge made at its first start (--owner): the bridge's owner, who makes accounts while sign-up is off. */
  bridgeOwnerId(): Promise<string | null>;
  /** The user when the password matches; null for a wrong password or an unknown user (both take one scrypt). */
  verifyPassword(username: string, password: string): Promise<User | null>;
  /** By username, case-insensitively. */
  findUser(username: string): Promise<User | null>;
  /** A new username and/or password. not_found: no such user; conflict: the username is taken; invalid: an empty one. */
  updateUser(id: string, changes: { username?: string; password?: string }): Promise<User>;
}

export interface TokenStore {
  /** invalid: ttlSeconds ≤ 0 or not an integer. */
  issueToken(input: IssueTokenInput): Promise<IssuedToken>;
  /** Looked up by SHA-256; returned even when expired or revoked. */
  findToken(token: string): Promise<TokenRecord | null>;
  /** Revokes the token whose access or refresh token this is. True when it was not revoked before. */
  revokeToken(token: string): Promise<boolean>;
  /** The subject's tokens that still work (not revoked; not expired, or refreshable within REFRESH_GRACE_MS), newest first. */
  listTokens(subject: TokenSubject): Promise<TokenRecord[]>;
  /**
   * Revokes the subject's tokens not revoked yet (expired ones too: their
   * refresh tokens still work): every one, or only the one with handle `id`. Returns the SHA-256 of each token revoked, so live
   * sessions opened with them can be cut.
   */
  revokeTokensOf(subject: TokenSubject, id?: string): Promise<string[]>;
  /**
   * Refresh grant: revokes the token that `refreshToken` belongs to and issues
   * a new one (with a new refresh token) for the same subject, client and
   * scopes. Null when the refresh token is unknown or already used/revoked, or
   * was issued to a client not in `clients` (RFC 6749 §6: the client that
   * authenticated), which leaves it unspent.
   */
  refreshToken(refreshToken: string, ttlSeconds: number | null, clients: readonly string[]): Promise<IssuedToken | null>;
}

export interface TeamStore {
  /** conflict: name or its slug taken; not_found: no such user; invalid: empty name. */
  createOrg(name: string, ownerUserId: string): Promise<Org>;
  getOrg(idOrSlug: string): Promise<Org | null>;
  /**
   * Adds a member to an org's team and removes their product-team
   * memberships on the org's products (organizations.md: the org role now
   * grants access to all of them); returns those removed.
   * conflict: already a member, or the org's Owner; not_found: org or user.
   */
  addOrgMember(orgId: string, userId: string, role: MemberRole): Promise<RemovedProductMembership[]>;
  /** False when they were not a member. The Owner is not a member and cannot be removed. */
  removeOrgMember(orgId: string, userId: string): Promise<boolean>;
  /** The org's Owner (role 'owner') then its members. */
  orgTeam(orgId: string): Promise<TeamMember[]>;
  /**
   * conflict: slug taken; invalid: both or neither owner, empty name, a slug
   * that is all digits or not lowercase letters, digits and dashes;
   * not_found: no such user or org.
   */
  createProduct(input: CreateProductInput): Promise<Product>;
  getProduct(idOrSlug: string | number): Promise<Product | null>;
  /**
   * conflict: already a member, the product's Owner, or someone who already
   * has access through the product's org; not_found: product or user.
   */
  addProductMember(productId: ProductId, userId: string, role: MemberRole): Promise<void>;
  removeProductMember(productId: ProductId, userId: string): Promise<boolean>;
  /** The product's own team: its Owner (personal product) then its members; not the org's members. */
  productTeam(productId: ProductId): Promise<TeamMember[]>;
  /**
   * Every role the user holds, as the policy reads them: owned orgs and
   * personal products as 'owner', then team memberships. Ids are strings.
   */
  memberships(userId: string): Promise<Memberships>;
  /** The ids of an org's products. */
  orgProductIds(orgId: string): Promise<number[]>;
  /** Merges `changes` into the product's settings (a key set to null is removed); returns the product. */
  updateProductSettings(productId: ProductId, changes: ProductSettings): Promise<Product>;
  /** Products by id, oldest first (unknown ids are skipped). */
  productsByIds(ids: readonly number[]): Promise<Product[]>;
  /** A member's new role; false when they are not on that team. */
  setOrgMemberRole(orgId: string, userId: string, role: MemberRole): Promise<boolean>;
  setProductMemberRole(productId: ProductId, userId: string, role: MemberRole): Promise<boolean>;
  /** `email`: a username, or the address of someone who has no account yet. invalid: bad role or empty; conflict: a pending invitation for that address exists; not_found: team or inviter. */
  createInvitation(input: { team: TeamRef; email: string; role: MemberRole; invitedBy: string }): Promise<Invitation>;
  /** Pending invitations of a team, or addressed to an e-mail (a user's username). */
  invitations(of: TeamRef | { email: string }): Promise<Invitation[]>;
  getInvitation(id: string): Promise<Invitation | null>;
  /** Removes a pending invitation (declined or withdrawn); false when there was none. */
  deleteInvitation(id: string): Promise<boolean>;
  /** Marks it accepted; the caller adds the member (addOrgMember / addProductMember). */
  acceptInvitation(id: string): Promise<boolean>;
  /** By integer id (number or digit string) or slug. */
  productRef(productIdOrSlug: string | number): Promise<ProductRef | null>;
}

export interface DeviceStore {
  /** conflict: id taken; invalid: not 24 lowercase hex; not_found: no such product. */
  createDevice(input: CreateDeviceInput): Promise<Device>;
  getDevice(id: string): Promise<Device | null>;
  /** The product the device belongs to, as the policy reads it; null for an unknown device. */
  deviceProduct(deviceId: string): Promise<ProductRef | null>;
  /** What deciding about a device needs: its product, and the customer that claimed it. */
  deviceAccess(deviceId: string): Promise<DeviceRef | null>;
  /** The devices of a product a user claimed. */
  listDevicesClaimedBy(userId: string, productId: ProductId): Promise<Device[]>;
  listDevices(productId: ProductId): Promise<Device[]>;
  /** Sets (or replaces) the device's secret, clearing a revocation. not_found: no such device. */
  setDeviceSecret(deviceId: string, secret: string): Promise<void>;
  /** False for an unknown device, a device without a secret, a revoked credential or a wrong secret. */
  verifyDeviceSecret(deviceId: string, secret: string): Promise<boolean>;
  /** Firmware, variables and functions from a hello; marks the device online and heard at `at`, handshaken at `handshakeAt` (its session's start; default `at`). */
  recordHello(deviceId: string, hello: HelloFacts, at: Date, handshakeAt?: Date): Promise<void>;
  /** Going online also counts as heard. */
  /** `ip`: going online, the address the session came from. */
  setOnline(deviceId: string, online: boolean, at: Date, ip?: string | null): Promise<void>;
  /**
   * Every device offline: at start, when no session exists yet (a process that was killed left its
   * devices marked online, for good). Answers how many were.
   */
  setAllOffline(): Promise<number>;
  /** last_heard = at. */
  touch(deviceId: string, at: Date): Promise<void>;
  /** Edits a device (null clears name, notes, the firmware lock); returns the device. not_found: no such device. */
  updateDevice(deviceId: string, changes: DeviceChanges): Promise<Device>;
  /** Removes the device and everything about it (credentials, vitals, group memberships). False when unknown. */
  deleteDevice(deviceId: string): Promise<boolean>;
  /** The user who claimed the device (Particle's owner), or null to unclaim. not_found: no such device. */
  setDeviceOwner(deviceId: string, userId: string | null): Promise<void>;
  /** Many devices heard, in one transaction (the broker batches last_heard; unknown ids are skipped). */
  touchMany(heard: ReadonlyArray<readonly [deviceId: string, at: Date]>): Promise<void>;
}

export interface TelemetryStore {
  /** Replaces the latest vitals (unless newer ones are stored) and appends to the history, in one transaction. */
  recordVitals(deviceId: string, values: SampleValues, at: Date): Promise<void>;
  latestVitals(deviceId: string): Promise<VitalsSample | null>;
  /** The latest vitals of every device of a product that has some, by device id: one query for a fleet's health. */
  latestVitalsOfProduct(productId: ProductId): Promise<Map<string, VitalsSample>>;
  /** Oldest first, `from` inclusive, `to` exclusive; at most `limit` samples (default and maximum 10,000), the newest of the range when it holds more. */
  vitalsHistory(deviceId: string, from: Date, to: Date, limit?: number): Promise<VitalsSample[]>;
  /** Stored with the device's product and current firmware version. not_found: unknown device. */
  /** Filed under `firmwareVersion` when given (a crash of an image since rolled back), else the version the device last said it runs. */
  recordError(deviceId: string, report: ErrorReport, at: Date, firmwareVersion?: number | null): Promise<void>;
  /** Most frequent first. */
  errorsByProduct(productId: ProductId): Promise<ErrorGroup[]>;
  /** A device's error reports from `from` to `to`, newest first, at most `limit`. */
  deviceErrors(deviceId: string, from: Date, to: Date, limit?: number): Promise<DeviceErrorReport[]>;
  /** Adds a batch of usage counts (the broker flushes them every few seconds), in one transaction. */
  recordUsage(rows: readonly UsageCount[]): Promise<void>;
  /** Usage of a product per day, `from` to `to` inclusive ('YYYY-MM-DD', UTC), oldest first; days without traffic are absent. */
  usage(productId: ProductId, from: string, to: string): Promise<UsageDay[]>;
  /**
   * Records a decision. Entries are written in batches (within about 20 ms, one
   * transaction each): a crash can lose the last few, nothing else does.
   * auditLog() and close() write what is pending first.
   */
  audit(entry: AuditEntry): Promise<void>;
  auditLog(filter?: AuditFilter): Promise<AuditRecord[]>;
  /**
   * Deletes vitals history, error reports and audit entries older than their
   * cutoff (null: keeps them all), and credentials that stopped working
   * before theirs, in batches; answers how many of each went. The latest
   * vitals of each device stay.
   */
  prune(before: PruneCutoffs): Promise<PruneCounts>;
}

export interface PruneCutoffs {
  vitals: Date | null;
  errors: Date | null;
  audit: Date | null;
  /**
   * Claim codes and authorization codes expired before it; access tokens
   * revoked before it, or that stopped working before it: expired, with no
   * refresh token or one past its REFRESH_GRACE_MS.
   */
  credentials: Date | null;
}

export type PruneCounts = { [K in keyof PruneCutoffs]: number };

/** A product's end user; `passwordHash` is absent for one created by the product's back end. */
export interface Customer {
  id: string;
  productId: number;
  username: string;
  hasPassword: boolean;
  createdAt: Date;
}

/** The domain of API users' usernames (`<name>+<id>@api.flotilla.invalid`): no person's username may end in it. */
export const API_USER_DOMAIN = 'api.flotilla.invalid';

/** A program acting for one org or one product, with the actions it may take. */
export interface ApiUser {
  id: string;
  username: string;
  orgId: string | null;
  productId: number | null;
  scopes: string[];
  createdAt: Date;
}

export interface CustomerStore {
  /** A customer of a product; `password` null for one created by the product's back end (two-legged auth). */
  createCustomer(input: { productId: ProductId; username: string; password: string | null }): Promise<Customer>;
  getCustomer(id: string): Promise<Customer | null>;
  /** By product and username (case-insensitive). */
  findCustomer(productId: ProductId, username: string): Promise<Customer | null>;
  listCustomers(productId: ProductId): Promise<Customer[]>;
  /** The ids of the devices a customer holds, in order (by an index: not the product's whole fleet). */
  customerDevices(customerId: string): Promise<string[]>;
  /** Sets (or, with null, removes) the customer's password. not_found: no such customer. */
  setCustomerPassword(id: string, password: string | null): Promise<void>;
  /** Deletes the customer; their devices become unclaimed and their tokens useless. */
  deleteCustomer(id: string): Promise<boolean>;
  /** The customer of a product when the password matches (password grant); null otherwise. */
  verifyCustomerPassword(productId: ProductId, username: string, password: string): Promise<Customer | null>;
  /** The customer now owns the device; both must be of the same product. */
  claimDevice(deviceId: string, customerId: string): Promise<void>;
  unclaimDevice(deviceId: string): Promise<boolean>;
  createApiUser(input: { username: string; scopes: string[] } & ({ orgId: string; productId?: undefined } | { productId: ProductId; orgId?: undefined })): Promise<ApiUser>;
  getApiUser(id: string): Promise<ApiUser | null>;
  listApiUsers(of: TeamRef): Promise<ApiUser[]>;
  /** Renames the API user or sets its scopes (its tokens are the caller's to rotate). not_found: no such API user. */
  updateApiUser(id: string, changes: { username?: string; scopes?: string[] }): Promise<ApiUser>;
  /** Deletes the API user; its tokens stop working. */
  deleteApiUser(id: string): Promise<boolean>;
}

/** An OAuth authorization code as stored (the code itself only as SHA-256). */
export interface AuthorizationCode {
  clientId: string;
  customerId: string;
  redirectUri: string;
  codeChallenge: string;
  expiresAt: Date;
  usedAt: Date | null;
}

/** A device claim code: who claims (a customer of the product, or a user), until when, and which device spent it. */
export interface ClaimCode {
  /** The product whose devices it claims; null for a user's code for any product the user may add devices to. */
  productId: number | null;
  claimant: { kind: 'customer'; id: string } | { kind: 'user'; id: string };
  createdAt: Date;
  expiresAt: Date;
  deviceId: string | null;
}

/** The customer sign-in flows' records: authorization codes, the users behind linked customers, claim codes. */
export interface SigninStore {
  /** The product's customer that is this Flotilla user (OAuth 2.0 mode), made on first link with the user's username. */
  linkedCustomer(productId: ProductId, userId: string): Promise<Customer>;
  /** Keeps a new authorization code (its SHA-256) for `ttlSeconds`. */
  createAuthorizationCode(input: { code: string; clientId: string; customerId: string; redirectUri: string; codeChallenge: string; ttlSeconds: number }): Promise<void>;
  /**
   * Spends a code by its own client (`clientId`), once: `ok` the first time;
   * `used` for a replay, which revokes every token of that customer issued to
   * that client (RFC 6749 §4.1.2) and names them in `revoked` (SHA-256 each).
   * Presented by any other client it is `otherClient`: neither spent nor
   * revoking, so whoever saw a code can neither burn it nor end its
   * customer's sessions. null for an unknown code. Expiry is the caller's to judge.
   */
  redeemAuthorizationCode(
    code: string,
    clientId: string,
  ): Promise<{ outcome: 'ok' | 'otherClient'; code: AuthorizationCode } | { outcome: 'used'; code: AuthorizationCode; revoked: string[] } | null>;
  createClaimCode(input: { code: string; productId: ProductId | null; claimant: ClaimCode['claimant']; ttlSeconds: number }): Promise<void>;
  findClaimCode(code: string): Promise<ClaimCode | null>;
  /**
   * Spends the code on the device and claims it for the code's claimant, in
   * one transaction: false (nothing changed) when the code was spent by then
   * or the device is no longer claimable (another customer's, another product's).
   */
  spendClaimCode(code: string, deviceId: string): Promise<boolean>;
}

/** A calendar day as YYYY-MM-DD (UTC), a real one: 2024-02-30 is not (Date.parse would roll it over to March 1). */
export function isDay(s: unknown): s is string {
  if (typeof s !== 'string' || !/^[0-9]{4}-[0-9]{2}-[0-9]{2}$/.test(s)) return false;
  const t = Date.parse(s + 'T00:00:00Z');
  return Number.isFinite(t) && new Date(t).toISOString().slice(0, 10) === s;
}

/**
 * An ISO 8601 day (UTC midnight) or time with its zone (Z or ±HH:MM), as
 * milliseconds; null for anything else, an impossible day or time included
 * (Date.parse reads 2026-02-30 as March 2nd, "0" as the year 2000, and other
 * forms in the machine's zone).
 */
export function isoTime(v: string): number | null {
  const m = /^([0-9]{4}-[0-9]{2}-[0-9]{2})(?:T([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.[0-9]{1,9})?)?(Z|[+-][0-9]{2}:[0-9]{2}))?$/.exec(v);
  if (!m || !isDay(m[1])) return null;
  if (m[2] !== undefined && (Number(m[2]) > 23 || Number(m[3]) > 59 || Number(m[4] ?? 0) > 59)) return null;
  const t = Date.parse(m[2] === undefined ? m[1] + 'T00:00:00Z' : v);
  return Number.isFinite(t) ? t : null;
}

/** Particle's group names: lowercase letters, digits, dashes and underscores; compared lowercased. */
const GROUP_NAME = /^[a-z0-9_-]{1,64}$/;

/** A group name as stored (trimmed, lowercased), or an invalid StoreError saying what one may be. */
export function groupName(name: unknown): string {
  const n = typeof name === 'string' ? name.trim().toLowerCase() : '';
  if (!GROUP_NAME.test(n)) throw new StoreError('invalid', `group name ${JSON.stringify(name)} must be 1 to 64 lowercase letters, digits, dashes or underscores`);
  return n;
}

/** A device group of a product (Particle's groups: a name, a description, a color). */
export interface DeviceGroup {
  name: string;
  description: string | null;
  color: string | null;
  /** How many devices are in it. */
  devices: number;
}

export interface GroupStore {
  listGroups(productId: ProductId): Promise<DeviceGroup[]>;
  getGroup(productId: ProductId, name: string): Promise<DeviceGroup | null>;
  /** invalid: a name that is not 1..64 of [A-Za-z0-9_-]; conflict: taken; not_found: no product. */
  createGroup(productId: ProductId, group: { name: string; description?: string | null; color?: string | null }): Promise<DeviceGroup>;
  /** Renames or edits; not_found: no such group; conflict: the new name is taken. */
  updateGroup(productId: ProductId, name: string, changes: { name?: string; description?: string | null; color?: string | null }): Promise<DeviceGroup>;
  deleteGroup(productId: ProductId, name: string): Promise<boolean>;
  /**
   * Adds and removes group memberships for devices of the product, in one
   * transaction; groups named in `add` that do not exist are created (as
   * Particle does). Devices of another product are skipped and returned.
   */
  regroup(productId: ProductId, deviceIds: readonly string[], change: { add?: readonly string[]; remove?: readonly string[]; set?: readonly string[] }): Promise<{ skipped: string[] }>;
  /** One device's group names, sorted. */
  deviceGroups(deviceId: string): Promise<string[]>;
  /** Device id → its group names, for the devices of a product that are in a group. */
  groupsOfDevices(productId: ProductId): Promise<Map<string, string[]>>;
}

/** An OAuth client of a user or a product: what a program or a product's app logs in with. */
export interface OAuthClient {
  id: string;
  name: string;
  /** installed: a program that keeps its secret; web: a site with redirect URIs (authorization code flow). */
  type: 'installed' | 'web';
  redirectUris: string[];
  productId: number | null;
  ownerUserId: string | null;
  createdAt: Date;
}

export interface ClientStore {
  /** The secret is returned once; only its hash is kept. invalid: bad name, type or redirect URI. */
  createClient(input: { name: string; type: 'installed' | 'web'; redirectUris?: string[] } & OwnerOfClient): Promise<{ client: OAuthClient; secret: string }>;
  listClients(of: OwnerOfClient): Promise<OAuthClient[]>;
  getClient(id: string): Promise<OAuthClient | null>;
  updateClient(id: string, changes: { name?: string; redirectUris?: string[] }): Promise<OAuthClient>;
  /**
   * Deletes a client and revokes every token issued through it (access and
   * refresh): deleting a leaked client ends what it gave. Returns the SHA-256
   * of each token revoked, so live sessions can be cut; null when there was
   * no such client.
   */
  deleteClient(id: string): Promise<string[] | null>;
  /** The client when the secret matches (one hash either way). */
  verifyClient(id: string, secret: string): Promise<OAuthClient | null>;
}

/**
 * Who an integration belongs to, and so whose devices' events trigger it: a
 * product's devices, a user's (the devices of the products they own
 * personally: their personal space), or an org's (the devices of its products).
 */
export type IntegrationOwner = { productId: ProductId } | { userId: string } | { orgId: string };

/** One string per owner ('product:7', 'user:…', 'org:…'): equal owners, equal keys, whatever the product id's type. */
export function integrationOwnerKey(o: IntegrationOwner): string {
  return 'productId' in o ? 'product:' + String(o.productId) : 'userId' in o ? 'user:' + o.userId : 'org:' + o.orgId;
}

/** The owners whose integrations an event of a device of `product` triggers (delivery), and so whose integrations may name its devices. */
export function ownersOf(product: ProductRef): IntegrationOwner[] {
  const owners: IntegrationOwner[] = [{ productId: product.productId }];
  if (product.ownerUserId !== null) owners.push({ userId: product.ownerUserId });
  if (product.orgId !== null) owners.push({ orgId: product.orgId });
  return owners;
}

/** The owner an integration belongs to. */
export function ownerOfIntegration(i: Pick<Integration, 'productId' | 'userId' | 'orgId'>): IntegrationOwner {
  return i.productId !== null ? { productId: i.productId } : i.userId !== null ? { userId: i.userId } : { orgId: i.orgId as string };
}

/** A webhook: on an event of its owner's devices whose name starts with `event`, a request to `url`. */
export interface Integration {
  id: string;
  /** Exactly one of the three is set. */
  productId: number | null;
  userId: string | null;
  orgId: string | null;
  name: string;
  /** Event name prefix that triggers it. */
  event: string;
  /** Only this device's events trigger it; null: any device of the owner. */
  deviceId: string | null;
  url: string;
  requestType: 'POST' | 'PUT' | 'GET' | 'DELETE';
  headers: { [name: string]: string };
  /**
   * The request body: `json` (an object whose strings are templates, or one
   * template whose output is JSON), `form` (fields, templates) or `body`
   * (one template); none: Particle's default data as a form. How they are
   * sent: integrations/request.ts.
   */
  json: unknown;
  form: { [field: string]: string } | null;
  body: string | null;
  /** Query string fields (templates) added to the URL. */
  query: { [field: string]: string } | null;
  /** HTTP Basic credentials (templates). */
  auth: { username: string; password: string } | null;
  /** Particle's default data {event, data, published_at, coreid} is left out of the request. */
  noDefaults: boolean;
  /** An https URL's certificate must be valid (Particle's default); false: self-signed ones are accepted. */
  rejectUnauthorized: boolean;
  /** A template over the JSON response, whose output is the response event's data; null: the response as it came. */
  responseTemplate: string | null;
  /**
   * Templates of the names of the events that carry the response and the
   * error back (Particle's responseTopic and errorResponseTopic); null:
   * hook-response/<event> and hook-error/<event>. The piece number follows.
   */
  responseTopic: string | null;
  errorResponseTopic: string | null;
  enabled: boolean;
  /** Failed deliveries in a row. */
  failures: number;
  createdAt: Date;
}

export type IntegrationInput = Pick<Integration, 'event' | 'url'> &
  Partial<Pick<Integration, IntegrationSetting | 'enabled'>>;

/** What an integration's owner sets beside its event and URL. */
export type IntegrationSetting =
  | 'name' | 'deviceId' | 'requestType' | 'headers' | 'json' | 'form' | 'body' | 'query' | 'auth' | 'noDefaults' | 'rejectUnauthorized' | 'responseTemplate' | 'responseTopic' | 'errorResponseTopic';

export interface IntegrationStore {
  /** invalid: a bad URL, event prefix, device id, request type, template or response event name. not_found: no such product, user or org. */
  createIntegration(owner: IntegrationOwner, input: IntegrationInput): Promise<Integration>;
  /** The owner's integrations, oldest first. */
  listIntegrations(owner: IntegrationOwner): Promise<Integration[]>;
  getIntegration(id: string): Promise<Integration | null>;
  /** Re-enabling resets the failure count. */
  updateIntegration(id: string, changes: Partial<IntegrationInput>): Promise<Integration>;
  deleteIntegration(id: string): Promise<boolean>;
  /** A delivery's outcome: success resets the failures, failure counts one and disables it at `disableAfter`. */
  recordDelivery(id: string, ok: boolean, disableAfter: number): Promise<(Integration & { disabledNow: boolean }) | null>;
}

/** A SIM card of a product. Lifecycle: inactive (added) ⇄ active. */
export interface SimCard {
  iccid: string;
  productId: number;
  status: 'active' | 'inactive';
  /** Monthly data limit in MB; null for none. */
  dataLimit: number | null;
  createdAt: Date;
}

export interface SimStore {
  listSims(productId: ProductId): Promise<SimCard[]>;
  getSim(iccid: string): Promise<SimCard | null>;
  /** Adds SIMs to a product, active. Ones already in it are answered `existing`; malformed ICCIDs and another product's, `invalid`. */
  addSims(productId: ProductId, iccids: readonly string[]): Promise<{ added: string[]; existing: string[]; invalid: string[] }>;
  /** not_found: no such SIM; invalid: a limit that is not a positive whole number of MB. */
  updateSim(iccid: string, changes: { status?: SimCard['status']; dataLimit?: number | null }): Promise<SimCard>;
  removeSim(iccid: string): Promise<boolean>;
}

// ---------------------------------------------------------------- organizations and billing

export type TransferState = 'pending' | 'accepted' | 'declined' | 'cancelled';

/** A personal product's move into an org: asked by the product's Owner, consented to by an org Administrator. */
export interface ProductTransfer {
  id: string;
  productId: number;
  orgId: string;
  requestedBy: string;
  state: TransferState;
  /** Who accepted, declined or cancelled it. */
  decidedBy: string | null;
  createdAt: Date;
  decidedAt: Date | null;
}

/** What accepting a transfer did to the product's team (policy/orgs.ts transferCascade says why). */
export interface TransferOutcome {
  transfer: ProductTransfer;
  /** The product's Owner until now: from here on reaches it through the org's team. */
  formerOwnerUserId: string;
  /** Product-team members kept with their role: personal collaborators who are not on the org's team. */
  kept: TeamMember[];
  /** Product-team memberships removed: their holders are on the org's team, whose role now governs. */
  superseded: TeamMember[];
}

/** A whitelisted user: the org pays for their personal space. */
export interface BilledUser {
  userId: string;
  orgId: string;
  addedBy: string | null;
  createdAt: Date;
}

/** Billing information of an org, or of a personal product. */
export interface BillingInfo {
  name: string | null;
  email: string | null;
  address: string | null;
  /** ISO 3166-1 alpha-2, upper case. */
  country: string | null;
  taxId: string | null;
  updatedBy: string | null;
  updatedAt: Date;
}

export type BillingInfoChanges = Partial<Pick<BillingInfo, 'name' | 'email' | 'address' | 'country' | 'taxId'>>;

/** Whose billing information: an org's, or a personal product's. */
export type BillingOwner = { orgId: string; productId?: undefined } | { productId: ProductId; orgId?: undefined };

export interface SimDataDay {
  day: string;
  bytes: number;
}

export interface OrgStore {
  /**
   * Hands the org to a member of its team; the former Owner stays on the team
   * as an Administrator. conflict: not a member (or already the Owner);
   * not_found: no such org.
   */
  setOrgOwner(orgId: string, newOwnerUserId: string): Promise<Org>;
  /** conflict: the product is already an org's, or has a pending transfer; not_found: product, org or user. */
  requestTransfer(input: { productId: ProductId; orgId: string; requestedBy: string }): Promise<ProductTransfer>;
  getTransfer(id: string): Promise<ProductTransfer | null>;
  /** Newest first. */
  listTransfers(of: { productId: ProductId; orgId?: undefined } | { orgId: string; productId?: undefined }): Promise<ProductTransfer[]>;
  /**
   * Accepts a pending transfer and moves the product into the org, in one
   * transaction: the org owns it, product-team memberships of the org's
   * members are removed (their org role governs), the others are kept, the
   * product's own billing information is dropped (the org's applies).
   * conflict: not pending, or the product is no longer personal; not_found: no such transfer.
   */
  acceptTransfer(id: string, decidedBy: string): Promise<TransferOutcome>;
  /** Declines (an org Administrator) or cancels (the product's Owner) a pending transfer. conflict: not pending; not_found. */
  closeTransfer(id: string, state: 'declined' | 'cancelled', decidedBy: string): Promise<ProductTransfer>;
  /** Oldest first. */
  billedUsers(orgId: string): Promise<BilledUser[]>;
  /** conflict: not on the org's team, or already billed to an org; not_found: no such org or user. */
  addBilledUser(orgId: string, userId: string, addedBy: string): Promise<BilledUser>;
  removeBilledUser(orgId: string, userId: string): Promise<boolean>;
  /** The org that pays for the user's personal space, or null. */
  billingOrgOf(userId: string): Promise<string | null>;
  /** The user's personal products' ids, oldest first. */
  personalProductIds(userId: string): Promise<number[]>;
}

export interface BillingStore {
  billingInfo(of: BillingOwner): Promise<BillingInfo | null>;
  /** Merges the changes (null clears a field). invalid: a malformed e-mail or country, a field too long; not_found: no such org or product. */
  setBillingInfo(of: BillingOwner, changes: BillingInfoChanges, updatedBy: string): Promise<BillingInfo>;
  /** Usage of products summed per day (a device counted once a day), `from` to `to` inclusive, oldest first; days without any figure are absent. */
  usageOfProducts(productIds: readonly ProductId[], from: string, to: string): Promise<UsageDay[]>;
  /** Sets a SIM's data for a day (a carrier's figure replaces the earlier one), under its current product. not_found: no such SIM; invalid: day or bytes. */
  recordSimData(iccid: string, day: string, bytes: number): Promise<void>;
  /** A SIM's data per day in its current product, oldest first. */
  simDataUsage(iccid: string, from: string, to: string): Promise<SimDataDay[]>;
  /** The data of a product's SIMs (those in it now), summed per day, oldest first. */
  fleetSimDataUsage(productId: ProductId, from: string, to: string): Promise<SimDataDay[]>;
}

// ---------------------------------------------------------------- firmware and OTA

/** A firmware version of a product: its image is a file under the data directory, never in the database. */
export interface FirmwareVersion {
  productId: number;
  version: number;
  title: string;
  description: string | null;
  /** Bytes of the whole image (FLIM header and body). */
  size: number;
  /** SHA-256 of the whole image, lowercase hex: what otaBegin announces. */
  sha256: string;
  /** The image file, relative to the data directory. */
  path: string;
  uploadedBy: string | null;
  uploadedAt: Date;
  /** Released once (product default or a group): it can no longer be deleted. */
  released: boolean;
  productDefault: boolean;
  /** Groups this version is released to, sorted. */
  groups: string[];
}

export type FirmwareInput = Pick<FirmwareVersion, 'version' | 'title' | 'description' | 'size' | 'sha256' | 'path' | 'uploadedBy'>;

/** What the bridge must know of a device to decide which version it should run. */
export interface DeviceTarget {
  id: string;
  productId: number;
  firmwareVersion: number | null;
  lockedFirmware: number | null;
  development: boolean;
  quarantined: boolean;
  /** Versions released to the groups the device is in. */
  groupVersions: number[];
}

/** A product's releases: the default version and each group's. */
export interface ProductReleases {
  productDefault: number | null;
  /** Group name → version released to it. */
  groups: Map<string, number>;
}

export type OtaJobState =
  /** Created, not yet started (the device is offline, or waits for a rollout slot). */
  | 'pending'
  /** The image is being sent. */
  | 'sending'
  /** The device holds the image, checked; it resets into it. Done when it comes back with it confirmed. */
  | 'verified'
  | 'done'
  | 'failed'
  | 'aborted';

export const ACTIVE_JOB_STATES: readonly OtaJobState[] = ['pending', 'sending', 'verified'];
export const JOB_STATES: readonly OtaJobState[] = [...ACTIVE_JOB_STATES, 'done', 'failed', 'aborted'];

/** Why a job exists: a release (rollout), a device lock, or an explicit flash of one device. */
export type OtaJobSource = 'release' | 'lock' | 'flash';

/** One device's OTA job; its id is the job number the protocol carries. */
export interface OtaJob {
  id: number;
  deviceId: string;
  productId: number;
  version: number;
  size: number;
  sha256: string;
  /** The image file, relative to the data directory. */
  path: string;
  source: OtaJobSource;
  rolloutId: number | null;
  state: OtaJobState;
  /** Bytes the device last said it holds. */
  offset: number;
  /** Transfers started (a begin after a failure or a silence counts one). */
  attempts: number;
  /** Why it failed or was aborted (an OTA failure name, 'superseded', ...). */
  reason: string | null;
  createdBy: string | null;
  createdAt: Date;
  updatedAt: Date;
  finishedAt: Date | null;
}

export type OtaJobInput = Pick<OtaJob, 'deviceId' | 'version' | 'size' | 'sha256' | 'path' | 'source' | 'rolloutId' | 'createdBy'>;

export type RolloutState = 'running' | 'paused' | 'aborted' | 'superseded';

/** A release's progress through the fleet: how many at once, in batches, paused when too many fail. */
export interface Rollout {
  id: number;
  productId: number;
  version: number;
  productDefault: boolean;
  groups: string[];
  /** Jobs in flight at most. */
  concurrency: number;
  /** Devices per batch: the next batch starts when this one has finished; 0 for no batches. */
  batchSize: number;
  /** Pause when failed / finished passes this fraction (0..1)... */
  failureThreshold: number;
  /** ...once at least this many jobs finished since the rollout (re)started. */
  minAttempts: number;
  state: RolloutState;
  reason: string | null;
  createdBy: string | null;
  createdAt: Date;
  updatedAt: Date;
  /** Failures are counted from here: creation, or the last resume. */
  countFrom: Date;
}

export type RolloutInput = Pick<Rollout, 'version' | 'productDefault' | 'groups' | 'concurrency' | 'batchSize' | 'failureThreshold' | 'minAttempts' | 'createdBy'>;

/** Jobs of a rollout by state, those finished since `countFrom` apart. */
export interface RolloutCounts {
  active: number;
  done: number;
  failed: number;
  /** Jobs created since countFrom (batches count these). */
  started: number;
  /** Devices that failed in this rollout (never retried by it). */
  failedDevices: Set<string>;
  /** Devices this rollout made a job for, with the state of the latest. */
  reached: Map<string, OtaJobState>;
}

export interface FirmwareStore {
  /** conflict: the version exists; not_found: no product; invalid: version not 1..2^32-1, empty title. */
  addFirmware(productId: ProductId, input: FirmwareInput): Promise<FirmwareVersion>;
  /** Newest version first. */
  listFirmware(productId: ProductId): Promise<FirmwareVersion[]>;
  getFirmware(productId: ProductId, version: number): Promise<FirmwareVersion | null>;
  /** not_found: no such version. */
  updateFirmware(productId: ProductId, version: number, changes: { title?: string; description?: string | null }): Promise<FirmwareVersion>;
  /** The removed version (its file is the caller's to delete); null when unknown. conflict: it was released. */
  deleteFirmware(productId: ProductId, version: number): Promise<FirmwareVersion | null>;
  /**
   * Releases a version: as the product default (or no longer, if it was), and to
   * exactly `groups` (a group released another version gets this one).
   * not_found: no such version or group.
   */
  releaseFirmware(productId: ProductId, release: { version: number; productDefault: boolean; groups: readonly string[] }): Promise<FirmwareVersion>;
  productReleases(productId: ProductId): Promise<ProductReleases>;
  /** What deciding a device's version needs; null for an unknown device. */
  deviceTarget(deviceId: string): Promise<DeviceTarget | null>;
  /** The same for every device of a product, in one query. */
  fleetTargets(productId: ProductId): Promise<DeviceTarget[]>;
  /** Creates a job, ending the device's active job of a release or lock (aborted, 'superseded'). */
  createJob(input: OtaJobInput): Promise<OtaJob>;
  getJob(id: number): Promise<OtaJob | null>;
  /** The device's pending, sending or verified job. */
  activeJob(deviceId: string): Promise<OtaJob | null>;
  /** Every active job (the bridge resumes them after a restart). */
  activeJobs(): Promise<OtaJob[]>;
  /** State, offset, attempts, reason; a final state sets finishedAt. not_found: no such job. */
  updateJob(id: number, changes: Partial<Pick<OtaJob, 'state' | 'offset' | 'attempts' | 'reason'>>): Promise<OtaJob>;
  /** The offsets of jobs in transfer, in one transaction (a write per chunk or per job would cost a sync each); a job no longer sending is left alone. */
  saveJobOffsets(offsets: ReadonlyArray<readonly [jobId: number, offset: number]>): Promise<void>;
  /** Newest first. */
  deviceJobs(deviceId: string, limit?: number): Promise<OtaJob[]>;
  /** A rollout's jobs, in one state or all; newest first. */
  rolloutJobs(rolloutId: number, state: OtaJobState | null, limit?: number): Promise<OtaJob[]>;
  /** The last job of a device for a version (to not retry a lock that failed). */
  lastJobFor(deviceId: string, version: number): Promise<OtaJob | null>;
  /**
   * Supersedes the product's running or paused rollouts that this one covers (same version; same default, or a
   * subset of its groups). The active jobs of those of the same version become this one's.
   */
  createRollout(productId: ProductId, input: RolloutInput): Promise<Rollout>;
  getRollout(id: number): Promise<Rollout | null>;
  /** Newest first. */
  listRollouts(productId: ProductId): Promise<Rollout[]>;
  /** Running and paused rollouts of every product. */
  liveRollouts(): Promise<Rollout[]>;
  updateRollout(id: number, changes: Partial<Pick<Rollout, 'state' | 'reason' | 'countFrom'>>): Promise<Rollout>;
  rolloutCounts(id: number): Promise<RolloutCounts>;
}

export type OwnerOfClient = { ownerUserId: string; productId?: undefined } | { productId: ProductId; ownerUserId?: undefined };

export interface Store extends UserStore, TokenStore, TeamStore, DeviceStore, TelemetryStore, CustomerStore, SigninStore, GroupStore, ClientStore, IntegrationStore, SimStore, FirmwareStore, OrgStore, BillingStore {
  /** Closes the database; the store answers nothing afterwards. */
  close(): Promise<void>;
}
