#!/usr/bin/env node
// The flotilla operator CLI: runs from its TypeScript sources through tsx.
import { register } from 'tsx/esm/api';

register();
await import('../src/operator-cli/entry.ts');
