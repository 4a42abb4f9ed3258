/**
 * Read commands must start fast: they never load ink/react (only `watch` does), nor zod without a
 * config file, nor execa, node-ssh or the classifier when no job is active. A module hook
 * records every module the real binary loads.
 */
import { mkdtemp, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpuq, makeHome, writeProgram, type Home } from '../helpers/cli.js';

let dir: string;
let home: Home;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gpuq-startup-'));
  await writeFile(
    join(dir, 'hooks.mjs'),
    `import { appendFileSync } from 'node:fs';
export async function resolve(spec, ctx, next) {
  const r = await next(spec, ctx);
  appendFileSync(process.env.GPUQ_MODULE_LOG, r.url + '\\n');
  return r;
}
`,
  );
  await writeFile(
    join(dir, 'register.mjs'),
    `import { register } from 'node:module';\nregister(${JSON.stringify(`file://${join(dir, 'hooks.mjs')}`)});\n`,
  );
  home = await makeHome();
  const prog = await writeProgram('ok.py', 'print(1)\n');
  expect((await gpuq(home, ['submit', prog, '--wait', '-q'])).code).toBe(0);
});
afterAll(async () => {
  await home.cleanup();
});

async function modulesLoadedBy(args: string[], name: string): Promise<string[]> {
  const log = join(dir, `${name}.log`);
  const h: Home = {
    ...home,
    env: { ...home.env, GPUQ_MODULE_LOG: log, NODE_OPTIONS: `--import ${join(dir, 'register.mjs')}` },
  };
  const r = await gpuq(h, args);
  expect(r.code, r.stderr).toBe(0);
  return (await readFile(log, 'utf8')).split('\n').filter(Boolean);
}

describe('startup cost', () => {
  it.each([
    [['list', '--json'], 'list'],
    [['list'], 'list-table'],
  ])('gpuq %j loads no ink, react, zod, execa, node-ssh or classifier', async (args, name) => {
    const mods = await modulesLoadedBy(args, name);
    expect(mods.some((m) => m.includes('/dist/cli/main.js'))).toBe(true);
    for (const heavy of [
      '/node_modules/ink/',
      '/node_modules/react/',
      '/node_modules/zod/',
      '/node_modules/execa/',
      '/node_modules/node-ssh/',
      '/dist/core/classify.js',
    ]) {
      expect(
        mods.filter((m) => m.includes(heavy)),
        heavy,
      ).toEqual([]);
    }
  });

  it('gpuq show of a finished job loads no ink, react or execa either', async () => {
    const id = JSON.parse((await gpuq(home, ['list', '--json'])).stdout)[0].id as string;
    const mods = await modulesLoadedBy(['show', id], 'show');
    for (const heavy of ['/node_modules/ink/', '/node_modules/react/', '/node_modules/execa/']) {
      expect(
        mods.filter((m) => m.includes(heavy)),
        heavy,
      ).toEqual([]);
    }
  });

  it('a config file is checked by the schema once, and again whenever it changes', async () => {
    const h = await makeHome({ defaults: { timeout: '2h' } });
    try {
      const run = async (name: string) => {
        const log = join(dir, `${name}.log`);
        const r = await gpuq(
          { ...h, env: { ...h.env, GPUQ_MODULE_LOG: log, NODE_OPTIONS: `--import ${join(dir, 'register.mjs')}` } },
          ['list', '--json'],
        );
        const zod = (await readFile(log, 'utf8')).includes('/node_modules/zod/');
        return { code: r.code, stderr: r.stderr, zod };
      };
      expect(await run('cfg1')).toMatchObject({ code: 0, zod: true });
      expect(await run('cfg2')).toMatchObject({ code: 0, zod: false });
      await writeFile(join(h.dir, 'config.json'), JSON.stringify({ defaults: { timeout: '2h', colour: true } }));
      const bad = await run('cfg3');
      expect(bad).toMatchObject({ code: 2, zod: true });
      expect(bad.stderr).toMatch(/unknown field "colour"/);
      expect(await run('cfg4')).toMatchObject({ code: 2, zod: true });
    } finally {
      await h.cleanup();
    }
  });
});
