/**
 * The fleet's image: the built agent bundle followed by an application that
 * plays the device side of a scenario (its variables, functions, events,
 * injected errors and OTA refusals). The application is ES5 and uses only
 * the agent and `hal`, so the same image could run on an embedded engine;
 * the device's identity comes from `hal.device`, kept outside the slots as a
 * board keeps its keys, so one image serves the whole fleet and can be
 * flashed over the air like any other.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Scenario } from './scenario.js';
import { buildImage } from './vm-device.js';

/** The device side of a scenario, as the application reads it. */
function deviceSide(s: Scenario): object {
  return {
    variables: s.variables,
    functions: s.functions,
    events: s.events,
    errors: s.faults.errors ? s.faults.errors.every : 0,
    vitals: s.vitals,
    keepalive: s.keepalive,
    refuse: s.ota.refuse,
  };
}

/** The application (ES5): `S` is the scenario's device side. */
const RUNTIME = `
(function (S) {
  var cloud = Flotilla.create(hal, { deviceId: hal.device.id, secret: hal.device.secret, product: PRODUCT, firmware: FIRMWARE, keepalive: S.keepalive });
  var vars = {};
  function seconds() { return hal.clock.now() / 1000; }
  /* A walk moves by at most step per second, scaled by the square root of the time since it was last read. */
  function read(v) {
    if (v.walk) {
      var t = seconds(), dt = t - v.at;
      v.at = t;
      v.x += (Math.random() * 2 - 1) * v.walk.step * Math.sqrt(dt > 0 ? dt : 0);
      if (v.x < v.walk.min) v.x = v.walk.min;
      if (v.x > v.walk.max) v.x = v.walk.max;
      return v.type === 'int32' ? Math.round(v.x) : Math.round(v.x * 100) / 100;
    }
    return v.x;
  }
  function variable(name, spec) {
    var v = vars[name] = { type: spec.type, walk: spec.walk || null, x: spec.walk ? spec.walk.start : spec.value, at: seconds() };
    cloud.variable(name, function () { return read(v); }, spec.type);
  }
  function parse(v, arg) {
    if (v.type === 'string') return arg;
    if (v.type === 'bool') return arg === 'true' || arg === '1' || arg === 'on';
    var n = v.type === 'int32' ? parseInt(arg, 10) : parseFloat(arg);
    /* What the variable's type cannot hold (4294967296 as int32, 1e309 as double) does not parse: it would make every later read an error. */
    if (!isFinite(n) || (v.type === 'int32' && (n < -2147483648 || n > 2147483647))) return null;
    return n;
  }
  function fn(name, spec) {
    cloud.fn(name, function (arg) {
      if (spec.fails > 0 && Math.random() < spec.fails) throw new Error('injected fault in function ' + name);
      if (spec.sets) {
        var v = vars[spec.sets], x = parse(v, arg);
        if (x === null) return -1;
        v.x = x;
      }
      return spec.returns;
    });
  }
  function fill(data) {
    return data.replace(/\\{\\{([^{}]*)\\}\\}/g, function (m, name) { return String(read(vars[name])); });
  }
  /* Exponential intervals with the given mean, so a fleet does not act in lockstep. */
  function occasionally(mean, run) {
    cloud.after(Math.max(10, Math.round(-Math.log(1 - Math.random()) * mean * 1000)), function () {
      occasionally(mean, run);
      run();
    });
  }
  function event(e) {
    occasionally(e.every, function () { cloud.publish(e.name, fill(e.data), { ack: e.ack }); });
  }
  var k;
  for (k in S.variables) variable(k, S.variables[k]);
  for (k in S.functions) fn(k, S.functions[k]);
  for (k = 0; k < S.events.length; k++) event(S.events[k]);
  if (S.errors > 0) occasionally(S.errors, function () { throw new Error('injected fault in a timer'); });
  if (S.refuse > 0) cloud.onOta(function (e) { return !(e.type === 'begin' && Math.random() < S.refuse); });
  if (S.vitals > 0) cloud.vitals(S.vitals);
})(SCENARIO);
`;

let bundle: string | null = null;

/** The built agent bundle (firmware/dist/agent.js). */
export function agentBundle(): string {
  if (bundle === null) {
    const path = createRequire(import.meta.url).resolve('@flotilla/firmware/dist/agent.js');
    try {
      bundle = readFileSync(path, 'utf8');
    } catch {
      throw new Error('the agent bundle ' + path + ' is missing: run `npm run build` first');
    }
  }
  return bundle;
}

/** The program of the fleet's image: agent bundle, then the scenario's application. */
export function fleetProgram(scenario: Scenario, product: number): string {
  return agentBundle() + '\n' + RUNTIME.replace('PRODUCT', () => String(product)).replace('FIRMWARE', () => String(scenario.firmware)).replace('SCENARIO', () => JSON.stringify(deviceSide(scenario)));
}

export function fleetImage(scenario: Scenario, product: number): Uint8Array {
  return buildImage(product, scenario.firmware, fleetProgram(scenario, product));
}
