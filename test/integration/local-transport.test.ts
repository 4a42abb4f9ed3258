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

it('runs many streams at once with one exit hook between them (no listener warning), gone after', async () => {
  const t = localTransport('local');
  const before = process.listenerCount('exit');
  let most = before;
  const gate = join(home, 'streams-go');
  // Each stream waits for the gate file, so all twelve are running together before any ends.
  const runs = Array.from({ length: 12 }, () =>
    t.stream({ purpose: 'wait for the gate', script: `while [ ! -e '${gate}' ]; do sleep 0.05; done; echo ok` }, {}),
  );
  await new Promise((r) => setImmediate(r));
  most = Math.max(most, process.listenerCount('exit'));
  writeFileSync(gate, '');
  const results = await Promise.all(runs);
  expect(results.map((r) => r.code)).toEqual(Array(12).fill(0));
  expect(most).toBe(before + 1);
  expect(process.listenerCount('exit')).toBe(before);
  await t.close();
});
