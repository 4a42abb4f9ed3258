/**
 * `gpuq get ID [PATH…]`: flags → GetOptions → services/get.
 */
import type { Command } from 'commander';
import { shownName } from '../core/file-names.js';
import { formatBytes } from '../core/format.js';
import type { CliApp } from './app.js';

/** Registers `get`. */
export function registerGet(program: Command, app: CliApp): void {
  program
    .command('get')
    .description('copy files a job wrote back (default: what it created in its working folder)')
    .argument('<id>', 'job id or prefix')
    .argument('[paths...]', "files or folders, relative to the job's working folder")
    .option('--out <dir>', 'write into this folder (default: ./<job id>/)')
    .option('--force', 'replace files that exist there')
    .option('--json', 'print what was copied as JSON')
    .addHelpText(
      'after',
      '\nLinks, special files and unsafe names the job left are never followed nor copied (named on stderr).\n' +
        'Limits: defaults.maxGetFileSize (1g) per file and defaults.maxGetSize (4g) in all, in the config.',
    )
    .action(async (id: string, paths: string[], f: { out?: string; force?: boolean; json?: boolean }, cmd: Command) => {
      const ctx = app.context(cmd);
      const { getFiles } = await import('../services/get.js');
      const r = await getFiles(ctx, { id, paths, out: f.out ?? null, force: f.force === true }, app.io.cwd);
      for (const s of r.skipped)
        app.io.stderr.write(`gpuq: left out ${shownName(s.name)}: ${s.why.replace(/^gpuq: /, '')}\n`);
      if (f.json) {
        app.printJson({ id: r.job.id, dir: r.dir, files: r.files, skipped: r.skipped });
        return;
      }
      for (const file of r.files) app.print(file.name);
      const bytes = r.files.reduce((n, x) => n + x.size, 0);
      app.io.stderr.write(
        r.files.length === 0
          ? `gpuq: no files to copy from job ${r.job.id}${paths.length ? '' : ' (it created none besides what was uploaded)'}\n`
          : `gpuq: copied ${r.files.length} file(s), ${formatBytes(bytes)}, into ${r.dir}\n`,
      );
    });
}
