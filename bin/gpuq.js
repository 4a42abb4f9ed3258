#!/usr/bin/env node
// Launcher: runs the built CLI (dist/, made by `npm install` / `npm run build`).
import { main } from '../dist/cli/main.js';

const code = await main(process.argv, {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  env: process.env,
  cwd: process.cwd(),
});
process.exit(code);
