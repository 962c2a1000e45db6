/**
 * Protocol limits. Defaults are Particle Device OS ≥ 3.0's, so firmware written
 * for a Photon fits unchanged. The bridge enforces them; the agent refuses to
 * register or send past them. Every other module reads them from here.
 */
export const LIMITS = {
  /** Variable, function and event names, in UTF-8 bytes (Device OS ≥ 0.8). */
  nameMaxBytes: 64,
  /** A variable's value as read (string variables; numbers are always small). */
  variableValueMaxBytes: 1024,
  /** A function call's argument. */
  functionArgMaxBytes: 1024,
  /** An event's data. */
  eventDataMaxBytes: 1024,
  /** Registered variables per device. */
  maxVariables: 20,
  /** Registered functions per device. */
  maxFunctions: 15,
  /** Event subscriptions per device (Device OS' documented handler count). */
  maxSubscriptions: 4,
  /** Sustained publish rate per device, events per second. */
  publishPerSecond: 1,
  /** Publishes allowed back to back before the rate applies. */
  publishBurst: 4,
  /**
   * Reports the cloud stores per device (hello, vitals, error reports):
   * sustained rate per second and burst. The agent stays under it: vitals at
   * most once per vitalsMinIntervalMs, error reports at errorReportsPerSecond
   * with bursts of errorReportBurst (meanwhile repeats add to their counts), a
   * hello only when what it lists changes.
   */
  reportPerSecond: 3,
  reportBurst: 30,
  vitalsMinIntervalMs: 1000,
  errorReportsPerSecond: 1,
  errorReportBurst: 8,
  /** Messages an agent holds while offline, sent at once when it reconnects: the cloud allows that backlog past the event rate once per session. */
  offlineQueueMax: 16,
  /** A device claim code (Device OS holds up to 63 characters). */
  claimCodeMaxBytes: 63,
  /** Event time-to-live in seconds, as Particle's default. */
  eventTtlDefault: 60,
  /** Largest TTL: Device OS's 0 to 16777215 seconds (24 bits), which Particle's cloud and API accept. */
  eventTtlMax: 16777215,
  /** Agent version string (semver), in bytes. */
  agentVersionMaxBytes: 32,
  /** Error report message, in bytes; the agent truncates longer messages. */
  errorMessageMaxBytes: 256,
  /** Error report stack, in bytes; the agent truncates longer stacks. */
  errorStackMaxBytes: 512,
  /** OTA: largest chunk the cloud may send, and the default it uses. */
  otaChunkMaxBytes: 4096,
  otaChunkDefaultBytes: 1024,
  /** OTA: largest firmware image (a Photon's application slot is 128 KB; JS images are larger). */
  otaImageMaxBytes: 1048576,
  /** Highest firmware version number (Particle's product firmware versions are 16-bit-ish integers; we allow 32-bit). */
  firmwareVersionMax: 4294967295,
  /** Longest topic the parser looks at; every valid topic is far shorter. */
  topicMaxBytes: 160,
  /** App (operator) MQTT client ids used in reply topics. */
  clientIdMaxBytes: 64,
  /** Largest encoded message: an OTA chunk at its maximum plus its header. */
  messageMaxBytes: 4096 + 64,
} as const;

export type Limits = typeof LIMITS;
