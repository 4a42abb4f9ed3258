/**
 * Hostile programs under the real supervisor, run by the real CLI as the unprivileged user
 * `gpuqrun` (through runuser: no cgroups). The suite is in test/helpers/hostile-suite.ts; the test
 * runner's run of it is hostile.test.ts.
 */
import { hostileSuite, MODES } from '../helpers/hostile-suite.js';

hostileSuite(MODES[1]!);
