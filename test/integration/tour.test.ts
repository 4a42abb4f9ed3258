/**
 * The README's "Install and first job" and "A five-minute tour", run as written: every command of
 * their `sh` blocks is read out of README.md and run in order, in one fresh GPUQ_HOME, from the
 * repository root (a fresh clone's folder), so the test fails as soon as the README and gpuq drift
 * apart. Only two things are substituted: `gpuq` (and `npx gpuq`) becomes the built binary, and
 * a job id the README shows becomes the id the submit printed (its prefixes too). The npm steps
 * (install, link, test) are not run: this tree is already installed and built.
 *
 * In a transcript block (`$ ` lines) each command must exit 0, except that one ending in
 * `; echo $?` must print the code the README shows on its last line; a block without `$ ` is a
 * script, run whole, that must exit 0. `TOUR_TIMES=1` prints how long each step took.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, makeHome, REPO, type Home } from '../helpers/cli.js';

interface Step {
  /** The command (or script) as the README shows it. */
  command: string;
  /** The lines the README shows under it (a transcript's output), without comments. */
  shown: string[];
  /** Where it is, for failure messages. */
  where: string;
}

/** npm commands the install steps may show; anything else that is not gpuq fails the test. */
const NPM_STEPS = new Set(['npm install', 'npm link', 'npm install -g .', 'npm test']);

/** The `sh` blocks of a `## ` section of README.md, as steps. */
function stepsOf(readme: string, heading: string): Step[] {
  const start = readme.indexOf(`\n## ${heading}\n`);
  expect(start, `README.md has no "## ${heading}" section`).toBeGreaterThan(-1);
  const rest = readme.slice(start + 1);
  const end = rest.indexOf('\n## ', 1);
  const section = end < 0 ? rest : rest.slice(0, end);
  const steps: Step[] = [];
  for (const m of section.matchAll(/```sh\n([\s\S]*?)```/g)) {
    const lines = (m[1] as string).replace(/\n$/, '').split('\n');
    const where = `README "${heading}", block at "${lines[0]}"`;
    if (!lines.some((l) => l.startsWith('$ '))) {
      steps.push({ command: lines.join('\n'), shown: [], where });
      continue;
    }
    for (const line of lines) {
      if (line.startsWith('$ ')) steps.push({ command: line.slice(2), shown: [], where: `${where}: "${line}"` });
      else steps.at(-1)?.shown.push(line.replace(/\s+#.*$/, ''));
    }
  }
  return steps;
}

/** A command without its trailing comment (for the npm allow-list and the echo check). */
function bare(command: string): string {
  return command.replace(/\s+#[^'"]*$/, '').trim();
}

/** Runs a script with bash in the repository root, gpuq being the built binary. */
function runBash(home: Home, script: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const prelude = `gpuq() { ${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} "$@"; }\n`;
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['--norc', '--noprofile', '-c', prelude + script], {
      cwd: REPO,
      env: home.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Placeholder id → real id; a placeholder's prefix (2+ characters) in a command means the real id. */
function substituteIds(command: string, ids: Map<string, string>): string {
  return command.replace(/\b[0-9a-z]{2,8}\b/g, (token) => {
    const hits = [...ids.keys()].filter((p) => p.startsWith(token));
    return hits.length === 1 ? (ids.get(hits[0] as string) as string) : token;
  });
}

describe('the README tour', () => {
  it('runs as written, from a fresh GPUQ_HOME, each command exiting as the README says', {
    timeout: 300_000,
  }, async () => {
    const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
    const steps = [...stepsOf(readme, 'Install and first job'), ...stepsOf(readme, 'A five-minute tour')];
    expect(steps.length).toBeGreaterThan(10);
    const home = await makeHome();
    const ids = new Map<string, string>();
    let ran = 0;
    let linked = false;
    for (const step of steps) {
      const cmd = bare(step.command);
      if (cmd.startsWith('npm ')) {
        expect(NPM_STEPS, `${step.where}: an npm step the test does not know`).toContain(cmd);
        if (cmd === 'npm link' || cmd === 'npm install -g .') linked = true;
        continue;
      }
      // A bare `gpuq` only exists once an install step put it on the PATH.
      if (/(^|[\s$(])gpuq /.test(step.command.replace(/\bnpx gpuq\b/g, '')))
        expect(linked, `${step.where}: uses gpuq before an install step puts it on the PATH`).toBe(true);
      expect(step.command, `${step.where}: neither gpuq nor npm`).toMatch(/(^|[\s$(])gpuq /);
      const script = substituteIds(step.command.replace(/\bnpx gpuq\b/g, 'gpuq'), ids);
      const t0 = Date.now();
      const r = await runBash(home, script);
      if (process.env.TOUR_TIMES) console.log(`${Date.now() - t0} ms  ${script.split('\n')[0]}`);
      const why = `${step.where}\nran: ${script}\nexit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
      expect(r.code, why).toBe(0);
      if (/;\s*echo \$\?$/.test(cmd)) {
        const shownCode = step.shown.filter((l) => l.trim() !== '').at(-1);
        expect(shownCode, `${step.where}: the README shows no exit code under it`).toMatch(/^\d+$/);
        expect(r.stdout.trim().split('\n').at(-1), why).toBe(shownCode);
      }
      // A submit's first line is the job's id, in the README and in fact.
      const placeholder = /^([0-9a-z]{8})\b/.exec(step.shown[0] ?? '')?.[1];
      if (/\bgpuq submit\b/.test(cmd) && placeholder) {
        const real = /^([0-9a-z]{8})$/m.exec(r.stdout)?.[1];
        expect(real, why).toBeDefined();
        expect(ids.has(placeholder), `${step.where}: the id ${placeholder} is shown twice`).toBe(false);
        ids.set(placeholder, real as string);
      }
      ran++;
    }
    // Each placeholder's prefixes must name it alone, or a command could reach the wrong job.
    for (const p of ids.keys())
      expect([...ids.keys()].filter((q) => q !== p && q.slice(0, 2) === p.slice(0, 2))).toEqual([]);
    expect(ran).toBeGreaterThan(10);
    expect(ids.size).toBeGreaterThanOrEqual(3);
  });
});
