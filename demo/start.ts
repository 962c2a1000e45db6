/**
 * `npm start`: the project's main job. A bridge with the embedded SQLite
 * default in ./data and, unless --no-simulator, a simulated fleet against it.
 *
 * On the first run (no DATA_DIR/demo.json) it creates an org and a product
 * owned by the first owner, an access token for the owner (printed once),
 * and a product API user for the simulator whose token it keeps in
 * demo.json. The fleet runs in its own process (simulator/bin) and reaches
 * the bridge over loopback, as any fleet would; its devices and flash live
 * in DATA_DIR/simulator, so a restart brings the same devices back with the
 * firmware they last received.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bridgeFlags, bridgeHelp, bridgeOptions, CliError, createBridge, defaultOptions as bridgeDefaults, listening, parseFlags, startFailure, StoreError, urlHost, type Bridge } from '@flotilla/bridge';
import { loadScenario, MAX_FLEET, provision, ProvisionError, ScenarioError } from '@flotilla/simulator';

/** The demo's own defaults; the bridge's are its own (flotilla-bridge --help). */
export const defaultOptions = {
  /** Simulated devices and what they do. */
  devices: 50,
  scenario: 'default',
  /** The demo's bridge logs warnings only, so the fleet's live line stays readable. */
  logLevel: 'warn',
  org: 'Demo Org',
  product: 'Demo Fleet',
  /** The owner's printed token lives 90 days (Particle's default for `particle token create`). */
  tokenDays: 90,
};

/** What the first run leaves in DATA_DIR/demo.json (mode 0600: it holds the simulator's token). */
interface DemoState {
  org: string;
  product: { id: number; slug: string };
  simulatorToken: string;
}

const HELP = `npm start -- [options]   (node demo/start.mjs)
  --no-simulator         run the bridge alone
  --devices N            simulated devices (default ${defaultOptions.devices})
  --scenario S           default, quiet, chaos or a scenario file (default ${defaultOptions.scenario})
The bridge's options (npm start runs it at --log-level ${defaultOptions.logLevel}, not the bridge's own default,
so the fleet's live line stays readable; --log-level info shows its JSON lines):
${bridgeHelp}`;

let values: ReturnType<typeof parseDemoFlags>['values'];
let devices: number;
let options;
try {
  values = parseDemoFlags().values;
  if (values.help) {
    console.log(HELP);
    process.exit(0);
  }
  devices = Number(values.devices ?? defaultOptions.devices);
  options = { logLevel: defaultOptions.logLevel, ...bridgeOptions(values) };
  if (!Number.isInteger(devices) || devices < 0 || devices > MAX_FLEET) throw new CliError(`--devices must be a whole number from 0 to ${MAX_FLEET}, not "${values.devices}"`);
  // A scenario the fleet cannot run is said now, before the bridge starts and devices are registered for it.
  if (!values['no-simulator'] && devices > 0) loadScenario(values.scenario ?? defaultOptions.scenario);
} catch (e) {
  if (!(e instanceof CliError) && !(e instanceof ScenarioError)) throw e;
  console.error('flotilla: ' + e.message + '\n(npm start -- --help lists the options)');
  process.exit(2);
}

function parseDemoFlags() {
  return parseFlags({ ...bridgeFlags, 'no-simulator': { type: 'boolean' }, devices: { type: 'string' }, scenario: { type: 'string' }, help: { type: 'boolean', short: 'h' } });
}

const dataDir = options.dataDir ?? bridgeDefaults.dataDir;
const host = options.host ?? bridgeDefaults.host;
const local = urlHost(host);
let bridge: Bridge;
try {
  bridge = await createBridge(options);
} catch (e) {
  const why = startFailure(e, options);
  if (!why) throw e;
  console.error('flotilla: ' + why);
  process.exit(1);
}

// Signals from here on, setup included: the simulator stops first (it prints its summary), then the bridge
// closes. A registration under way finishes its batch and saves it first (its secrets are answered once).
let stopping = false;
let child: ReturnType<typeof spawn> | null = null;
let setup: Promise<unknown> = Promise.resolve();
const stop = new AbortController();
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    stop.abort();
    const c = child;
    const fleetDone = c ? new Promise((r) => c.once('exit', r)) : Promise.resolve();
    c?.kill(signal);
    Promise.all([fleetDone, setup.catch(() => undefined)])
      .then(() => bridge.close())
      .then(
        () => process.exit(0),
        (e) => {
          console.error(e);
          process.exit(1);
        },
      );
  });
}

