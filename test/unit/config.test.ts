import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, locate } from '../../src/config/load.js';

function withConfig(content: unknown) {
  const dir = mkdtempSync(join(tmpdir(), 'gpuq-cfg-'));
  writeFileSync(join(dir, 'config.json'), typeof content === 'string' ? content : JSON.stringify(content));
  return { dir, load: () => loadConfig({ env: { GPUQ_HOME: dir }, cwd: dir }) };
}

describe('config', () => {
  it('has the embedded default: one local node', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gpuq-cfg-'));
    const c = await loadConfig({ env: { GPUQ_HOME: dir }, cwd: dir });
    expect(Object.keys(c.nodes)).toEqual(['local']);
    expect(c.nodes.local?.workdir).toBe(join(dir, 'nodes', 'local'));
    expect(c.ledgerPath).toBe(join(dir, 'ledger.json'));
    expect(c.source).toBeNull();
  });
  it('follows the contract: --config, ./gpuq.config.json, XDG', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gpuq-loc-'));
    writeFileSync(join(dir, 'gpuq.config.json'), '{}');
    expect(locate({ env: { XDG_STATE_HOME: '/s' }, cwd: dir })).toEqual({
      configFile: join(dir, 'gpuq.config.json'),
      stateDir: '/s/gpuq',
    });
    expect(locate({ explicitFile: 'x.json', env: {}, cwd: dir }).configFile).toBe(join(dir, 'x.json'));
    expect(locate({ env: { XDG_CONFIG_HOME: '/nonexistent' }, cwd: '/' }).configFile).toBeNull();
  });
  it('refuses a state folder with a line break for the local node (its job would start, then be lost)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gpuq-cfg-\n'));
    await expect(loadConfig({ env: { GPUQ_HOME: dir }, cwd: dir })).rejects.toThrow(/line break/);
  });
  it('merges defaults, nodes and competitions', async () => {
    const c = await withConfig({
      defaults: { timeout: '10m', memory: '2g', node: 'gpu1' },
      nodes: { gpu1: { transport: 'ssh', host: 'gpu1.lab', gpus: 2 } },
      competitions: { mnist: { grader: ['python3', 'grade.py'], limits: { timeout: '5m' } } },
    }).load();
    expect(c.defaults.timeoutS).toBe(600);
    expect(c.defaults.memoryBytes).toBe(2 * 1024 ** 3);
    expect(c.defaults.pids).toBe(1024);
    expect(c.nodes.gpu1?.gpus).toEqual([0, 1]);
    expect(c.nodes.gpu1?.workdir).toBe('~/.gpuq');
    expect(c.competitions.mnist?.limits.timeoutS).toBe(300);
    expect(c.nodes.gpu1?.stallMarginS).toBeNull();
  });
  it("reads a node's stallMargin as a duration", async () => {
    const c = await withConfig({ nodes: { here: { transport: 'local', stallMargin: '2m' } } }).load();
    expect(c.nodes.here?.stallMarginS).toBe(120);
  });
  it.each([
    ['{not json', /not valid JSON at line 1, column 2/],
    ['{\n  "defaults": {\n    "timeout": "1h",\n  }\n}\n', /not valid JSON at line 4, column 3/],
    ['{\n  "nodes": {', /not valid JSON at line 2, column 13/],
    [{ defaults: { memory: 8 } }, /defaults\.memory "8" has no unit: did you mean "8m" or "8g"\?/],
    [{ nodes: { a: { transport: 'ftp' } } }, /nodes\.a\.transport: expected "local", "ssh" or "slurm"/],
    [
      { nodes: { a: { transport: 'slurm', sbatchArgs: ['--time=5'] } } },
      /nodes\.a\.sbatchArgs\[0\]: .*--time is not allowed/,
    ],
    [{ nodes: { a: { transport: 'slurm', partition: 'a b' } } }, /nodes\.a\.partition: expected a Slurm name/],
    [
      { nodes: { a: { transport: 'ssh', host: 'h', partition: 'gpu' } } },
      /nodes\.a\.partition: only a Slurm node has it/,
    ],
    [{ nodes: { a: { transport: 'ssh' } } }, /nodes\.a\.host: required/],
    [{ nodes: { a: { transport: 'ssh', host: 'h', port: 70000 } } }, /nodes\.a\.port/],
    [{ defaults: { timeout: '0s' } }, /defaults\.timeout must be more than zero/],
    [{ defaults: { memory: 'lots' } }, /defaults\.memory "lots" is not a size/],
    [{ defaults: { node: 'nope' } }, /defaults\.node: "nope" is not one of the nodes/],
    [{ colour: true }, /unknown field "colour"/],
    [{ nodes: { a: { transport: 'local', stallMargin: 'soon' } } }, /nodes\.a\.stallMargin/],
    [{ nodes: { a: { transport: 'ssh', host: 'h', workdir: '/srv/a\nb' } } }, /nodes\.a\.workdir: .* line break/],
  ])('refuses %j naming file and field', async (content, re) => {
    const { dir, load } = withConfig(content);
    try {
      await load();
      expect.unreachable();
    } catch (e) {
      expect((e as Error).message).toMatch(re);
      expect((e as Error).message).toContain(join(dir, 'config.json'));
      expect((e as { exitCode: number }).exitCode).toBe(2);
    }
  });
});
