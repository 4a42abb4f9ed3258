/**
 * `gpuq grade ID…` (issue 13): grades finished jobs again with the current grader config
 * (services/grade), prints each job's verdict line, and exits with the worst verdict's code
 * (0 graded, 18 the grader failed, 19 the submission was rejected), as `wait` does.
 */
import type { Command } from 'commander';
import { exitCodeForVerdict, worstExitCode } from '../core/exit-codes.js';
import type { CliApp } from './app.js';
import { verdictLine } from './render.js';

interface GradeFlags {
  json?: boolean;
}

/** Registers `grade`. */
export function registerGrade(program: Command, app: CliApp): void {
  program
    .command('grade')
    .description("grade finished jobs again with the competition's current grader; every grading is kept")
    .argument('<ids...>', 'job ids or prefixes')
    .option('--json', 'print the jobs as a JSON array')
    .addHelpText(
      'after',
      '\nOnly a job whose program exited 0 and whose folder on the node still holds its submission can be graded (else exit 2).\n' +
        'The newest grading decides the verdict; `gpuq show ID` lists them all. Exit code: the worst verdict (0, 18 or 19).',
    )
    .action(async (ids: string[], f: GradeFlags, cmd: Command) => {
      const ctx = app.context(cmd);
      const style = app.style(f.json === true);
      const { gradeJobs } = await import('../services/grade.js');
      const jobs = await gradeJobs(ctx, ids, (j) => {
        if (!f.json) app.print(verdictLine(j, style));
      });
      if (f.json) app.printJson(jobs);
      app.exitCode = worstExitCode(jobs.map((j) => (j.verdict ? exitCodeForVerdict(j.verdict.class) : 0)));
    });
}
