/**
 * The files of the bundled CLI (deploy/bundle/build.ts writes them into
 * dist/bundle/): `qfleet.js`, a launcher of a few lines that turns on Node's
 * compile cache and loads the program, CLI_PROGRAM_FILE. Bootstrap puts the
 * program on each host (as qfleet.js, for the boot-time `start -A`): it runs
 * as it is too.
 */
export const CLI_PROGRAM_FILE = 'qfleet-main.js';
