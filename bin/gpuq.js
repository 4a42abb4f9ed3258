#!/usr/bin/env node
// Launcher: runs the built CLI (dist/, made by `npm install` / `npm run build`). The one place that
// exits: main() returns the code once stdout and stderr have drained.
import { bugReport, main } from '../dist/cli/main.js';

// Last resort for a bug that escapes main (an error event or a rejection nobody awaited): one line,
// exit 1, the stack only under GPUQ_DEBUG=1.
const crash = (e) => {
  process.stderr.write(bugReport(e, process.env));
  process.exit(1);
};
process.on('uncaughtException', crash);
process.on('unhandledRejection', crash);

const code = await main(process.argv, {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  env: process.env,
  cwd: process.cwd(),
});
process.exit(code);
