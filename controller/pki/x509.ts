// @peculiar/x509 resolves its algorithm providers through tsyringe, which needs
// the Reflect metadata polyfill loaded before it: this module is the one place
// the controller imports the library, so the order is fixed here.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export { x509 };

/** ECDSA P-256 with SHA-256: every qfleet key and signature. */
export const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