/** Whether the lines above (the owner's password, shown once) were printed. */
let shown = false;
function show(lines: string[]): void {
  console.log(lines.join('\n'));
  shown = true;
}

/**
 * Says why the demo cannot go on, closes the bridge, and exits 1; a stop under way exits by its handler. The
 * owner's password made on this run is printed first if it was not yet: it is not shown again.
 */
async function fail(message: string): Promise<never> {
  if (!stopping) {
    if (!shown && bridge.generatedOwnerPassword) show(out);
    console.error('flotilla: ' + message);
    await bridge.close();
    process.exit(1);
  }
  return new Promise<never>(() => undefined);
}

// Null when the HTTP API is off (--http-port off): then no fleet is registered and no calls are shown.
const api = bridge.ports.http === null ? null : `http://${local}:${bridge.ports.http}`;

const out: string[] = ['', `Flotilla is running, data in ${dataDir}`, ...listening(bridge, host).map((l) => '  ' + l)];
if (bridge.generatedOwnerPassword) out.push(`  Owner     ${options.ownerUsername ?? bridgeDefaults.ownerUsername} / ${bridge.generatedOwnerPassword}   (password shown once)`);

const stateFile = join(dataDir, 'demo.json');
let state: DemoState | null = null;
try {
  state = existsSync(stateFile) ? (JSON.parse(readFileSync(stateFile, 'utf8')) as DemoState) : null;
  const ok = (x: DemoState) => typeof x.org === 'string' && Number.isInteger(x.product?.id) && typeof x.product?.slug === 'string' && typeof x.simulatorToken === 'string';
  if (state !== null && (typeof state !== 'object' || !ok(state))) throw new Error('it lacks org, product {id, slug} or simulatorToken');
} catch (e) {
  await fail(`${stateFile} is not the demo's state (${(e as Error).message}): put the right file back, or start from an empty data directory`);
}
let ownerToken: string | null = null;
if (!state) {
  let first: Awaited<ReturnType<typeof firstRun>>;
  try {
    first = await firstRun(bridge);
  } catch (e) {
    if (!(e instanceof CliError)) throw e;
    await fail(e.message);
  }
  state = first!.state;
  ownerToken = first!.ownerToken;
  writeFileSync(stateFile, JSON.stringify(state, null, 1) + '\n', { mode: 0o600 });
}
const slug = state!.product.slug;
out.push(`  Product   ${slug} (id ${state!.product.id}) in org ${state!.org}`);
if (ownerToken) out.push(`  Token     ${ownerToken}   (the owner's, valid ${defaultOptions.tokenDays} days; shown once, keep it)`);
else if (api) out.push(`  Token     shown on the first run; make another: curl -d grant_type=password -d username=${options.ownerUsername ?? bridgeDefaults.ownerUsername} -d password=... -u particle:particle ${api}/oauth/token`);
// Said now, before the fleet is registered: what is shown once must not wait on what can fail or be stopped.
show(out);

