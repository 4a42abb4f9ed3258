/**
 * `gpuq completion bash|zsh|fish` prints a completion script built from the registered commands;
 * the hidden `gpuq __complete KIND` answers the script's questions at Tab (job ids, nodes,
 * competitions) through services/completion.
 */
import type { Command, Option } from 'commander';
import {
  type CompletionCommand,
  type CompletionKind,
  type CompletionOption,
  completionScript,
  DYNAMIC_KINDS,
  type DynamicKind,
  SHELLS,
  type Shell,
} from '../core/completion.js';
import { usageError } from '../core/errors.js';
import { JOB_STATES, VERDICT_CLASSES } from '../core/types.js';
import type { CliApp } from './app.js';

/** What an option's value completes to, by the option's name. */
function valueKind(o: Option): CompletionKind | null {
  if (!o.required && !o.optional) return null;
  switch (o.attributeName()) {
    case 'node':
      return 'node';
    case 'competition':
      return 'competition';
    case 'config':
      return 'file';
    case 'state':
      return { words: [...JOB_STATES, ...VERDICT_CLASSES] };
    default:
      return 'none';
  }
}

function optionsOf(cmd: Command): CompletionOption[] {
  return cmd.options
    .filter((o) => !o.hidden)
    .map((o) => ({ flags: [o.short, o.long].filter((f): f is string => !!f), value: valueKind(o) }));
}

/** What a command's positional arguments complete to, by the argument's name. */
function argsKind(cmd: Command): CompletionKind {
  // A command with subcommands (`competitions check`): their names.
  const subs = cmd.commands.filter((c) => c.name() !== 'help').map((c) => c.name());
  if (subs.length > 0) return { words: subs };
  const name = cmd.registeredArguments[0]?.name();
  if (name === 'id' || name === 'ids') return 'job';
  if (name === 'names') return 'node';
  if (name === 'file') return 'file';
  if (name === 'shell') return { words: SHELLS };
  return 'none';
}

/** The plain description of the CLI that core/completion turns into a script. */
function describe(program: Command): { globalOptions: CompletionOption[]; commands: CompletionCommand[] } {
  const commands = program.commands
    .filter((c) => !c.name().startsWith('__') && c.name() !== 'help')
    .map((c) => ({ name: c.name(), aliases: c.aliases(), options: optionsOf(c), args: argsKind(c) }));
  const globalOptions = optionsOf(program).filter((o) => !o.flags.includes('--version'));
  return { globalOptions, commands };
}

/** Registers `completion` and the hidden `__complete` on the program. */
export function registerCompletion(program: Command, app: CliApp): void {
  program
    .command('completion')
    .description('print a completion script: source <(gpuq completion bash), or zsh, or fish')
    .argument('<shell>', 'bash, zsh or fish')
    .action((shell: string) => {
      if (!(SHELLS as readonly string[]).includes(shell))
        throw usageError(`no completion for "${shell}"; gpuq has it for ${SHELLS.join(', ')}.`);
      app.io.stdout.write(completionScript(shell as Shell, { program: 'gpuq', ...describe(program) }));
    });
  program
    .command('__complete', { hidden: true })
    .argument('<kind>')
    .action(async (kind: string, _f: unknown, cmd: Command) => {
      if (!(DYNAMIC_KINDS as readonly string[]).includes(kind)) throw usageError(`unknown completion kind "${kind}".`);
      const { completionWords } = await import('../services/completion.js');
      const words = await completionWords(app.context(cmd), kind as DynamicKind);
      if (words.length > 0) app.print(words.join('\n'));
    });
}
