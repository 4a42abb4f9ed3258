/**
 * Shell completion scripts for bash, zsh and fish, built from a plain description of the CLI (the
 * commands, their options, what their arguments name). Pure: the CLI layer reads the description
 * off commander; names that change (job ids, nodes, competitions) are asked of
 * `gpuq __complete KIND` when the user presses Tab, so the script never goes stale.
 */
import { sh } from './quote.js';

/** What a word completes to: files, job ids, node names, competition names, fixed words, or nothing. */
export type CompletionKind = 'file' | 'job' | 'node' | 'competition' | 'none' | { words: readonly string[] };

/** The kinds `gpuq __complete KIND` answers from the ledger and the config. */
export const DYNAMIC_KINDS = ['jobs', 'nodes', 'competitions'] as const;
export type DynamicKind = (typeof DYNAMIC_KINDS)[number];

export interface CompletionOption {
  /** Every spelling, e.g. ["-q", "--quiet"]. */
  flags: readonly string[];
  /** What its value completes to; null for a flag that takes no value. */
  value: CompletionKind | null;
}

export interface CompletionCommand {
  name: string;
  aliases: readonly string[];
  options: readonly CompletionOption[];
  /** What its positional arguments complete to. */
  args: CompletionKind;
}

export interface CompletionSpec {
  program: string;
  globalOptions: readonly CompletionOption[];
  commands: readonly CompletionCommand[];
}

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

/** The completion script for one shell; see the module comment. */
export function completionScript(shell: Shell, spec: CompletionSpec): string {
  if (shell === 'fish') return fishScript(spec);
  const bash = bashScript(spec);
  if (shell === 'bash') return bash;
  // zsh runs the bash function through its bashcompinit layer, so both shells complete alike.
  // (compinit first where the user's .zshrc has not run it: bashcompinit's `complete` needs compdef)
  return (
    `#compdef ${spec.program}\n` +
    '(( $+functions[compdef] )) || { autoload -U +X compinit && compinit -u; }\n' +
    `autoload -U +X bashcompinit && bashcompinit\n${bash}`
  );
}

/** The bash word list (`compgen` input) for a kind, or a command that prints one. */
function bashWords(kind: CompletionKind, program: string): string {
  if (typeof kind === 'object') return `compgen -W ${sh(kind.words.join(' '))} -- "$cur"`;
  switch (kind) {
    case 'file':
      return 'compgen -f -- "$cur"';
    case 'job':
      return `compgen -W "$(${program} __complete jobs 2>/dev/null)" -- "$cur"`;
    case 'node':
      return `compgen -W "$(${program} __complete nodes 2>/dev/null)" -- "$cur"`;
    case 'competition':
      return `compgen -W "$(${program} __complete competitions 2>/dev/null)" -- "$cur"`;
    case 'none':
      return 'true';
  }
}

function flagsOf(options: readonly CompletionOption[]): string {
  return options.flatMap((o) => o.flags).join(' ');
}

function bashScript(spec: CompletionSpec): string {
  const p = spec.program;
  const fn = `_${p.replace(/[^A-Za-z0-9_]/g, '_')}_complete`;
  const names = spec.commands.flatMap((c) => [c.name, ...c.aliases]);
  const valueCases: string[] = [];
  const seen = new Set<string>();
  for (const o of [...spec.globalOptions, ...spec.commands.flatMap((c) => c.options)]) {
    if (o.value === null) continue;
    const flags = o.flags.filter((f) => !seen.has(f));
    if (flags.length === 0) continue;
    for (const f of flags) seen.add(f);
    valueCases.push(`    ${flags.join('|')}) COMPREPLY=($(${bashWords(o.value, p)})); return ;;`);
  }
  const commandCases = spec.commands.map((c) => {
    const opts = flagsOf([...c.options, ...spec.globalOptions, { flags: ['-h', '--help'], value: null }]);
    return (
      `    ${[c.name, ...c.aliases].join('|')})\n` +
      `      if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W ${sh(opts)} -- "$cur"))\n` +
      `      else COMPREPLY=($(${bashWords(c.args, p)})); fi ;;`
    );
  });
  return `# ${p} completion for bash; load it with: source <(${p} completion bash)
${fn}() {
  local cur prev cmd i
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  case "$prev" in
${valueCases.join('\n')}
  esac
  cmd=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "\${COMP_WORDS[i]}" in
      -*) ;;
      *) cmd="\${COMP_WORDS[i]}"; break ;;
    esac
  done
  if [[ -z "$cmd" ]]; then
    if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W ${sh(`${flagsOf(spec.globalOptions)} -h --help -V --version`)} -- "$cur"))
    else COMPREPLY=($(compgen -W ${sh(names.join(' '))} -- "$cur")); fi
    return
  fi
  case "$cmd" in
${commandCases.join('\n')}
  esac
}
complete -F ${fn} ${p}
`;
}

/** The fish argument source for a kind (`-a …` / `-F`), empty for none. */
function fishArgs(kind: CompletionKind, program: string): string {
  if (typeof kind === 'object') return `-f -a ${sh(kind.words.join(' '))}`;
  switch (kind) {
    case 'file':
      return '-F';
    case 'job':
      return `-f -a "(${program} __complete jobs 2>/dev/null)"`;
    case 'node':
      return `-f -a "(${program} __complete nodes 2>/dev/null)"`;
    case 'competition':
      return `-f -a "(${program} __complete competitions 2>/dev/null)"`;
    case 'none':
      return '-f';
  }
}

function fishOption(o: CompletionOption, program: string, condition: string): string {
  const spell = o.flags.map((f) => (f.startsWith('--') ? `-l ${f.slice(2)}` : `-s ${f.slice(1)}`)).join(' ');
  const value = o.value === null ? '' : ` -r ${fishArgs(o.value, program)}`;
  return `complete -c ${program} -n ${sh(condition)} ${spell}${value}`;
}

function fishScript(spec: CompletionSpec): string {
  const p = spec.program;
  const lines = [`# ${p} completion for fish; load it with: ${p} completion fish | source`, `complete -c ${p} -f`];
  for (const c of spec.commands) {
    lines.push(`complete -c ${p} -n __fish_use_subcommand -a ${sh(c.name)}`);
    for (const a of c.aliases) lines.push(`complete -c ${p} -n __fish_use_subcommand -a ${sh(a)}`);
  }
  for (const o of spec.globalOptions) lines.push(fishOption(o, p, 'true'));
  for (const c of spec.commands) {
    const cond = `__fish_seen_subcommand_from ${[c.name, ...c.aliases].join(' ')}`;
    lines.push(`complete -c ${p} -n ${sh(cond)} ${fishArgs(c.args, p)}`);
    for (const o of c.options) lines.push(fishOption(o, p, cond));
  }
  return `${lines.join('\n')}\n`;
}
