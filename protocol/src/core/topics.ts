/**
 * Every MQTT topic of the protocol, built here and parsed here; no other file
 * in the repo writes a topic string (docs/protocol.md, "Topics").
 *
 *   dev/<id>/hello | vitals | err | reply | ota | status | evt/<name...>   device → cloud
 *   cloud/<id>/req | ota | evt                                             cloud → device
 *   app/<clientId>/reply                                                   cloud → operator app
 *
 * A device may publish only under dev/<its id>/ and subscribe only to its own
 * cloud/<its id>/ topics; the bridge decides that from parseTopic's result.
 */
import { fail } from './errors.js';
import { LIMITS } from './limits.js';
import { eventNameProblem, isClientId, isDeviceId } from './names.js';

export const DEVICE_ROOT = 'dev';
export const CLOUD_ROOT = 'cloud';
export const APP_ROOT = 'app';

/** Channels a device publishes on, under dev/<id>/. `evt` takes the event name as further levels. */
export const DEVICE_CHANNELS = ['hello', 'evt', 'vitals', 'err', 'reply', 'ota', 'status'] as const;
/** Channels the cloud publishes to a device on, under cloud/<id>/. */
export const CLOUD_CHANNELS = ['req', 'ota', 'evt'] as const;
/** Channels the cloud publishes to an operator app on, under app/<clientId>/. */
export const APP_CHANNELS = ['reply'] as const;

export type DeviceChannel = (typeof DEVICE_CHANNELS)[number];
export type CloudChannel = (typeof CLOUD_CHANNELS)[number];
export type AppChannel = (typeof APP_CHANNELS)[number];

export type ParsedTopic =
  | { root: 'dev'; deviceId: string; channel: 'evt'; event: string }
  | { root: 'dev'; deviceId: string; channel: Exclude<DeviceChannel, 'evt'> }
  | { root: 'cloud'; deviceId: string; channel: CloudChannel }
  | { root: 'app'; clientId: string; channel: AppChannel };

function deviceId(id: string): string {
  if (!isDeviceId(id)) fail('topic', 'device id must be 24 lowercase hex characters');
  return id;
}

function eventName(name: string): string {
  const problem = eventNameProblem(name);
  if (problem) fail('topic', 'event name ' + problem);
  return name;
}

/**
 * A device → cloud topic (`dev/<id>/<channel>`, plus the event name for
 * `evt`). The builders below use it; so does the firmware, which cannot
 * afford the `topics` object (every function costs it ~300 bytes of heap).
 */
export function deviceTopic(id: string, channel: DeviceChannel, event?: string): string {
  return DEVICE_ROOT + '/' + deviceId(id) + '/' + channel + (channel === 'evt' ? '/' + eventName(event as string) : '');
}

/** A cloud → device topic, `cloud/<id>/<channel>`. */
export function cloudTopic(id: string, channel: CloudChannel): string {
  return CLOUD_ROOT + '/' + deviceId(id) + '/' + channel;
}

/** Topic builders. Each checks its arguments, so no caller can build a wildcard or foreign topic. */
export const topics = {
  device: {
    hello: (id: string) => deviceTopic(id, 'hello'),
    event: (id: string, name: string) => deviceTopic(id, 'evt', name),
    vitals: (id: string) => deviceTopic(id, 'vitals'),
    error: (id: string) => deviceTopic(id, 'err'),
    reply: (id: string) => deviceTopic(id, 'reply'),
    ota: (id: string) => deviceTopic(id, 'ota'),
    /** Presence: the device's will (offline) and its online announcement. */
    status: (id: string) => deviceTopic(id, 'status'),
  },
  cloud: {
    request: (id: string) => cloudTopic(id, 'req'),
    ota: (id: string) => cloudTopic(id, 'ota'),
    event: (id: string) => cloudTopic(id, 'evt'),
  },
  app: {
    reply: (clientId: string) => {
      if (!isClientId(clientId)) fail('topic', 'client id must be 1 to 64 characters of [A-Za-z0-9_-]');
      return APP_ROOT + '/' + clientId + '/reply';
    },
  },
  /** Subscription filters, the only wildcard topics in the protocol. */
  filter: {
    /** Every cloud → device channel of one device: what the agent subscribes to. */
    deviceInbox: (id: string) => [cloudTopic(id, 'req'), cloudTopic(id, 'ota'), cloudTopic(id, 'evt')],
    /** Events of one device (`id`) or of every device the subscriber may see (no id). */
    deviceEvents: (id?: string) => (id === undefined ? DEVICE_ROOT + '/+' : DEVICE_ROOT + '/' + deviceId(id)) + '/evt/#',
    /** Events of one device whose names start with the levels of `prefix`. */
    deviceEventsNamed: (id: string | undefined, prefix: string) =>
      (id === undefined ? DEVICE_ROOT + '/+' : DEVICE_ROOT + '/' + deviceId(id)) + '/evt/' + eventName(prefix) + '/#',
    /** Everything every device publishes: the bridge's own ingest subscription. */
    allDevices: () => DEVICE_ROOT + '/+/#',
  },
} as const;

