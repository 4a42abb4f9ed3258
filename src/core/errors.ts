import { EXIT } from './exit-codes.js';

/**
 * A problem the user can act on: bad input, an unreachable node, an unknown job.
 * The entry point prints `message` (and `hint`) on stderr and exits with `exitCode`.
 * Anything else thrown is a bug in gpuq (exit 1, one line; the stack trace under GPUQ_DEBUG=1).
 */
export class UserError extends Error {
  readonly exitCode: number;
  readonly hint: string | null;
  constructor(message: string, exitCode: number = EXIT.usage, hint: string | null = null) {
    super(message);
    this.name = 'UserError';
    this.exitCode = exitCode;
    this.hint = hint;
  }
}

/**
 * A node could not be reached or refused us (host key, auth, network). Exit 3.
 * `retryable` is set where the transport classifies the failure: true for the link (refused,
 * timed out, dropped), false for what trying again cannot change (a refused host key, failed
 * authentication, a config gpuq cannot follow). Retry decisions read this flag, never the text.
 */
export class NodeUnreachableError extends UserError {
  readonly node: string;
  readonly cause_: string;
  readonly retryable: boolean;
  constructor(node: string, cause: string, hint: string | null = null, opts: { retryable?: boolean } = {}) {
    super(`node ${node} is unreachable: ${cause}`, EXIT.unreachable, hint);
    this.name = 'NodeUnreachableError';
    this.node = node;
    this.cause_ = cause;
    this.retryable = opts.retryable ?? true;
  }
}

/**
 * A node was reached, but a gpuq script there failed (a missing tool, a full disk, a folder it
 * may not write, an answer gpuq cannot read). Not "unreachable": retrying the link cannot help,
 * and the message says what the node answered. Exit 1, like the other faults gpuq cannot recover.
 */
export class NodeFaultError extends UserError {
  readonly node: string;
  constructor(node: string, message: string, hint: string | null = null) {
    super(message, EXIT.bug, hint ?? `Check node ${node} (gpuq nodes), or run with GPUQ_DEBUG=1 and report it.`);
    this.name = 'NodeFaultError';
    this.node = node;
  }
}

/** Whether an error is worth retrying: a link failure the transport marked retryable. */
export function isRetryable(e: unknown): e is NodeUnreachableError {
  return e instanceof NodeUnreachableError && e.retryable;
}

/** Makes a usage error (exit 2). */
export function usageError(message: string, hint: string | null = null): UserError {
  return new UserError(message, EXIT.usage, hint);
}
