#!/usr/bin/env node
// `npm start`: the bridge and a simulated fleet, from their TypeScript sources through tsx.
import { register } from 'tsx/esm/api';

register();
await import('./start.ts');
