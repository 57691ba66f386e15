// The controller's PKI: what bootstrap, connect and `qfleet pki` use.
export { defaultPkiDir, configDir, PKI_FILES, pkiPath } from './paths.js';
export { initPki, issueClientFiles, signAgentCsr, loadCa, PkiError, type InitResult, type IssuedFiles } from './ca.js';
export { CLIENT_ROLES, type ClientRole } from '../../common/roles.js';
