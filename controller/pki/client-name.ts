/**
 * What is wrong with a client certificate's name (its CN, and the NAME of
 * NAME.crt), or undefined: 1-64 letters, digits, '.', '_', '@' or '-', and
 * not "ca" (ca.crt is written beside NAME.crt). Kept apart from the X.509
 * code so the CLI can check an argument without loading it.
 */
export function clientNameProblem(name: string): string | undefined {
  if (!/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/.test(name)) return "use 1-64 letters, digits, '.', '_', '@' or '-'.";
  if (name.toLowerCase() === 'ca') return '"ca" is taken: ca.crt is the CA certificate written beside NAME.crt.';
  return undefined;
}
