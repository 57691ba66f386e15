/** POSIX sh single-quoting: 'it'\''s' — safe for any byte string except NUL. */
export function shQuote(s: string): string {
  if (s.includes('\0')) throw new Error('NUL in a shell word');
  if (/^[A-Za-z0-9_./:=@%+,-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function shJoin(argv: readonly string[]): string {
  return argv.map(shQuote).join(' ');
}
