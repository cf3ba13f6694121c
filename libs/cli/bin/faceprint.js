#!/usr/bin/env node
// The `faceprint` command. The CLI is TypeScript run through tsx, like the services.
import { register } from 'tsx/esm/api';

register();
await import('../src/main.ts');
