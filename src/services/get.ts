/**
 * `gpuq get`: copies files a job wrote back from its node, safely. The job chose these names and
 * contents: the node side (templates/collect.py) follows no link and sends regular files only;
 * this side checks every name again (core/file-names), enforces the size caps again, writes
 * into a fresh private staging folder inside DIR with O_EXCL|O_NOFOLLOW, and only when the whole
 * answer arrived and nothing would be overwritten (unless `force`) renames the files into place,
 * never through a link in DIR.
 */
import { constants as fsc } from 'node:fs';
import { lstat, mkdir, mkdtemp, open, readFile, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { NodeFaultError, UserError, usageError } from '../core/errors.js';
import { EXIT } from '../core/exit-codes.js';
import { FrameReader } from '../core/file-frames.js';
import { nameProblem, shownName } from '../core/file-names.js';
import { formatBytes } from '../core/format.js';
import type { Job } from '../core/types.js';
import { collectFiles } from '../node/protocol.js';
import type { AppContext } from './context.js';
import { openJobLink } from './job-link.js';
import { findJob } from './find.js';

export interface GetOptions {
  id: string;
  /** Paths relative to the job's working folder; empty: what the job created. */
  paths: string[];
  /** Where to write (default ./<job id>/). */
  out: string | null;
  /** Replace files that exist in DIR. */
  force: boolean;
}

export interface GetResult {
  job: Job;
  /** The folder written to (absolute). */
  dir: string;
  files: Array<{ name: string; size: number }>;
  /** What was left out, and why (links, special files, unsafe names, over a cap). */
  skipped: Array<{ name: string; why: string }>;
}

/**
 * Copies `paths` (or, by default, every file the program created: not the program nor its
 * --include files) from the job's working folder into DIR. Exit 2 for a bad path, a path that is
 * not there, a link, or a file that exists in DIR without `force`; nothing is written then.
 */
export async function getFiles(ctx: AppContext, opts: GetOptions, cwd: string): Promise<GetResult> {
  const paths = opts.paths.map((p) => p.replace(/\/+$/, '').replace(/^(\.\/)+/, ''));
  for (const [i, p] of paths.entries()) {
    const why = nameProblem(p);
    if (why)
      throw usageError(
        `the path ${shownName(opts.paths[i] as string)} ${why}.`,
        "Give paths relative to the job's working folder, as `gpuq get ID` lists them.",
      );
  }
  const job = await findJob(ctx, opts.id);
  const remote = job.remote;
  if (!remote)
    throw usageError(
      `job ${job.id} has no folder on a node${job.state === 'done' ? ' (it never started)' : ' yet'}.`,
      job.state === 'done' ? null : `Try again once it started: gpuq show ${job.id}`,
    );
  const outDir = resolve(cwd, opts.out ?? job.id);
  const got = await copyFromJob(ctx, job, {
    root: 'work',
    paths,
    entry: job.file.split('/').pop() ?? '',
    outDir,
    force: opts.force,
    vet: (got) => {
      const problems = [
        ...got.missing.map((m) => `${shownName(m)} is not in the job's folder`),
        ...got.skipped.filter((s) => paths.includes(s.name)).map((s) => `${shownName(s.name)} is ${s.why}`),
      ];
      if (problems.length > 0)
        throw usageError(
          `nothing copied: ${problems.slice(0, 5).join('; ')}.`,
          `List what there is with: gpuq get ${job.id}`,
        );
    },
  });
  return { job, dir: outDir, files: got.files, skipped: got.skipped };
}

/** Bytes received but not yet written that `get` lets the stream run ahead by. */
const WRITE_BEHIND = 16 * 1024 * 1024;

/** What copyFromJob brought back, and what the node left out or did not have. */
export interface Received {
  files: Array<{ name: string; size: number; executable: boolean }>;
  skipped: Array<{ name: string; why: string }>;
  missing: string[];
}

/** What copyFromJob copies, and where to. */
export interface CopySpec {
  /** The folder of the job folder to copy from: "work" (the job's working folder) or e.g. "gradings/2". */
  root: string;
  /** Paths relative to `root`; empty: every file the job created there (not `entry` nor its uploads). */
  paths: string[];
  /** The program's file name, left out when `paths` is empty. */
  entry: string;
  /** The folder to write into (absolute); made when missing. */
  outDir: string;
  /** Replace files that exist in outDir. */
  force: boolean;
  /** Looks at what arrived before anything is placed; throws to place nothing. */
  vet?: (got: Received) => void;
}

/**
 * Copies files of a job's folder on its node into a local folder, safely (the module's comment):
 * the shared machinery of `gpuq get` and `gpuq results --out`. Exit 2 when the job folder, or
 * `root` in it, is gone, or when a file exists in outDir without `force`; nothing is written then.
 */
export async function copyFromJob(ctx: AppContext, job: Job, spec: CopySpec): Promise<Received> {
  const remote = job.remote;
  if (!remote) throw new Error(`copyFromJob: job ${job.id} has no folder on a node`);
  let staging: string;
  try {
    await mkdir(spec.outDir, { recursive: true });
    staging = await mkdtemp(join(spec.outDir, '.gpuq-get-'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTDIR' || code === 'EACCES' || code === 'EROFS' || code === 'ENOSPC')
      throw usageError(
        `cannot write into ${spec.outDir} (${code === 'EEXIST' || code === 'ENOTDIR' ? 'not a folder' : code}).`,
        'Choose another folder with --out.',
      );
    throw e;
  }
  try {
    const got = await receive(ctx, job, remote.dir, spec, staging);
    spec.vet?.(got);
    await place(got.files, staging, spec.outDir, spec.force);
    return got;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** Streams the job's files from its node into `staging`, checking every record. */
async function receive(ctx: AppContext, job: Job, dir: string, spec: CopySpec, staging: string): Promise<Received> {
  const { paths, entry, root } = spec;
  const caps = { fileBytes: ctx.config.defaults.maxGetFileBytes, totalBytes: ctx.config.defaults.maxGetBytes };
  const script = await readFile(join(ctx.packageRoot, 'templates', 'collect.py'), 'utf8');
  const got: Received = { files: [], skipped: [], missing: [] };
  const reader = new FrameReader();
  let total = 0;
  let fh: FileHandle | null = null;
  let current: { name: string; size: number; executable: boolean; keep: boolean } | null = null;
  const fault = (what: string) => new NodeFaultError(job.node, `on node ${job.node}, ${what} (job ${job.id})`);
  const handle = async (c: Buffer) => {
    for (const ev of reader.push(c)) {
      if (ev.kind === 'data') {
        if (fh) await fh.write(ev.chunk);
      } else if (ev.kind === 'fileEnd') {
        await fh?.close();
        fh = null;
        if (current?.keep) got.files.push({ name: current.name, size: current.size, executable: current.executable });
        current = null;
      } else {
        const r = ev.record;
        if (r.kind === 'skip') got.skipped.push({ name: r.name, why: r.why || 'left out' });
        else if (r.kind === 'missing') got.missing.push(r.name);
        else if (r.kind === 'end') {
          if (r.count !== got.files.length + got.skipped.filter((s) => s.why.startsWith('gpuq:')).length)
            throw fault('the file list ended with a wrong count');
        } else if (r.kind === 'file') {
          const why = nameProblem(r.name);
          total += r.size;
          if (r.size > caps.fileBytes || total > caps.totalBytes)
            throw fault(`the node sent more than the size limits allow (${formatBytes(total)})`);
          current = { name: r.name, size: r.size, executable: r.executable, keep: why === null };
          if (why) {
            got.skipped.push({ name: r.name, why: `gpuq: a name that ${why}` });
            continue;
          }
          const path = join(staging, r.name);
          await mkdir(dirname(path), { recursive: true, mode: 0o700 });
          fh = await open(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, r.executable ? 0o777 : 0o666);
        }
      }
    }
  };
  let chain: Promise<void> = Promise.resolve();
  let queued = 0;
  const link = openJobLink(ctx, job);
  try {
    const answer = await link.run(
      (t) =>
        collectFiles(
          t,
          dir,
          script,
          caps,
          entry,
          paths,
          (c) => {
            // Writes run one after another behind the stream; the stream is held only when they
            // fall behind by more than WRITE_BEHIND (holding it for each chunk halves the speed).
            queued += c.length;
            chain = chain
              .then(() => handle(c))
              .finally(() => {
                queued -= c.length;
              });
            return queued > WRITE_BEHIND ? chain : undefined;
          },
          root,
        ),
      { maxAttempts: 1 },
    );
    await chain;
    if (answer === 'gone')
      throw new UserError(
        `job ${job.id}: its folder is gone from node ${job.node} (${dir}).`,
        EXIT.usage,
        'Its files were removed (gpuq prune, or by hand).',
      );
    if (answer === 'noroot')
      throw new UserError(
        `job ${job.id}: its folder on node ${job.node} has no ${root}/ (${dir}).`,
        EXIT.usage,
        'It was removed, or the job was never graded there.',
      );
  } finally {
    await chain.catch(() => undefined);
    await (fh as FileHandle | null)?.close().catch(() => undefined);
    await link.close();
  }
  if (reader.incomplete) throw fault('the answer with the files ended early');
  return got;
}

/**
 * Moves the staged files into `outDir`: every folder on the way must be a real folder (not a
 * link), and an existing file is replaced only with `force` (rename replaces a link itself,
 * never what it points to). Checks every file before moving any.
 */
async function place(files: Received['files'], staging: string, outDir: string, force: boolean): Promise<void> {
  const exists = async (p: string) =>
    lstat(p).then(
      (s) => s,
      () => null,
    );
  const conflicts: string[] = [];
  for (const f of files) {
    const parts = f.name.split('/');
    for (let i = 1; i < parts.length; i++) {
      const p = join(outDir, ...parts.slice(0, i));
      const s = await exists(p);
      if (s && !s.isDirectory())
        throw usageError(
          `${relative(process.cwd(), p) || p} is ${s.isSymbolicLink() ? 'a symbolic link' : 'not a folder'}; ` +
            `gpuq writes nothing through it.`,
          'Choose another folder with --out.',
        );
    }
    const s = await exists(join(outDir, f.name));
    if (s?.isDirectory())
      throw usageError(
        `${join(outDir, f.name)} is a folder; the job's file of that name is not copied.`,
        'Choose another folder with --out.',
      );
    if (s && !force) conflicts.push(join(outDir, f.name));
  }
  if (conflicts.length > 0)
    throw usageError(
      `${conflicts.length === 1 ? 'a file exists' : `${conflicts.length} files exist`} already: ` +
        `${conflicts.slice(0, 3).join(', ')}${conflicts.length > 3 ? ', …' : ''}; nothing copied.`,
      'Replace them with --force, or choose another folder with --out.',
    );
  for (const f of files) {
    const dest = join(outDir, f.name);
    await mkdir(dirname(dest), { recursive: true });
    await rename(join(staging, f.name), dest);
  }
}
