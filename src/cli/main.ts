/**
 * The CLI entry: wires commander, runs one command, maps errors to the contract's exit codes and
 * hands every byte of output to the OS before it returns. Returns the exit code; only bin/gpuq.js
 * calls process.exit.
 */
import { Command, CommanderError } from 'commander';
import { UserError } from '../core/errors.js';
import { EXIT } from '../core/exit-codes.js';
import { makeApp, type Io } from './app.js';
import { registerCancel } from './cancel.js';
import { registerCompetitions } from './competitions.js';
import { registerCompletion } from './completion.js';
import { registerDiagnose } from './diagnose.js';
import { registerGet } from './get.js';
import { registerGrade } from './grade.js';
import { registerList } from './list.js';
import { registerLogs } from './logs.js';
import { registerNodes } from './nodes.js';
import { registerPrune } from './prune.js';
import { registerRerun } from './rerun.js';
import { registerResults } from './results.js';
import { registerShow } from './show.js';
import { registerStats } from './stats.js';
import { registerSubmit } from './submit.js';
import { registerWait } from './wait.js';
import { registerWatch } from './watch.js';

/** Exit code once stdout's reader has gone (`gpuq … | head`): 128 + SIGPIPE, as a shell reports it. */
export const EXIT_BROKEN_PIPE = 141;

/** What `gpuq --help` ends with: the exit codes scripts branch on and the variables gpuq reads. */
const MAIN_HELP_FOOTER = `
Exit codes (submit --wait, wait): 0 succeeded, 10 failed, 11 timeout, 12 out of memory,
  13 GPU out of memory, 14 another limit, 15 killed by a signal, 16 cancelled, 17 lost,
  18 grading failed (the grader's fault), 19 submission rejected.
Exit codes (every command): 1 a bug in gpuq, 2 bad usage or input, 3 node unreachable or refused,
  4 no such job, 5 ledger unreadable or locked, 141 stdout closed early.

Environment:
  GPUQ_HOME        holds the ledger, known hosts and config.json (default: the state in
                   $XDG_STATE_HOME/gpuq, the config in ./gpuq.config.json or ~/.config/gpuq)
  GPUQ_SSH_CONFIG  an ssh_config file to read instead of ~/.ssh/config
  GPUQ_DEBUG=1     print the stack trace of a bug in gpuq
  NO_COLOR         no colour; FORCE_COLOR=1 colour even when not on a terminal

Each command has its own --help (gpuq submit --help); the README has the tour and the config.`;

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
    .showHelpAfterError('(run gpuq --help for the commands)')
    .addHelpText('after', MAIN_HELP_FOOTER)
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
  registerGet(program, app);
  registerWatch(program, app);
  registerNodes(program, app);
  registerRerun(program, app);
  registerGrade(program, app);
  registerPrune(program, app);
  registerStats(program, app);
  registerResults(program, app);
  registerCompetitions(program, app);
  registerCompletion(program, app);
  for (const c of program.commands)
    c.exitOverride()
      .configureOutput(program.configureOutput())
      .showHelpAfterError(`(run gpuq ${c.name()} --help for its options)`);
  return program;
}

/**
 * What stderr says about a bug in gpuq: one line with what to do, and the stack trace only under
 * GPUQ_DEBUG=1. Shared by main's catch and the entry point's last-resort handlers.
 */
export function bugReport(e: unknown, env: NodeJS.ProcessEnv): string {
  const err = e instanceof Error ? e : null;
  const message = (err ? err.message : String(e)).split('\n')[0] || (err?.name ?? 'unknown error');
  const line = `gpuq: internal error (a bug in gpuq): ${message}`;
  if (env.GPUQ_DEBUG === '1') return `${line}\n${err?.stack ?? String(e)}\n`;
  return `${line}; run it again with GPUQ_DEBUG=1 for the stack trace, and please report it.\n`;
}

/** Runs the command and maps what it throws to an exit code (the message goes to stderr). */
async function runCommand(argv: string[], io: Io): Promise<number> {
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
    io.stderr.write(bugReport(e, io.env));
    return EXIT.bug;
  }
}

/** The output streams' fate during one run: whether stdout's reader went away, and how to wait for them. */
interface OutputGuard {
  /** Resolves with the exit code once stdout cannot be written any more (never otherwise). */
  broken: Promise<number>;
  /** Whether stdout broke; then nothing more can reach it. */
  isBroken(): boolean;
  /** Resolves once everything written so far has been handed to the OS, or the stream failed. */
  drained(): Promise<void>;
  dispose(): void;
}

/**
 * Listens for write errors on stdout and stderr, so a closed pipe (EPIPE) ends the run quietly
 * instead of as an unhandled 'error' event with a stack trace.
 */
function guardOutput(io: Io): OutputGuard {
  let broken = false;
  let settle: (code: number) => void = () => undefined;
  const brokenPromise = new Promise<number>((resolve) => {
    settle = resolve;
  });
  const onStdoutError = (e: NodeJS.ErrnoException): void => {
    if (broken) return;
    broken = true;
    if (e.code === 'EPIPE') {
      settle(EXIT_BROKEN_PIPE);
      return;
    }
    io.stderr.write(`gpuq: cannot write the output (${e.message}); nothing more can be printed.\n`);
    settle(EXIT.bug);
  };
  // A broken stderr leaves nowhere to say anything; the command's result still counts.
  const onStderrError = (): void => undefined;
  io.stdout.on('error', onStdoutError);
  io.stderr.on('error', onStderrError);
  const drain = (s: NodeJS.WritableStream): Promise<void> =>
    new Promise((resolve) => {
      if ((s as { destroyed?: boolean }).destroyed === true) return resolve();
      // The callback of an empty write runs after every earlier write has been flushed (or failed).
      s.write('', () => resolve());
    });
  return {
    broken: brokenPromise,
    isBroken: () => broken,
    drained: async () => {
      await Promise.all([drain(io.stdout), drain(io.stderr)]);
    },
    dispose: () => {
      io.stdout.off('error', onStdoutError);
      io.stderr.off('error', onStderrError);
    },
  };
}

/**
 * Runs gpuq with `argv` (as process.argv) and returns the exit code once stdout and stderr have
 * drained, so a caller that exits right after loses nothing of a piped output. When stdout's
 * reader goes away first (`gpuq … | head`), returns EXIT_BROKEN_PIPE at once, quietly.
 */
export async function main(argv: string[], io: Io): Promise<number> {
  const output = guardOutput(io);
  try {
    const code = await Promise.race([runCommand(argv, io), output.broken]);
    if (!output.isBroken()) await Promise.race([output.drained(), output.broken]);
    return output.isBroken() ? await output.broken : code;
  } finally {
    output.dispose();
  }
}
