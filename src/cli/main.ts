/**
 * The CLI entry: wires commander, runs one command, maps errors to the contract's exit codes.
 * Returns the exit code; only bin/gpuq.js calls process.exit.
 */
import { Command, CommanderError } from 'commander';
import { UserError } from '../core/errors.js';
import { EXIT } from '../core/exit-codes.js';
import { makeApp, type Io } from './app.js';
import { registerCancel } from './cancel.js';
import { registerDiagnose } from './diagnose.js';
import { registerList } from './list.js';
import { registerLogs } from './logs.js';
import { registerNodes } from './nodes.js';
import { registerShow } from './show.js';
import { registerSubmit } from './submit.js';
import { registerWait } from './wait.js';
import { registerWatch } from './watch.js';

/** Builds the commander program with every command registered. */
export function buildProgram(app: ReturnType<typeof makeApp>): Command {
  const program = new Command();
  program
    .name('gpuq')
    .description('submit and supervise GPU grading jobs on shared machines')
    .version('0.1.0')
    .option('--config <file>', 'config file (default: ./gpuq.config.json, then ~/.config/gpuq/config.json)')
    .option('--accept-new-host-key', "trust an SSH node's unknown host key on first use and record it")
    .hook('preAction', (_program, action) => app.prepare(action))
    .exitOverride()
    .showHelpAfterError('(run gpuq help COMMAND for its options)')
    .configureOutput({
      writeOut: (s) => app.io.stdout.write(s),
      writeErr: (s) => app.io.stderr.write(s),
    });
  registerSubmit(program, app);
  registerList(program, app);
  registerShow(program, app);
  registerLogs(program, app);
  registerWait(program, app);
  registerCancel(program, app);
  registerDiagnose(program, app);
  registerWatch(program, app);
  registerNodes(program, app);
  for (const c of program.commands)
    c.exitOverride()
      .configureOutput(program.configureOutput())
      .showHelpAfterError('(run gpuq help COMMAND for its options)');
  return program;
}

/** Runs gpuq with `argv` (as process.argv) and returns the exit code. */
export async function main(argv: string[], io: Io): Promise<number> {
  const app = makeApp(io);
  const program = buildProgram(app);
  try {
    await program.parseAsync(argv);
    return app.exitCode;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.exitCode === 0 || e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return 0;
      return EXIT.usage;
    }
    if (e instanceof UserError) {
      io.stderr.write(`gpuq: ${e.message}\n`);
      if (e.hint) io.stderr.write(`${e.hint}\n`);
      if (io.env.GPUQ_DEBUG === '1') io.stderr.write(`${e.stack}\n`);
      return e.exitCode;
    }
    const err = e as Error;
    io.stderr.write(`gpuq: internal error (a bug in gpuq): ${err?.message ?? String(e)}\n${err?.stack ?? ''}\n`);
    return EXIT.bug;
  }
}
