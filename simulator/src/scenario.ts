/**
 * Scenarios: what a simulated fleet does, as a small JSON file. The device
 * side (variables, functions, events, errors thrown in the app, OTA refusal)
 * becomes the application of the fleet's image; the world side (network
 * faults, power cuts, crashes, battery, signal, images that fail their
 * trial) is played by the host. Every field is checked before any device
 * starts, and a mistake is named by its path: `events[0].every must be …`.
 *
 * Rates are mean intervals in seconds, drawn per device from an exponential
 * distribution, so a fleet's faults do not arrive in lockstep.
 */
import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { eventNameProblem, isReservedEventName, LIMITS, nameProblem, VAR_TYPES } from '@flotilla/protocol';
import type { VarType } from '@flotilla/protocol';

export interface Walk {
  start: number;
  /** Largest change per second (uniform in ±step, scaled by √seconds). */
  step: number;
  min: number;
  max: number;
}

export interface VariableSpec {
  type: VarType;
  /** A constant, or the start of a walk. */
  value?: boolean | number | string;
  walk?: Walk;
}

export interface FunctionSpec {
  /** What the function returns (default 1). */
  returns: number;
  /** Sets this variable from the argument (parsed as the variable's type). */
  sets?: string;
  /** Probability (0..1) that a call throws, which the agent reports as an error. */
  fails: number;
}

export interface EventSpec {
  name: string;
  /** Mean seconds between two events. */
  every: number;
  /** The data: `{{name}}` is replaced by the variable's current value. */
  data: string;
  /** Wait for the cloud's acknowledgement (QoS 1). */
  ack: boolean;
}

/** Something that happens to a device now and then; `every` is the mean interval in seconds. */
export interface Occasional {
  every: number;
}

export interface Faults {
  /** A timer callback of the app throws (reported by the agent as an error). */
  errors: Occasional | null;
  /** A hard fault: the device reboots and reports a panic. */
  crash: Occasional | null;
  /** The link is cut; the agent reconnects with backoff. */
  drop: Occasional | null;
  /** The network goes away for `down` seconds (connection attempts fail), then returns. */
  flap: (Occasional & { down: number }) | null;
  /** Power is cut for `off` seconds. */
  powerCut: (Occasional & { off: number }) | null;
  /** Latency added to each direction, ms, plus up to `jitter` ms. */
  latency: { ms: number; jitter: number } | null;
}

export interface Scenario {
  /** Where it came from, for messages. */
  source: string;
  description: string;
  /** Version of the image the fleet starts with. */
  firmware: number;
  /** Vitals period in seconds (0: only when the cloud asks). */
  vitals: number;
  keepalive: number;
  variables: Record<string, VariableSpec>;
  functions: Record<string, FunctionSpec>;
  events: EventSpec[];
  faults: Faults;
  /** Battery charge at start and its drain per hour, percent; null: no battery gauge. */
  battery: { start: number; drainPerHour: number } | null;
  /** Signal strength, percent: mean ± jitter. */
  signal: { mean: number; jitter: number } | null;
  /** Heap the vitals report, bytes: total, and used as a mean ± jitter. */
  memory: { total: number; used: number; jitter: number };
  ota: {
    /** Probability that a device refuses an update at 'begin'. */
    refuse: number;
    /** Probability that a device's new image crashes at start of its trial (and is rolled back). */
    failTrial: number;
  };
}

export class ScenarioError extends Error {
  constructor(source: string, message: string) {
    super('scenario ' + source + ': ' + message);
    this.name = 'ScenarioError';
  }
}

/** The scenarios shipped with the simulator, by name. */
export const SCENARIO_DIR = fileURLToPath(new URL('../scenarios/', import.meta.url));

