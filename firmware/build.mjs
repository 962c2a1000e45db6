// Builds dist/agent.js: tsc lowers the TypeScript (agent and protocol core) to
// ES5, then esbuild bundles it into one minified IIFE defining `Flotilla`.
// esbuild alone cannot lower let/const, classes or for-of to ES5.
import { execFileSync } from 'node:child_process';
import { rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const tscOut = join(here, 'build', 'tsc');
rmSync(tscOut, { recursive: true, force: true });
execFileSync(process.execPath, [join(here, '..', 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(here, 'tsconfig.json')], { stdio: 'inherit' });

// Nothing in the agent or the core runs for its side effects on import: let
// esbuild drop unused tables (the permission matrix, vitals warnings).
writeFileSync(join(tscOut, 'package.json'), JSON.stringify({ sideEffects: false }));

const outfile = join(here, 'dist', 'agent.js');
await build({
  entryPoints: [join(tscOut, 'firmware', 'src', 'index.js')],
  // The protocol core as tsc emitted it, not its TypeScript source.
  alias: { '@flotilla/protocol/core': join(tscOut, 'protocol', 'src', 'core', 'index.js') },
  bundle: true,
  format: 'iife',
  globalName: 'Flotilla',
  target: 'es5',
  platform: 'neutral',
  minify: true,
  // Private members end with '_' (and nothing else does): short names for them.
  // Heap on the engines grows with code size, so every byte counts.
  mangleProps: /_$/,
  legalComments: 'none',
  outfile,
  logLevel: 'warning',
});
console.log('firmware/dist/agent.js', statSync(outfile).size, 'bytes');
