/**
 * `gpuq completion bash|zsh|fish` through the real shells: each script is loaded the way the
 * README says, then asked what follows a partial command line, with `gpuq` on PATH answering
 * job ids (from a real submitted job), node and competition names from a real config.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { need } from '../helpers/capability.js';
import { BIN, gpuq, type Home, makeHome, tempDir } from '../helpers/cli.js';

function has(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const CONFIG = {
  nodes: {
    local: { transport: 'local' },
    gpu1: { transport: 'ssh', host: 'gpu1.example' },
    gpu2: { transport: 'ssh', host: 'gpu2.example' },
  },
  defaults: { node: 'local' },
  competitions: { mnist: {}, cifar: {} },
};

/** A home with one finished job, and a PATH on which `gpuq` is this checkout's binary. */
async function setUp(): Promise<{ h: Home; env: NodeJS.ProcessEnv; jobId: string }> {
  const h = await makeHome(CONFIG, {}, { autoCleanup: false });
  const bin = await tempDir('gpuq-completion-bin-');
  writeFileSync(join(bin, 'gpuq'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} "$@"\n`);
  chmodSync(join(bin, 'gpuq'), 0o755);
  const dir = await tempDir('gpuq-completion-');
  writeFileSync(join(dir, 'ok.sh'), 'exit 0\n');
  const r = await gpuq(h, ['submit', join(dir, 'ok.sh'), '--wait', '-q']);
  expect(r.code, r.stderr).toBe(0);
  const jobId = r.stdout.split('\n')[0]?.trim() ?? '';
  expect(jobId).toMatch(/^[a-z0-9-]+$/);
  return { h, env: { ...h.env, PATH: `${bin}:${h.env.PATH ?? ''}` }, jobId };
}

function run(shell: string, script: string, env: NodeJS.ProcessEnv): string {
  return execFileSync(shell, ['-c', script], { env, encoding: 'utf8', timeout: 60_000 });
}

const lines = (s: string) => s.split('\n').filter((l) => l !== '');

describe('gpuq completion', () => {
  // one home with one finished job, shared: each shell only reads it
  let shared: Awaited<ReturnType<typeof setUp>>;
  beforeAll(async () => {
    shared = await setUp();
  });
  afterAll(() => shared?.h.cleanup());

  it('bash: commands, options, job ids, node and competition names, states', () => {
    const { env, jobId } = shared;
    // Each line asked, and what it should get: all asked in one bash that sources the script once
    // (as a user's shell does), each answer ended by a "--" line.
    const cases: Array<[string[], string[]]> = [
      [['gpuq', 'su'], ['submit']],
      [
        ['gpuq', 'l'],
        ['list', 'ls', 'logs'],
      ],
      [['gpuq', 'show', ''], [jobId]],
      [['gpuq', 'cancel', jobId.slice(0, 3)], [jobId]],
      [
        ['gpuq', 'submit', '--node', 'g'],
        ['gpu1', 'gpu2'],
      ],
      [
        ['gpuq', 'submit', '--competition', ''],
        ['mnist', 'cifar'],
      ],
      [['gpuq', 'list', '--state', 'ti'], ['timeout']],
      [['gpuq', 'submit', '--me'], ['--memory']],
      [['gpuq', 'nodes', 'l'], ['local']],
      // Docker isolation is built: its options are offered
      [['gpuq', 'submit', '--iso'], ['--isolation']],
      [['gpuq', 'submit', '--im'], ['--image']],
    ];
    const script = [
      'source <(gpuq completion bash) || exit 1',
      ...cases.map(
        ([words]) =>
          `COMPREPLY=(); COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; ` +
          `_gpuq_complete; printf '%s\\n' "\${COMPREPLY[@]}" --`,
      ),
    ].join('\n');
    const answers = run('bash', script, env).split(/^--\n/m).slice(0, cases.length).map(lines);
    expect(answers).toEqual(cases.map(([, want]) => want));
  });

  const zsh = need(has('zsh'), 'zsh');
  it.runIf(zsh.run)('zsh: the script registers itself and answers like bash', () => {
    zsh.check();
    const { env, jobId } = shared;
    const out = run(
      'zsh',
      'source <(gpuq completion zsh) && print -r -- "$_comps[gpuq]" && ' +
        `emulate sh -c 'COMP_WORDS=(gpuq wait ""); COMP_CWORD=2; _gpuq_complete; printf "%s\\n" "\${COMPREPLY[@]}"'`,
      { ...env, ZDOTDIR: env.GPUQ_HOME },
    );
    expect(lines(out)).toEqual(['_bash_complete -F _gpuq_complete', jobId]);
  });

  const fish = need(has('fish'), 'fish');
  it.runIf(fish.run)('fish: complete -C answers commands, job ids and nodes', () => {
    fish.check();
    const { env, jobId } = shared;
    // All three asked in one fish that loads the script once, each answer ended by a "@@" line.
    const asked = ['gpuq sh', 'gpuq diagnose ', 'gpuq submit --node gpu'];
    const out = run(
      'fish',
      ['gpuq completion fish | source', ...asked.map((l) => `complete -C '${l}'; echo @@`)].join('\n'),
      { ...env, HOME: env.GPUQ_HOME },
    );
    const answers = out
      .split(/^@@\n/m)
      .slice(0, asked.length)
      .map((a) => lines(a).map((l) => l.split('\t')[0]));
    expect(answers).toEqual([['show'], [jobId], ['gpu1', 'gpu2']]);
  });

  it('refuses an unknown shell with exit 2', async () => {
    const h = await makeHome(CONFIG);
    const r = await gpuq(h, ['completion', 'tcsh']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no completion for "tcsh"; gpuq has it for bash, zsh, fish/);
  });
});
