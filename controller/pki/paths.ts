import { homedir } from 'node:os';
import { join } from 'node:path';

/** The controller's config directory: $QFLEET_HOME, else ~/.config/qfleet. */
export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.QFLEET_HOME || join(homedir(), '.config', 'qfleet');
}

/** Where the CA and the controller's own client certificate live (mode 0700). */
export function defaultPkiDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(configDir(env), 'pki');
}

/** File names inside the PKI directory. */
export const PKI_FILES = {
  caCert: 'ca.crt',
  caKey: 'ca.key',
  /** The controller's operator certificate, used for every agent connection. */
  clientCert: 'client.crt',
  clientKey: 'client.key',
} as const;

export function pkiPath(pkiDir: string, file: keyof typeof PKI_FILES): string {
  return join(pkiDir, PKI_FILES[file]);
}
