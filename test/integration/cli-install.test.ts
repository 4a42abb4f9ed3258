/**
 * The installed binary: `npx gpuq` resolves the package's own bin from the repository root. A file
 * of its own (moved from cli-submit.test.ts): npx loads npm and walks node_modules, which took up
 * to a minute on a loaded machine, so it runs on the other worker beside the local-node tests.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { REPO } from '../helpers/cli.js';

describe('installation', () => {
  it('npx gpuq works from the repository root', () => {
    const out = execFileSync('npx', ['--no-install', 'gpuq', '--version'], { cwd: REPO, encoding: 'utf8' });
    expect(out.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});
