/**
 * The local transport runs its scripts without the user's shell startup files: bash reads
 * ~/.bashrc even for `bash -c` when stdin is a socket (as node's pipes are), and a slow .bashrc
 * (pyenv's rehash waits up to a minute on a stale lock) made every local command wait.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { localTransport } from '../../src/transport/local.js';

const home = mkdtempSync(join(tmpdir(), 'gpuq-rc-home-'));
afterAll(() => rmSync(home, { recursive: true, force: true }));

it('runs scripts and streams without sourcing ~/.bashrc or ~/.profile', async () => {
  const marker = join(home, 'sourced');
  for (const rc of ['.bashrc', '.profile', '.bash_profile']) {
    writeFileSync(join(home, rc), `echo ${rc} >> '${marker}'\necho "from ${rc}"\n`);
  }
  const saved = process.env.HOME;
  process.env.HOME = home;
  try {
    const t = localTransport('local');
    const r = await t.exec({ purpose: 'print HOME', script: 'echo "$HOME"' });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${home}\n`);
    let streamed = '';
    const onStdout = (c: Buffer | string) => {
      streamed += c.toString();
    };
    const s = await t.stream({ purpose: 'stream a line', script: 'echo streamed' }, { onStdout });
    expect(s.code).toBe(0);
    expect(streamed).toBe('streamed\n');
    await t.close();
  } finally {
    process.env.HOME = saved;
  }
  expect(existsSync(marker)).toBe(false);
});
