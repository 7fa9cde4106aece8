#!/usr/bin/env node
// The `sluice` bin: runs the TypeScript CLI through tsx's loader, in this process.
import { register } from 'tsx/esm/api';

register();
await import('../src/main.ts');
