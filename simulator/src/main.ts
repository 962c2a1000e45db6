/**
 * flotilla-simulate: a fleet of the real agent against a bridge. The
 * scenario, the credentials and the bridge are all checked before any
 * device starts; a live line shows the fleet while it runs and a summary is
 * printed when it stops (Ctrl-C, SIGTERM or --duration).
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { LIMITS } from '@flotilla/protocol';
import { performance } from 'node:perf_hooks';
import { loadScenario, ScenarioError } from './scenario.js';
import { productOf, provision, ProvisionError } from './provision.js';
import { fleetImage } from './app.js';
import { defaultFleetOptions, Fleet, FleetError, MAX_FLEET } from './fleet.js';
import { Sample, statusLine, summary } from './status.js';

/** The longest --duration: one Node timer ends the run, and Node's timers take at most 2^31 - 1 ms (past it they fire at once). */
const MAX_DURATION_S = Math.floor(0x7fffffff / 1000);

/** The simulator's defaults; each has a flag. */
export const defaultOptions = {
  devices: 10,
  scenario: 'default',
  /** The bridge's MQTT listener and HTTP API, as `npm start` runs them. */
  bridge: 'mqtt://127.0.0.1:1883',
  api: 'http://127.0.0.1:8080',
  /** Where devices registered through the API are remembered, per product, so the next run brings the same ones back. */
  credentialsDir: './data/simulator',
  rampPerSecond: defaultFleetOptions.rampPerSecond,
};

const HELP = `flotilla-simulate --product SLUG|ID [options]
  --devices N          devices in the fleet (default ${defaultOptions.devices})
  --product P          the product, by slug or id
  --scenario S         a shipped scenario (default, quiet, chaos) or a JSON file (default ${defaultOptions.scenario})
  --bridge URL         mqtt://host:port or mqtts://host:port (default ${defaultOptions.bridge})
  --ca FILE            for mqtts: the CA certificate to trust (PEM)
  --api URL            the operator API, to register devices (default ${defaultOptions.api})
  --token T            FLOTILLA_TOKEN: a token with settings.view and device.add on the product
  --credentials FILE   device ids and secrets, read and extended (default ${defaultOptions.credentialsDir}/<product>.json)
  --flash-dir DIR      keep each device's flash slots in DIR/<id>/ across runs (default: in memory)
  --ramp N             devices powered on per second (default ${defaultOptions.rampPerSecond})
  --duration S         stop after S seconds (default: until Ctrl-C)
  --quiet              no live line; the summary only
  --firmware N         the fleet's firmware version (default: the scenario's)
  --write-image FILE   write the fleet's firmware image (FLIM: header, agent bundle, the scenario's app) of
                       version --firmware to FILE, for an OTA update, and exit; no device starts`;

