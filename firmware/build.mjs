// Builds dist/agent.js: tsc lowers the TypeScript (agent and protocol core) to
// ES5, esbuild bundles it into one ES5 module, which is wrapped in an IIFE
// defining `Flotilla` as a plain object, and uglify-js compresses the result.
// esbuild alone cannot lower let/const, classes or for-of to ES5.
//
// Why not esbuild's own IIFE and minifier: its IIFE exports through a getter
// per name and helpers (ten functions), and uglify-js inlines single-use
// functions esbuild keeps. Every function costs about 300 bytes of heap on the
// engines, so the two together take 21 KB off the agent's heap on Duktape.
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import UglifyJS from 'uglify-js';

const here = dirname(fileURLToPath(import.meta.url));
const tscOut = join(here, 'build', 'tsc');
rmSync(tscOut, { recursive: true, force: true });
execFileSync(process.execPath, [join(here, '..', 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(here, 'tsconfig.json')], { stdio: 'inherit' });

// Nothing in the agent or the core runs for its side effects on import: let
// esbuild drop unused tables (the permission matrix, vitals warnings).
writeFileSync(join(tscOut, 'package.json'), JSON.stringify({ sideEffects: false, type: 'module' }));

const bundled = await build({
  entryPoints: [join(tscOut, 'firmware', 'src', 'index.js')],
  // The protocol core as tsc emitted it, not its TypeScript source.
  alias: { '@flotilla/protocol/core': join(tscOut, 'protocol', 'src', 'core', 'index.js') },
  bundle: true,
  format: 'esm',
  target: 'es5',
  platform: 'neutral',
  legalComments: 'none',
  write: false,
  logLevel: 'warning',
});

/** The ES module as a script: its final `export { a as b, ... }` becomes the IIFE's returned object. */
function asScript(module) {
  const tail = /export\s*\{([^}]*)\};?\s*$/.exec(module);
  if (!tail) throw new Error('build: the bundle does not end with one export list');
  const fields = tail[1].split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
    const [local, exported] = s.split(/\s+as\s+/);
    return (exported ?? local) + ': ' + local;
  });
  return 'var Flotilla = (function () {\n' + module.slice(0, tail.index) + 'return { ' + fields.join(', ') + ' };\n})();\n';
}

/**
 * The protocol's numeric constants read by name (KIND.hello, LIMITS.maxFunctions)
 * become their numbers, as a C #define would: the code is shorter, an engine
 * loads a number instead of looking a property up, and a table read only that
 * way (KIND, ERROR_SOURCE) is dropped from the bundle. Tables also read by key
 * (VAR_TYPE[t]) or handed out (cloud.limits) stay. The values come from the
 * protocol core tsc just built: they are written once, there.
 */
const core = await import(pathToFileURL(join(tscOut, 'protocol', 'src', 'core', 'index.js')).href);
const TABLES = ['KIND', 'VAR_TYPE', 'RESET_REASON', 'ERROR_SOURCE', 'REPLY_STATUS', 'REQUEST_OP', 'OTA_STATE', 'OTA_FAILURE', 'VITAL', 'LIMITS'];
function inlineConstants(code) {
  return code.replace(new RegExp(`(?<![\\w$.])(${TABLES.join('|')})\\.([A-Za-z_$][\\w$]*)(?![\\w$]|\\s*=[^=])`, 'g'), (m, table, key) => {
    const v = Object.prototype.hasOwnProperty.call(core[table], key) ? core[table][key] : undefined;
    return typeof v === 'number' ? (v < 0 ? `(${v})` : String(v)) : m;
  });
}

const script = inlineConstants(asScript(bundled.outputFiles[0].text));
// FLOTILLA_KEEP_SCRIPT=1 keeps the script before compression, to find what an engine trips on.
if (process.env.FLOTILLA_KEEP_SCRIPT) writeFileSync(join(here, 'build', 'agent.script.js'), script);
const min = UglifyJS.minify(script, {
  // A script for ES5 engines: no arrow functions, no module semantics.
  module: false,
  compress: { passes: 3, arrows: false, reduce_funcs: false },
  mangle: {
    // Private members end with '_' (and nothing else does): short names for them.
    properties: { regex: /_$/ },
  },
  output: { comments: false },
});
if (min.error) throw min.error;

const outfile = join(here, 'dist', 'agent.js');
mkdirSync(dirname(outfile), { recursive: true });
writeFileSync(outfile, min.code);
console.log('firmware/dist/agent.js', statSync(outfile).size, 'bytes');