/** Loads `nameOrPath`: a shipped scenario's name (`default`) or a path to a JSON file. */
export function loadScenario(nameOrPath: string): Scenario {
  const shipped = join(SCENARIO_DIR, nameOrPath + '.json');
  const file = /^[a-z0-9-]+$/.test(nameOrPath) && existsSync(shipped) ? shipped : nameOrPath;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ScenarioError(nameOrPath, (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such scenario (not a shipped name, not a file)' : (e as Error).message);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ScenarioError(file, 'not valid JSON: ' + (e as Error).message);
  }
  return parseScenario(json, file);
}

/** Checks a parsed JSON scenario and fills in its defaults. */
export function parseScenario(json: unknown, source = 'scenario'): Scenario {
  const fail = (path: string, what: string): never => {
    throw new ScenarioError(source, path + ' ' + what);
  };
  const obj = (v: unknown, path: string): Record<string, unknown> => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(path, 'must be an object');
    return v as Record<string, unknown>;
  };
  const known = (o: Record<string, unknown>, path: string, keys: string[]): void => {
    for (const k of Object.keys(o)) if (!keys.includes(k)) fail(path ? path + '.' + k : k, 'is not a known field (expected one of: ' + keys.join(', ') + ')');
  };
  const num = (v: unknown, path: string, min: number, max: number, dflt?: number): number => {
    if (v === undefined && dflt !== undefined) return dflt;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) fail(path, 'must be a number from ' + min + ' to ' + max);
    return v as number;
  };
  const int = (v: unknown, path: string, min: number, max: number, dflt?: number): number => {
    const x = num(v, path, min, max, dflt);
    if (!Number.isInteger(x)) fail(path, 'must be a whole number from ' + min + ' to ' + max);
    return x;
  };
  const str = (v: unknown, path: string, dflt?: string): string => {
    if (v === undefined && dflt !== undefined) return dflt;
    if (typeof v !== 'string') fail(path, 'must be a string');
    return v as string;
  };
  const bool = (v: unknown, path: string, dflt: boolean): boolean => {
    if (v === undefined) return dflt;
    if (typeof v !== 'boolean') fail(path, 'must be true or false');
    return v as boolean;
  };
  const DAY = 86400;
  const occasional = (v: unknown, path: string, extra?: [string, number, number]): (Occasional & Record<string, number>) | null => {
    if (v === undefined || v === null) return null;
    const o = obj(v, path);
    known(o, path, extra ? ['every', extra[0]] : ['every']);
    const r: Occasional & Record<string, number> = { every: num(o.every, path + '.every', 0.1, 30 * DAY) };
    if (extra) r[extra[0]] = num(o[extra[0]], path + '.' + extra[0], extra[1], extra[2]);
    return r;
  };

  // A number or bool placeholder at its longest text; a string's is its value (a function that sets it may
  // make it longer: the agent then refuses that publish, and reports it).
  const LONGEST: Partial<Record<VarType, string>> = { bool: 'false', int32: '-2147483648', double: '-1.2345678901234567e-308' };

  const root = obj(json, '(the file)');
  known(root, '', ['description', 'firmware', 'vitals', 'keepalive', 'variables', 'functions', 'events', 'faults', 'battery', 'signal', 'memory', 'ota']);

  const variables: Record<string, VariableSpec> = {};
  const vars = root.variables === undefined ? {} : obj(root.variables, 'variables');
  if (Object.keys(vars).length > LIMITS.maxVariables) fail('variables', 'holds more than the ' + LIMITS.maxVariables + ' a device may register');
  for (const [name, raw] of Object.entries(vars)) {
    const path = 'variables.' + name;
    const bad = nameProblem(name);
    if (bad) fail(path, 'is not a valid variable name: ' + bad);
    const v = obj(raw, path);
    known(v, path, ['type', 'value', 'walk']);
    const type = str(v.type, path + '.type') as VarType;
    if (!(VAR_TYPES.names as readonly string[]).includes(type)) fail(path + '.type', 'must be one of ' + VAR_TYPES.names.join(', '));
    if ((v.value === undefined) === (v.walk === undefined)) fail(path, 'needs a value or a walk (one of them)');
    const spec: VariableSpec = { type };
    if (v.walk !== undefined) {
      if (type !== 'double' && type !== 'int32') fail(path + '.walk', 'is for number variables (double, int32)');
      const w = obj(v.walk, path + '.walk');
      known(w, path + '.walk', ['start', 'step', 'min', 'max']);
      const min = num(w.min, path + '.walk.min', -1e9, 1e9);
      const max = num(w.max, path + '.walk.max', min, 1e9);
      spec.walk = { start: num(w.start, path + '.walk.start', min, max), step: num(w.step, path + '.walk.step', 0, 1e9), min, max };
    } else {
      const value = v.value;
      const ok = type === 'bool' ? typeof value === 'boolean'
        : type === 'string' ? typeof value === 'string' && Buffer.byteLength(value) <= LIMITS.variableValueMaxBytes
        : type === 'int32' ? Number.isInteger(value) && Math.abs(value as number) <= 2147483647
        : typeof value === 'number' && Number.isFinite(value);
      if (!ok) fail(path + '.value', 'is not a ' + type + (type === 'string' ? ' of at most ' + LIMITS.variableValueMaxBytes + ' bytes' : ''));
      spec.value = value as boolean | number | string;
    }
    variables[name] = spec;
  }

  const functions: Record<string, FunctionSpec> = {};
  const fns = root.functions === undefined ? {} : obj(root.functions, 'functions');
  if (Object.keys(fns).length > LIMITS.maxFunctions) fail('functions', 'holds more than the ' + LIMITS.maxFunctions + ' a device may register');
  for (const [name, raw] of Object.entries(fns)) {
    const path = 'functions.' + name;
    const bad = nameProblem(name);
    if (bad) fail(path, 'is not a valid function name: ' + bad);
    const f = obj(raw, path);
    known(f, path, ['returns', 'sets', 'fails']);
    const returns = int(f.returns, path + '.returns', -2147483648, 2147483647, 1);
    const sets = f.sets === undefined ? undefined : str(f.sets, path + '.sets');
    if (sets !== undefined && !variables[sets]) fail(path + '.sets', 'names no variable of this scenario ("' + sets + '")');
    functions[name] = { returns, sets, fails: num(f.fails, path + '.fails', 0, 1, 0) };
  }

  const events: EventSpec[] = [];
  const evs = root.events === undefined ? [] : root.events;
  if (!Array.isArray(evs)) fail('events', 'must be a list');
  (evs as unknown[]).forEach((raw, i) => {
    const path = 'events[' + i + ']';
    const e = obj(raw, path);
    known(e, path, ['name', 'every', 'data', 'ack']);
    const name = str(e.name, path + '.name');
    const bad = eventNameProblem(name);
    if (bad) fail(path + '.name', 'is not a valid event name: ' + bad);
    if (isReservedEventName(name)) fail(path + '.name', 'is reserved for the cloud (names starting with "spark"); a device may not publish it');
    const data = str(e.data, path + '.data', '');
    for (const m of data.matchAll(/\{\{([^{}]*)\}\}/g)) if (!variables[m[1]]) fail(path + '.data', 'names no variable of this scenario ("{{' + m[1] + '}}")');
    const longest = Buffer.byteLength(data.replace(/\{\{([^{}]*)\}\}/g, (_, v: string) => LONGEST[variables[v].type] ?? String(variables[v].value)));
    if (longest > LIMITS.eventDataMaxBytes) fail(path + '.data', `can be ${longest} bytes with its variables filled in, past the ${LIMITS.eventDataMaxBytes} an event may carry`);
    events.push({ name, every: num(e.every, path + '.every', 0.1, 30 * DAY), data, ack: bool(e.ack, path + '.ack', false) });
  });

  const fr = root.faults === undefined ? {} : obj(root.faults, 'faults');
  known(fr, 'faults', ['errors', 'crash', 'drop', 'flap', 'powerCut', 'latency']);
  let latency: Faults['latency'] = null;
  if (fr.latency !== undefined && fr.latency !== null) {
    const l = obj(fr.latency, 'faults.latency');
    known(l, 'faults.latency', ['ms', 'jitter']);
    latency = { ms: num(l.ms, 'faults.latency.ms', 0, 60000), jitter: num(l.jitter, 'faults.latency.jitter', 0, 60000, 0) };
  }
  const faults: Faults = {
    errors: occasional(fr.errors, 'faults.errors'),
    crash: occasional(fr.crash, 'faults.crash'),
    drop: occasional(fr.drop, 'faults.drop'),
    flap: occasional(fr.flap, 'faults.flap', ['down', 0.1, DAY]) as Faults['flap'],
    powerCut: occasional(fr.powerCut, 'faults.powerCut', ['off', 0, DAY]) as Faults['powerCut'],
    latency,
  };

  let battery: Scenario['battery'] = null;
  if (root.battery !== undefined && root.battery !== null) {
    const b = obj(root.battery, 'battery');
    known(b, 'battery', ['start', 'drainPerHour']);
    battery = { start: num(b.start, 'battery.start', 0, 100), drainPerHour: num(b.drainPerHour, 'battery.drainPerHour', 0, 100, 0) };
  }
  let signal: Scenario['signal'] = null;
  if (root.signal !== undefined && root.signal !== null) {
    const g = obj(root.signal, 'signal');
    known(g, 'signal', ['mean', 'jitter']);
    signal = { mean: num(g.mean, 'signal.mean', 0, 100), jitter: num(g.jitter, 'signal.jitter', 0, 100, 0) };
  }
  const m = root.memory === undefined ? {} : obj(root.memory, 'memory');
  known(m, 'memory', ['total', 'used', 'jitter']);
  // A Photon's defaults: about 82 KB of heap, a third of it in use.
  const total = num(m.total, 'memory.total', 1, 2 ** 31, 83200);
  const memory = { total, used: num(m.used, 'memory.used', 0, total, 28000), jitter: num(m.jitter, 'memory.jitter', 0, total, 2000) };
  const o = root.ota === undefined ? {} : obj(root.ota, 'ota');
  known(o, 'ota', ['refuse', 'failTrial']);

  return {
    source,
    description: str(root.description, 'description', ''),
    firmware: int(root.firmware, 'firmware', 1, LIMITS.firmwareVersionMax, 1),
    vitals: num(root.vitals, 'vitals', 0, DAY, 60),
    keepalive: int(root.keepalive, 'keepalive', 5, 3600, 30),
    variables,
    functions,
    events,
    faults,
    battery,
    signal,
    memory,
    ota: { refuse: num(o.refuse, 'ota.refuse', 0, 1, 0), failTrial: num(o.failTrial, 'ota.failTrial', 0, 1, 0) },
  };
}
