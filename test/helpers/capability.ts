/**
 * What a test needs from the machine (root, cgroups, tmux, a user to run as) and what happens
 * when it is missing: the test fails, naming what is missing, unless GPUQ_TEST_ALLOW_SKIP=1 says
 * skipping is intended (documented in the README). A test that cannot run is never silently
 * counted as skipped.
 */

/** Whether the person running the suite allows tests that cannot run here to be skipped. */
export function skipAllowed(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.GPUQ_TEST_ALLOW_SKIP === '1';
}

export interface Need {
  /** Pass to `it.runIf` / `describe.runIf`: false only when the need is missing and skipping is allowed. */
  run: boolean;
  /** Call first in the test: throws, naming what is missing, when the machine lacks it. */
  check(): void;
}

/** A test's need for `what` (present when `ok`): run it, skip it (allowed), or fail it (not allowed). */
export function need(ok: boolean, what: string): Need {
  return {
    run: ok || !skipAllowed(),
    check() {
      if (!ok)
        throw new Error(`this test needs ${what}, which this machine lacks; set GPUQ_TEST_ALLOW_SKIP=1 to skip it`);
    },
  };
}
