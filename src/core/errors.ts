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

/** A node could not be reached or refused us (host key, auth, network). Exit 3. */
export class NodeUnreachableError extends UserError {
  readonly node: string;
  readonly cause_: string;
  constructor(node: string, cause: string, hint: string | null = null) {
    super(`node ${node} is unreachable: ${cause}`, EXIT.unreachable, hint);
    this.name = 'NodeUnreachableError';
    this.node = node;
    this.cause_ = cause;
  }
}

/** Makes a usage error (exit 2). */
export function usageError(message: string, hint: string | null = null): UserError {
  return new UserError(message, EXIT.usage, hint);
}
