/**
 * Hostile programs under the real supervisor, run by the real CLI, as the user running the tests
 * (root in CI: memory and pids cgroups). The suite is in test/helpers/hostile-suite.ts; the
 * unprivileged user's run of it is hostile-user.test.ts, a file of its own so that vitest's two
 * workers run the two modes side by side.
 */
import { hostileSuite, MODES } from '../helpers/hostile-suite.js';

hostileSuite(MODES[0]!);
