/**
 * The grader's container of a job under `--isolation docker` (issue 14): grade.py's `--docker`
 * argument (core/docker-args graderDockerArgs) for the supervisor's grading and for `gpuq grade`.
 * Its image is the competition's graderImage, else its image, else the job's.
 */
import { graderDockerArgs } from '../core/docker-args.js';
import type { CompetitionConfig, NodeConfig } from '../config/types.js';
import type { Job } from '../core/types.js';

/**
 * grade.py's arguments that put the grader in a container, or none for a job on the host (or a
 * competition without a grader). `runImage` is the image the job's program ran in.
 */
export function graderContainerArgs(
  job: Pick<Job, 'id' | 'isolation' | 'limits'>,
  comp: CompetitionConfig | undefined,
  node: NodeConfig,
  runImage: string | null,
  submitter: string,
  keep: boolean,
): string[] {
  if (job.isolation !== 'docker' || !comp?.grader || comp.grader.length === 0) return [];
  const image = comp.graderImage ?? comp.image ?? runImage;
  if (!image) return [];
  return graderDockerArgs({
    jobId: job.id,
    submitter,
    image,
    answers: comp.answers ?? null,
    memoryBytes: comp.graderLimits.memoryBytes,
    pids: job.limits.pids,
    docker: node.docker.command,
    extraFlags: [...(node.docker.runtime ? [`--runtime=${node.docker.runtime}`] : []), ...node.docker.extraFlags],
    keep,
  });
}
