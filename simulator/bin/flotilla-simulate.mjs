#!/usr/bin/env node
// The flotilla-simulate command: the simulator runs from its TypeScript sources through tsx.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/main.ts');
process.exitCode = await main(process.argv.slice(2));
