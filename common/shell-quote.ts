/**
 * POSIX sh single-quoting: 'it'\''s'. Used where a command line must be one
 * string: the agent's terminal sessions (script(1) takes its command as one
 * string) and the controller's SSH commands (the login shell reads them).
 * Safe for any byte string except NUL, which no shell word can carry.
 */
export function shQuote(s: string): string {
  if (s.includes('\0')) throw new Error('NUL in a shell word');
  if (/^[A-Za-z0-9_./:=@%+,-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function shJoin(argv: readonly string[]): string {
  return argv.map(shQuote).join(' ');
}
