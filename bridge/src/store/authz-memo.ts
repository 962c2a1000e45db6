/**
 * The reads that decide who may do what, memoized: a token, a user's
 * memberships, a customer, an API user, a device's product and customer, a
 * product or an org by id or slug. Every request of the HTTP API makes them
 * (five or six queries and a SHA-256 before the handler runs), and their
 * answers rarely change.
 *
 * An answer is kept until anything that could change it is written:
 *   - any store method not listed in KEEPS empties the memo, before it runs
 *     and again when it settles: a new write method is safe by default;
 *   - a commit by another connection to the same file (another bridge
 *     process, an operator's tool) empties it too: `externalVersion` is
 *     SQLite's PRAGMA data_version, which changes exactly then. It is read
 *     at every memoized read (one prepared statement, no I/O).
 * Misses (null: an unknown token or device) are not kept, so made-up ids
 * cannot fill the memo; it is bounded, and emptied whole when full.
 */

/** The reads kept, each by its one argument. */
const MEMOIZED = ['findToken', 'memberships', 'getCustomer', 'getApiUser', 'deviceAccess', 'productRef', 'getOrg'] as const;

/**
 * Methods that cannot change what a MEMOIZED read answers: reads, and writes
 * to telemetry, OTA, groups, SIMs, firmware, integrations, billing
 * information and invitations (an invitation changes nothing until it is
 * accepted, and accepting is not listed).
 */
const KEEPS = new Set<string>([
  // reads
  'getUser', 'hasUsers', 'verifyPassword', 'findUser', 'listTokens', 'orgTeam', 'getProduct', 'productTeam', 'orgProductIds', 'productsByIds',
  'invitations', 'getInvitation', 'getDevice', 'deviceProduct', 'listDevices', 'verifyDeviceSecret', 'latestVitals', 'latestVitalsOfProduct',
  'vitalsHistory', 'errorsByProduct', 'usage', 'auditLog', 'findCustomer', 'listCustomers', 'verifyCustomerPassword', 'listApiUsers',
  'linkedCustomer', 'findClaimCode', 'listGroups', 'getGroup', 'deviceGroups', 'groupsOfDevices', 'listClients', 'getClient', 'verifyClient',
  'listIntegrations', 'getIntegration', 'listSims', 'getSim', 'getTransfer', 'listTransfers', 'billedUsers', 'billingOrgOf', 'personalProductIds',
  'billingInfo', 'usageOfProducts', 'simDataUsage', 'listFirmware', 'getFirmware', 'productReleases', 'deviceTarget', 'fleetTargets', 'getJob',
  'activeJob', 'activeJobs', 'deviceJobs', 'lastJobFor', 'getRollout', 'listRollouts', 'liveRollouts', 'rolloutCounts', 'pragmas', 'integrityCheck',
  // writes that change no one's access
  'recordHello', 'setOnline', 'touch', 'touchMany', 'recordVitals', 'recordError', 'recordUsage', 'audit', 'flushAudit', 'recordSimData',
  'createGroup', 'updateGroup', 'deleteGroup', 'regroup', 'addSims', 'updateSim', 'removeSim', 'createIntegration', 'updateIntegration',
  'deleteIntegration', 'recordDelivery', 'addFirmware', 'updateFirmware', 'deleteFirmware', 'releaseFirmware', 'createJob', 'updateJob',
  'saveJobOffsets', 'createRollout', 'updateRollout', 'setBillingInfo', 'createInvitation', 'deleteInvitation', 'createClaimCode',
]);

/** Answers kept at most (all reads together). */
export const AUTHZ_MEMO_MAX = 20000;

type Fn = (...args: unknown[]) => unknown;

/** `store` with its MEMOIZED reads kept as described above; every other property as it is. */
export function memoizeAuthz<S extends object>(store: S, externalVersion: () => number, max = AUTHZ_MEMO_MAX): S {
  const memo = new Map<string, Promise<unknown>>();
  let seen = externalVersion();
  const clear = () => memo.clear();
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(store)) {
    if (typeof value !== 'function') {
      out[name] = value;
      continue;
    }
    const fn = (value as Fn).bind(store);
    if ((MEMOIZED as readonly string[]).includes(name)) {
      out[name] = (arg: unknown) => {
        const v = externalVersion();
        if (v !== seen) {
          seen = v;
          clear();
        }
        const key = name + '\u0000' + String(arg);
        const known = memo.get(key);
        if (known) return known;
        const p = Promise.resolve(fn(arg));
        if (memo.size >= max) clear();
        memo.set(key, p);
        p.then(
          (r) => {
            if (r === null && memo.get(key) === p) memo.delete(key);
          },
          () => {
            if (memo.get(key) === p) memo.delete(key);
          },
        );
        return p;
      };
    } else if (KEEPS.has(name)) out[name] = fn;
    else {
      out[name] = (...args: unknown[]) => {
        clear();
        const r = fn(...args);
        if (r instanceof Promise) return r.finally(clear);
        clear();
        return r;
      };
    }
  }
  return out as S;
}