/**
 * Parses a concrete (non-wildcard) topic. Throws a ProtocolError with code
 * `topic` for anything that is not exactly one of the protocol's topics.
 */
export function parseTopic(topic: string): ParsedTopic {
  if (typeof topic !== 'string') return fail('topic', 'topic must be a string');
  if (topic.length === 0) return fail('topic', 'topic must not be empty');
  if (topic.length > LIMITS.topicMaxBytes) return fail('topic', 'topic is longer than ' + LIMITS.topicMaxBytes + ' characters');
  const levels = topic.split('/');
  const root = levels[0];
  if (root === DEVICE_ROOT || root === CLOUD_ROOT) {
    if (levels.length < 3) return fail('topic', 'topic has no channel');
    const id = levels[1];
    if (!isDeviceId(id)) return fail('topic', 'device id must be 24 lowercase hex characters');
    const channel = levels[2];
    if (root === DEVICE_ROOT) {
      if (channel === 'evt') {
        if (levels.length < 4) return fail('topic', 'event topic has no event name');
        const name = levels.slice(3).join('/');
        const problem = eventNameProblem(name);
        if (problem) return fail('topic', 'event name ' + problem);
        return { root: 'dev', deviceId: id, channel: 'evt', event: name };
      }
      if (levels.length !== 3 || indexOf(DEVICE_CHANNELS, channel) < 0)
        return fail('topic', 'unknown device channel "' + safe(levels.slice(2).join('/')) + '"');
      return { root: 'dev', deviceId: id, channel: channel as Exclude<DeviceChannel, 'evt'> };
    }
    if (levels.length !== 3 || indexOf(CLOUD_CHANNELS, channel) < 0)
      return fail('topic', 'unknown cloud channel "' + safe(levels.slice(2).join('/')) + '"');
    return { root: 'cloud', deviceId: id, channel: channel as CloudChannel };
  }
  if (root === APP_ROOT) {
    if (levels.length !== 3) return fail('topic', 'app topic must be app/<clientId>/<channel>');
    if (!isClientId(levels[1])) return fail('topic', 'client id must be 1 to 64 characters of [A-Za-z0-9_-]');
    if (indexOf(APP_CHANNELS, levels[2]) < 0) return fail('topic', 'unknown app channel "' + safe(levels[2]) + '"');
    return { root: 'app', clientId: levels[1], channel: levels[2] as AppChannel };
  }
  return fail('topic', 'unknown topic root "' + safe(root) + '"');
}

/** Array#indexOf on a readonly tuple, typed loosely (ES5 has indexOf; `includes` is ES2016). */
function indexOf(list: readonly string[], s: string): number {
  return list.indexOf(s);
}

/** Echoes at most 32 printable ASCII characters of untrusted input into an error message. */
function safe(s: string): string {
  let out = '';
  for (let i = 0; i < s.length && i < 32; i++) {
    const c = s.charCodeAt(i);
    out += c >= 32 && c < 127 ? s.charAt(i) : '?';
  }
  return s.length > 32 ? out + '...' : out;
}

/** A subscription filter an operator app may use, as parseFilter reads it. */
export type ParsedFilter =
  /** Events of one device (`deviceId`) or of every device the app may see ('+'), whose names start with `prefix` ('' for all). */
  | { root: 'dev'; deviceId: string; channel: 'evt'; prefix: string }
  | { root: 'app'; clientId: string; channel: AppChannel };

/**
 * Parses the subscription filters operator apps may use: `dev/<id|+>/evt/#`,
 * `dev/<id|+>/evt/<levels...>/#` (or without the `/#`: exactly that event
 * name) and `app/<clientId>/reply`. Anything else (`#`, `+/#`, `$SYS/...`,
 * other channels, `+` inside an event name) is refused with a ProtocolError.
 */
export function parseFilter(filter: string): ParsedFilter {
  if (typeof filter !== 'string' || filter.length === 0) return fail('topic', 'filter must not be empty');
  if (filter.length > LIMITS.topicMaxBytes) return fail('topic', 'filter is longer than ' + LIMITS.topicMaxBytes + ' characters');
  const levels = filter.split('/');
  if (levels[0] === APP_ROOT) {
    const t = parseTopic(filter);
    return t as ParsedFilter;
  }
  if (levels[0] !== DEVICE_ROOT || levels.length < 4 || levels[2] !== 'evt') return fail('topic', 'only device events and app replies can be subscribed to');
  const id = levels[1];
  if (id !== '+' && !isDeviceId(id)) return fail('topic', 'device id must be 24 lowercase hex characters or +');
  const rest = levels.slice(3);
  const wildcard = rest[rest.length - 1] === '#';
  const name = (wildcard ? rest.slice(0, -1) : rest).join('/');
  if (name === '') return wildcard ? { root: 'dev', deviceId: id, channel: 'evt', prefix: '' } : fail('topic', 'event name must not be empty');
  const problem = eventNameProblem(name);
  if (problem) return fail('topic', 'event name ' + problem);
  return { root: 'dev', deviceId: id, channel: 'evt', prefix: wildcard ? name + '/' : name };
}
