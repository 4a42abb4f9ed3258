/**
 * The config file's schema (zod). Durations and sizes stay strings here and are parsed by
 * src/core/units.ts in load.ts, so the messages match the command-line options'.
 */
import { z } from 'zod';
import { LIMITS, type LimitConfigName, type LimitSpec } from '../core/limits.js';
import { checkExtraFlag, isImageName } from '../core/docker-args.js';
import { ISOLATIONS } from '../core/types.js';

const duration = z.union([z.string(), z.number().positive()], {
  error: 'expected a duration like "90s", "30m" or "1h30m"',
});
const size = z.union([z.string(), z.number().positive()], { error: 'expected a size like "512m" or "2g"' });
/** A whole number of at least `min` (1 or 0); the upper bound is checked in load.ts, naming the field. */
const count = (min: number) =>
  z
    .number({ error: 'expected a whole number' })
    .int('expected a whole number')
    .min(min, min === 1 ? 'expected a number above 0' : `expected ${min} or more`);

/** The field of one limit, by its kind; null (unlimited) where the limit allows it. */
function limitField(spec: LimitSpec) {
  const base = spec.kind === 'duration' ? duration : spec.kind === 'size' ? size : count(spec.min);
  return (spec.nullable ? base.nullable() : base).optional();
}

/** Every limit of core/limits.ts under its config name, for `defaults` and a competition's `limits`. */
const limits = Object.fromEntries((LIMITS as readonly LimitSpec[]).map((l) => [l.config, limitField(l)])) as Record<
  LimitConfigName,
  ReturnType<typeof limitField>
>;

/** A Slurm node's own fields (transport "slurm"; README, "Slurm"); checked further in load.ts. */
const slurmWord = z
  .string()
  .regex(/^[A-Za-z0-9._+-]{1,128}$/, 'expected a Slurm name (letters, digits, ".", "_", "+", "-")');
const slurmNodeFields = {
  partition: slurmWord.optional(),
  account: slurmWord.optional(),
  qos: slurmWord.optional(),
  sbatchArgs: z.array(z.string().min(1)).optional(),
  cpusPerTask: z.number().int().min(1).max(4096, 'expected a whole number from 1 to 4096').optional(),
};
/** A Docker image reference (core/docker-args.ts isImageName). */
const imageName = z.string().refine(isImageName, 'expected a Docker image name like "python:3.12-slim"');
/** One of the extra `docker run` flags a node may add (core/docker-args.ts ALLOWED_EXTRA_FLAGS). */
const extraFlag = z.string().superRefine((f, ctx) => {
  const why = checkExtraFlag(f);
  if (why) ctx.addIssue({ code: 'custom', message: why });
});

export const nodeSchema = z.strictObject({
  transport: z.enum(['local', 'ssh', 'slurm'], { error: 'expected "local", "ssh" or "slurm"' }),
  host: z.string().min(1, 'expected a host name or ~/.ssh/config alias').optional(),
  port: z.number().int().min(1).max(65535, 'expected a port from 1 to 65535').optional(),
  user: z.string().min(1).optional(),
  identityFile: z.string().min(1).optional(),
  jump: z.string().min(1).optional(),
  gpus: z
    .union([z.number().int().min(0), z.array(z.number().int().min(0))], {
      error: 'expected a GPU count or a list of GPU indices',
    })
    .optional(),
  workdir: z.string().min(1).optional(),
  python: z.string().min(1).optional(),
  acceptNewHostKey: z.boolean().optional(),
  connectTimeout: duration.optional(),
  stallMargin: duration.optional(),
  boundary: z.enum(['auto', 'none'], { error: 'expected "auto" or "none"' }).optional(),
  runAs: z
    .string()
    .regex(/^[a-z_][a-z0-9_.-]*\$?$/i, 'expected a user name on the node')
    .refine((u) => u !== 'root', 'expected an unprivileged user, not root')
    .optional(),
  lockDir: z
    .string()
    .regex(/^\/[^\n\r\0]*$/, 'expected an absolute folder on the node (every gpuq account there must share it)')
    .optional(),
  foreignGpuMemory: size.optional(),
  ...slurmNodeFields,
  docker: z
    .strictObject({
      command: z
        .union([z.string().min(1), z.array(z.string().min(1)).min(1)], {
          error: 'expected a command like "docker" or ["docker", "--host", "unix:///run/docker.sock"]',
        })
        .optional(),
      image: imageName.optional(),
      runtime: z
        .string()
        .regex(/^[a-z][a-z0-9._-]{0,63}$/i, 'expected a runtime name like "nvidia"')
        .optional(),
      extraFlags: z.array(extraFlag).optional(),
    })
    .optional(),
});

export const configSchema = z.strictObject({
  $schema: z.string().optional(),
  defaults: z
    .strictObject({
      ...limits,
      node: z.string().min(1).optional(),
      isolation: z.enum(ISOLATIONS, { error: 'expected "ulimit" or "docker"' }).optional(),
      image: imageName.optional(),
      maxFileSize: size.optional(),
      maxUploadSize: size.optional(),
      maxGetFileSize: size.optional(),
      maxGetSize: size.optional(),
    })
    .optional(),
  nodes: z
    .record(z.string().regex(/^[A-Za-z0-9._-]+$/, 'node names use letters, digits, ".", "_" and "-"'), nodeSchema)
    .optional(),
  competitions: z
    .record(
      z.string().regex(/^[A-Za-z0-9._-]+$/, 'competition names use letters, digits, ".", "_" and "-"'),
      z.strictObject({
        /** Folder on the node given to the program as $GPUQ_DATA (read-only where the isolation allows). */
        data: z
          .string()
          .regex(
            /^([/~]|\.\.?\/)[^\n\r\0]*$/,
            'expected an absolute folder on the node (or ./… relative to the config file)',
          )
          .optional(),
        /** Folder on the node for the grader only. */
        answers: z
          .string()
          .regex(
            /^([/~]|\.\.?\/)[^\n\r\0]*$/,
            'expected an absolute folder on the node (or ./… relative to the config file)',
          )
          .optional(),
        /** The file the program must write, relative to its working folder. */
        submission: z
          .string()
          .regex(
            /^(?!\/)(?!.*(^|\/)\.\.(\/|$))[^\n\r\0]+$/,
            'expected a path relative to the working folder, without ".."',
          )
          .optional(),
        /** The grader command on the node, as an argument list. */
        grader: z
          .array(
            z
              .string()
              .min(1)
              .regex(/^[^\n\r\0]*$/, 'expected no line breaks'),
            {
              error: 'expected the grader command as a list of arguments, like ["python3", "/srv/grade.py"]',
            },
          )
          .min(1, 'expected at least the grader program')
          .optional(),
        graderLimits: z
          .strictObject({ timeout: duration.optional(), memory: size.optional(), output: size.optional() })
          .optional(),
        /** Largest submission file the grader is given (default 100 MiB). */
        maxSubmissionSize: size.optional(),
        metric: z.string().min(1).optional(),
        higherIsBetter: z.boolean().optional(),
        requireBoundary: z.boolean().optional(),
        limits: z.strictObject(limits).optional(),
        // --isolation docker: the image of the run and of the grader, and whether the run may use the network.
        image: imageName.optional(),
        graderImage: imageName.optional(),
        network: z.boolean().optional(),
      }),
    )
    .optional(),
});

export type RawConfig = z.infer<typeof configSchema>;
export type RawNode = z.infer<typeof nodeSchema>;
