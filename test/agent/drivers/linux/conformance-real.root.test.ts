import { describeDriverConformance } from '../conformance.js';
import { makeRealSetup } from './real-harness.js';

// The whole lifecycle for real: cp/tar, mount --bind through /proc/self/fd,
// a busybox httpd started through its init script, umount, safe removal.
describeDriverConformance('linux (real, root) @root', async () => {
  const s = await makeRealSetup();
  return {
    driver: s.driver,
    base: { method: 'directory', source: s.baseDir, mirror: '' },
    service: 'httpd',
    cleanup: s.cleanup,
  };
});

describeDriverConformance('linux (real, root, tarball base) @root', async () => {
  const s = await makeRealSetup();
  const { makeBusyboxTarball } = await import('../../../support/busybox-base.js');
  const tarball = await makeBusyboxTarball(`${s.tmp}/tarwork`, `${s.tmp}/base.tar.xz`, { httpdPort: s.port + 1 });
  return {
    driver: s.driver,
    base: { method: 'tarball', source: tarball, mirror: '' },
    service: 'httpd',
    cleanup: s.cleanup,
  };
});
