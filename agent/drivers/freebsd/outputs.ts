// Small parsers for one-value outputs of FreeBSD tools.

/** `service NAME onestatus`: exit 0 with "NAME is running as pid N." (rc.subr); else exit 1. */
export function parseOnestatus(exitCode: number, output: string): { running: boolean; pids: number[] } {
  if (exitCode !== 0) return { running: false, pids: [] };
  // rc.subr prints ${name}, which can differ from the script name (mysql-server -> mysql).
  const m = /\bis running as pids? ([\d ]+)/.exec(output);
  const pids = m ? m[1]!.trim().split(/\s+/).map(Number).filter((n) => n > 0) : [];
  return { running: true, pids };
}

/** `sha256 -q FILE` prints the lowercase hex digest alone. */
export function parseSha256q(output: string): string | undefined {
  const tok = output.trim().split(/\s+/)[0] ?? '';
  return /^[0-9a-f]{64}$/i.test(tok) ? tok.toLowerCase() : undefined;
}

/** `devfs rule showsets`: one ruleset number per line (from sbin/devfs/rule.c; no capture found). */
export function parseDevfsShowsets(output: string): number[] {
  return output.split('\n').map((l) => l.trim()).filter((l) => /^\d+$/.test(l)).map(Number);
}

/** `ls -A DIR` to a pipe: one name per line. */
export function parseLsLines(output: string): string[] {
  return output.split('\n').filter((l) => l !== '');
}

/**
 * One integer sysctl: `sysctl -n NAME` prints the value alone, `sysctl NAME`
 * prints "NAME: value"; both are read (the first line only).
 */
export function parseSysctlInt(output: string): number | undefined {
  const line = output.split('\n').find((l) => l.trim() !== '') ?? '';
  const m = /^(?:[A-Za-z0-9_.%]+:\s*)?(-?\d+)\s*$/.exec(line.trim());
  return m ? Number(m[1]) : undefined;
}
