#!/usr/bin/env node
// The flotilla-bridge command: the bridge runs from its TypeScript sources through tsx.
import { register } from 'tsx/esm/api';

register();
await import('../src/main.ts');
