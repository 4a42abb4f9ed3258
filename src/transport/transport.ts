/**
 * How gpuq reaches a node. Everything that touches a node's processes and files goes
 * through one of these; the node layer (src/node) builds the bash scripts it runs.
 *
 * Failures are classified here, where they happen: a link that fails or drops rejects with
 * NodeUnreachableError, whose `retryable` says whether trying again can help (false for a
 * refused host key or failed authentication); a node that answered but could not do the work
 * (an upload it refused, no bash to run) rejects with NodeFaultError. A script's own non-zero
 * exit is not a rejection: it comes back in ExecResult.code for the node layer to judge.
 */

/** A bash script to run on a node, built as data by src/node/commands.ts. */
export interface RemoteCommand {
  /** Bash source; run as `bash -c SCRIPT` on the node. Every interpolated value already quoted. */
  script: string;
  /** What it is for, in a few words, for error messages ("start the supervisor"). */
  purpose: string;
  /** Bytes fed to the script's stdin, if any. */
  stdin?: string | Buffer;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number;
  /**
   * exec only: the command printed more than EXEC_OUTPUT_CAP on stdout or stderr, so it was
   * ended and its output cut there (a file the job wrote cannot make gpuq hold unbounded output).
   */
  truncated?: boolean;
}

/** The most output exec collects from one command, per stream; past it the command is ended. */
export const EXEC_OUTPUT_CAP = 16 * 1024 * 1024;

export interface StreamHandlers {
  /**
   * Each chunk of stdout. A returned promise pauses the stream until it settles (backpressure);
   * any other return value is ignored.
   */
  onStdout?: (chunk: Buffer) => unknown;
  onStderr?: (chunk: Buffer) => void;
  /** Aborting ends the remote command (SIGTERM on its process group) and resolves. */
  signal?: AbortSignal;
}

export interface Transport {
  readonly node: string;
  /** Runs a script to its end and collects its output. Rejects with NodeUnreachableError when the link fails. */
  exec(cmd: RemoteCommand): Promise<ExecResult>;
  /** Runs a long-lived script, delivering output as it comes. Rejects with NodeUnreachableError when the link drops. */
  stream(cmd: RemoteCommand, handlers: StreamHandlers): Promise<ExecResult>;
  /**
   * Runs a script with `source` fed to its stdin as it is produced, with backpressure (the next
   * chunk is read once the link took the last), and collects its output as exec does: many
   * files in one channel. A failing `source` ends the script and rejects with its error.
   */
  send(cmd: RemoteCommand, source: AsyncIterable<Buffer>): Promise<ExecResult>;
  /** Copies a local file to a path on the node (mode 0600 unless given). */
  upload(
    localPath: string,
    remotePath: string,
    opts?: { mode?: number; onProgress?: (done: number, total: number) => void },
  ): Promise<void>;
  /** Ends the connection, if any. Safe to call twice. */
  close(): Promise<void>;
}

/** The promise a stream handler returned to pause its stream, or null when it returned none. */
export function pauseFor(returned: unknown): Promise<unknown> | null {
  return returned instanceof Promise ? returned : null;
}
