import { InvalidArgumentError } from '../errors.js';

/** The detail of every name refusal: which name (a long one cut short). */
const NAME_INVALID = (name: string) => ({ reason: 'name-invalid', fields: { name } }) as const;

/** Long enough to be meaningful, short enough to be a hostname label. */
export const MAX_NAME_LENGTH = 63;

/** Every rule below at once: the quick yes for the names List checks by the thousand. */
const VALID_NAME = /^(?![0-9]+$)[A-Za-z0-9_][A-Za-z0-9_-]*$/;

/**
 * qchroot's rule: alphanumeric, dash and underscore; all-numeric names are invalid.
 * A leading dash is refused too, so a name can never read as a command-line flag.
 */
export function validateContainerName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new InvalidArgumentError('Error; a chroot container name is required.', NAME_INVALID(''));
  }
  if (name.length <= MAX_NAME_LENGTH && VALID_NAME.test(name)) return name;
  const shown = JSON.stringify(name.length > 40 ? `${name.slice(0, 40)}…` : name);
  if (name.length > MAX_NAME_LENGTH) {
    throw new InvalidArgumentError(`Error; chroot container name ${shown} is ${name.length} characters long; the limit is ${MAX_NAME_LENGTH}.`, NAME_INVALID(name.slice(0, 80)));
  }
  if (!/^[A-Za-z0-9_-]+$/.test(name)) {
    throw new InvalidArgumentError(`Error; chroot container name ${shown} may contain only letters, digits, dash and underscore.`, NAME_INVALID(name));
  }
  if (/^[0-9]+$/.test(name)) {
    throw new InvalidArgumentError(`Error; chroot container name ${shown} is all numeric, which is invalid.`, NAME_INVALID(name));
  }
  if (name.startsWith('-')) {
    throw new InvalidArgumentError(`Error; chroot container name ${shown} may not begin with a dash.`, NAME_INVALID(name));
  }
  return name;
}

/** rc.d script names: what /etc/rc.d, /usr/local/etc/rc.d and /etc/init.d hold. */
export function validateServiceName(service: unknown): string {
  if (typeof service !== 'string' || !/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$/.test(service) || service.includes('..')) {
    throw new InvalidArgumentError(
      `Error; service name ${JSON.stringify(service)} is invalid: use the name of the service's rc script (letters, digits, '_', '-', '.').`,
      { reason: 'name-invalid', fields: { name: typeof service === 'string' ? service : '' } },
    );
  }
  return service;
}

/** Validates a list of names, refusing duplicates; keeps the caller's order. */
export function validateNameList(names: readonly unknown[], validate: (n: unknown) => string, what: string): string[] {
  const out: string[] = [];
  for (const n of names) {
    const v = validate(n);
    if (out.includes(v)) throw new InvalidArgumentError(`Error; ${what} ${JSON.stringify(v)} is given twice.`);
    out.push(v);
  }
  return out;
}

/** The same rules as predicates, for listings that skip what cannot be a container or a service. */
export const isValidContainerName = (name: string): boolean => name.length <= MAX_NAME_LENGTH && VALID_NAME.test(name);
export const isValidServiceName = (service: string): boolean => passes(validateServiceName, service);

function passes(validate: (v: unknown) => string, v: string): boolean {
  try {
    validate(v);
    return true;
  } catch {
    return false;
  }
}