export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    values = parseArgs({
      args: argv,
      options: {
        devices: { type: 'string' },
        product: { type: 'string' },
        scenario: { type: 'string' },
        bridge: { type: 'string' },
        ca: { type: 'string' },
        api: { type: 'string' },
        token: { type: 'string' },
        credentials: { type: 'string' },
        'flash-dir': { type: 'string' },
        ramp: { type: 'string' },
        duration: { type: 'string' },
        quiet: { type: 'boolean' },
        firmware: { type: 'string' },
        'write-image': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (e) {
    return usage((e as Error).message);
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const count = Number(values.devices ?? defaultOptions.devices);
  if (!Number.isInteger(count) || count < 1 || count > MAX_FLEET) return usage(`--devices must be a whole number from 1 to ${MAX_FLEET}, not "${values.devices}"`);
  const ramp = Number(values.ramp ?? defaultOptions.rampPerSecond);
  if (!(ramp > 0)) return usage(`--ramp must be a positive number, not "${values.ramp}"`);
  const duration = values.duration === undefined ? null : Number(values.duration);
  if (duration !== null && !(duration > 0 && duration <= MAX_DURATION_S)) return usage(`--duration must be a positive number of seconds up to ${MAX_DURATION_S} (24 days), not "${values.duration}"`);
  const firmware = values.firmware === undefined ? null : Number(values.firmware);
  if (firmware !== null && !(Number.isInteger(firmware) && firmware >= 1 && firmware <= LIMITS.firmwareVersionMax)) {
    return usage(`--firmware must be a whole number from 1 to ${LIMITS.firmwareVersionMax}, not "${values.firmware}"`);
  }
  if (!values.product) return usage('--product is required (the slug or id of the product the devices belong to)');

  // From here on a signal stops the run, whatever it is doing: registering devices, ramping, running.
  // `on`, not `once`: a second signal (Ctrl-C reaches the demo launcher too, which passes it on) must not
  // kill the summary. The handlers stay until the process exits (they do not keep it alive).
  const stop = new AbortController();
  let signalled: NodeJS.Signals | null = null;
  const onSignal = (sig: NodeJS.Signals): void => {
    signalled ??= sig;
    stop.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // Said when a signal came while registering devices or before the first device was answered; the exit status is the shell's for that signal.
  const stoppedEarly = (): number => {
    console.error(`flotilla-simulate: stopped (${signalled}) before the fleet started`);
    return 128 + (signalled === 'SIGTERM' ? 15 : 2);
  };

  const baseline = process.memoryUsage().rss;
  let fleet: Fleet | null = null;
  let first: Sample | null = null;
  let live: { stop(): void } | null = null;
  try {
    const loaded = loadScenario(values.scenario ?? defaultOptions.scenario);
    const scenario = firmware === null ? loaded : { ...loaded, firmware };
    const file = values.credentials ?? join(defaultOptions.credentialsDir, values.product.replace(/[^A-Za-z0-9_-]/g, '_') + '.json');
    const where = { api: values.api ?? defaultOptions.api, token: values.token ?? process.env.FLOTILLA_TOKEN ?? null, product: values.product, file };
    const out = values['write-image'];
    if (out !== undefined) {
      const product = await productOf({ ...where, signal: stop.signal });
      const image = fleetImage(scenario, product.id);
      writeFileSync(out, image);
      const sha = createHash('sha256').update(image).digest('hex');
      console.log(`flotilla-simulate: wrote ${out}: firmware ${scenario.firmware} of product ${product.slug} (id ${product.id}), ${image.length} bytes, SHA-256 ${sha}`);
      return 0;
    }
    const creds = await provision({ ...where, count, signal: stop.signal });
    fleet = new Fleet({
      bridge: values.bridge ?? defaultOptions.bridge,
      tls: values.ca ? { ca: readFileSync(values.ca) } : undefined,
      product: creds.product.id,
      devices: creds.devices,
      scenario,
      rampPerSecond: ramp,
      flashDir: values['flash-dir'] ?? null,
      // What a device's crash or its host says ("see the log" points here).
      onLog: (line) => console.error('flotilla-simulate: ' + line),
    });
    console.log(`flotilla-simulate: ${count} devices of product ${creds.product.slug} (id ${creds.product.id}), scenario ${values.scenario ?? defaultOptions.scenario}: ${scenario.description}`);
    // Counted from here: the summary's totals and rates take in the ramp, and the live line shows it (10,000 devices ramp for a minute).
    first = sample(fleet);
    live = liveLine(fleet, first, !!values.quiet);
    await fleet.start(stop.signal);
  } catch (e) {
    live?.stop();
    if (stop.signal.aborted && (e instanceof ProvisionError || e instanceof FleetError)) return stoppedEarly();
    if (e instanceof ScenarioError || e instanceof ProvisionError || e instanceof FleetError) {
      console.error('flotilla-simulate: ' + e.message);
      return 2;
    }
    // A file or directory named on the command line (--ca, --write-image, --flash-dir, --credentials) that cannot be used.
    const f = e as NodeJS.ErrnoException;
    if (f.code && f.path && f.syscall) {
      console.error(`flotilla-simulate: cannot ${f.syscall} ${f.path}: ${f.code}`);
      return 1;
    }
    throw e;
  }

  if (!fleet || !first || !live) throw new Error('unreachable: the set-up above makes the fleet or returns');
  const running = fleet;
  // Until a signal (perhaps already come, during the ramp) or --duration, counted once every device is on.
  let timer: NodeJS.Timeout | null = null;
  await new Promise<void>((resolve) => {
    if (stop.signal.aborted) return resolve();
    stop.signal.addEventListener('abort', () => resolve(), { once: true });
    if (duration !== null) timer = setTimeout(resolve, duration * 1000);
  });
  if (timer) clearTimeout(timer);
  live.stop();
  const last = sample(running);
  running.stop();
  console.log(summary(first, last, baseline, values.scenario ?? defaultOptions.scenario));
  return 0;
}

function usage(problem: string): number {
  console.error(`flotilla-simulate: ${problem}\n\n${HELP}`);
  return 2;
}

/** The fleet's counters now, with the time and the process's memory. */
function sample(f: Fleet): Sample {
  return { stats: f.stats(), at: performance.now(), rss: process.memoryUsage().rss };
}

/**
 * The live status line: every second on a terminal (rewritten in place), every 10 s to a file or pipe, never
 * with --quiet. stop() ends it, and the terminal's line with it, so what is said next starts a line of its own.
 */
function liveLine(fleet: Fleet, first: Sample, quiet: boolean): { stop(): void } {
  const tty = process.stdout.isTTY && !quiet;
  let prev = first;
  let written = false;
  const timer = setInterval(
    () => {
      const now = sample(fleet);
      const line = statusLine(prev, now);
      prev = now;
      if (tty) process.stdout.write('\r\x1b[K' + line);
      else if (!quiet) console.log(line);
      written = true;
    },
    tty ? 1000 : 10_000,
  );
  return {
    stop() {
      clearInterval(timer);
      if (tty && written) process.stdout.write('\n');
      written = false;
    },
  };
}