let example = '<device id>';
const simulate = !values['no-simulator'] && devices > 0 && api !== null;
const credentials = join(dataDir, 'simulator', slug + '.json');
const after: string[] = [];
if (simulate && api) {
  const register = () => provision({ api, token: state!.simulatorToken, product: slug, count: devices, file: credentials, signal: stop.signal });
  let fleet: Awaited<ReturnType<typeof provision>>;
  try {
    try {
      fleet = await (setup = register());
    } catch (e) {
      // The simulator's API user deleted, or its token revoked: the demo makes it a new one, as its first run did.
      if (!(e instanceof ProvisionError && e.status === 401) || stopping) throw e;
      let replaced: string;
      try {
        replaced = await simulatorToken(bridge, state!.product.id);
      } catch (made) {
        if (!(made instanceof StoreError)) throw made;
        // demo.json names a product the database lacks (the database removed or replaced without it).
        throw new ProvisionError(`${stateFile} names product ${state!.product.id}, which this data directory does not hold (${made.message}): remove ${stateFile}, or start from an empty data directory`);
      }
      state = { ...state!, simulatorToken: replaced };
      writeFileSync(stateFile, JSON.stringify(state, null, 1) + '\n', { mode: 0o600 });
      console.log(`  (the simulator's token was refused; a new one is in ${stateFile})`);
      fleet = await (setup = register());
    }
  } catch (e) {
    if (!(e instanceof ProvisionError)) throw e;
    await fail(e.message);
  }
  example = fleet!.devices[0].id;
  after.push(`  Fleet     ${devices} simulated devices, scenario ${values.scenario ?? defaultOptions.scenario} (credentials and flash in ${join(dataDir, 'simulator')})`);
}
const auth = `-H "Authorization: Bearer $TOKEN"`;
if (!api) after.push('', 'The HTTP API is off (--http-port off): no devices are simulated and no calls are shown.', '');
else after.push(
  '',
  'Try (TOKEN is the token above):',
  `  curl ${auth} ${api}/v1/products/${slug}/devices`,
  `  curl ${auth} ${api}/v1/products/${slug}/devices/${example}/temperature`,
  `  curl ${auth} -d arg=on ${api}/v1/products/${slug}/devices/${example}/setLed`,
  `  curl ${auth} ${api}/v1/products/${slug}/events            # live events (server-sent)`,
  `  curl ${auth} ${api}/v1/products/${slug}/fleet_health`,
  `  node -e "new (require('particle-api-js'))({baseUrl:'${api}'}).listDevices({auth:process.env.TOKEN,product:'${slug}'}).then(r=>console.log(r.body.devices.map(d=>d.id+' '+d.online)))"`,
  // Setting a profile's apiUrl does not switch to it: without \`particle config flotilla\`, the login (and the token) went to Particle's cloud.
  `  particle config flotilla apiUrl ${api} && particle config flotilla && particle login --token $TOKEN && particle get ${example} temperature`,
  `  (particle list shows your personal space; the demo fleet is the org's: curl ${auth} ${api}/v1/orgs/${state!.org}/devices)`,
  '',
);
console.log(after.join('\n'));

if (simulate && api && !stopping) {
  const bin = fileURLToPath(new URL('../simulator/bin/flotilla-simulate.mjs', import.meta.url));
  child = spawn(
    process.execPath,
    [bin, '--product', slug, '--devices', String(devices), '--scenario', values.scenario ?? defaultOptions.scenario, '--api', api,
      '--bridge', `mqtt://${local}:${bridge.ports.mqtt}`, '--credentials', credentials, '--flash-dir', join(dataDir, 'simulator', 'flash')],
    { stdio: 'inherit', env: { ...process.env, FLOTILLA_TOKEN: state!.simulatorToken } },
  );
  child.on('exit', (code, signal) => {
    child = null;
    if (!stopping && code !== 0) console.error(`flotilla: the simulator stopped (${code === null ? 'killed by ' + signal : 'exit ' + code}); the bridge keeps running`);
  });
}

/** The org, product and tokens of a first run, made through the bridge's store as its own setup does. */
async function firstRun(b: Bridge): Promise<{ state: DemoState; ownerToken: string }> {
  const ownerName = options!.ownerUsername ?? bridgeDefaults.ownerUsername;
  const owner = await b.store.findUser(ownerName);
  if (!owner) throw new CliError(`the owner "${ownerName}" is missing from ${dataDir}: start from an empty data directory, or give --owner-username`);
  // The demo's org or product already there without demo.json (deleted, or made by hand): said in one line.
  const made = async <T>(make: () => Promise<T>): Promise<T> => {
    try {
      return await make();
    } catch (e) {
      if (!(e instanceof StoreError && e.code === 'conflict')) throw e;
      throw new CliError(`${e.message} in ${dataDir}, but not the demo's state (${join(dataDir, 'demo.json')}): put that file back, or start from an empty data directory`);
    }
  };
  const org = await made(() => b.store.createOrg(defaultOptions.org, owner.id));
  const product = await made(() => b.store.createProduct({ name: defaultOptions.product, slug: 'demo-fleet', orgId: org.id }));
  const owned = await b.store.issueToken({ subject: { kind: 'user', id: owner.id }, clientId: 'particle', scopes: [], ttlSeconds: defaultOptions.tokenDays * 86400 });
  return { state: { org: org.slug, product: { id: product.id, slug: product.slug }, simulatorToken: await simulatorToken(b, product.id) }, ownerToken: owned.token };
}

/** A product API user that may only register the simulator's devices, and its token (which never expires). */
async function simulatorToken(b: Bridge, productId: number): Promise<string> {
  const scopes = ['settings.view', 'device.add'];
  const sim = await b.store.createApiUser({ username: 'demo-simulator', scopes, productId });
  return (await b.store.issueToken({ subject: { kind: 'apiUser', id: sim.id }, clientId: 'api-user', scopes, ttlSeconds: null })).token;
}
