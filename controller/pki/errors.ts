/** A PKI operation that cannot proceed; the message says what to do. */
export class PkiError extends Error {
  override readonly name = 'PkiError';
}
