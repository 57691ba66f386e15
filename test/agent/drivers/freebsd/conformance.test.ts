import { FreeBSDDriver } from '../../../../agent/drivers/freebsd/freebsd-driver.js';
import { FakeRunner } from '../../../support/fake-runner.js';
import { describeDriverConformance } from '../conformance.js';
import { SimulatedFreeBSD } from './simulated-host.js';

// The same lifecycle the Linux driver passes for real, here against a model of
// a FreeBSD host that answers each command in FreeBSD's own formats.

describeDriverConformance('freebsd (simulated host)', async () => {
  const host = new SimulatedFreeBSD({ release: '14.1-RELEASE-p5' });
  const runner = new FakeRunner().handle(host.handler, 'the simulated FreeBSD host');
  return {
    driver: new FreeBSDDriver({ runner, rootDir: '/usr/qfleet/zone1', logDir: '/var/log/qfleet' }),
    base: { method: 'download', source: '', mirror: '' },
    service: 'cron',
    cleanup: async () => undefined,
  };
});

describeDriverConformance('freebsd 13.2 (simulated host: text mount -p, local base.txz)', async () => {
  const host = new SimulatedFreeBSD({ release: '13.2-RELEASE-p4' });
  host.writeFile('/var/tmp/base.txz', host.tarball('13.2-RELEASE'));
  const runner = new FakeRunner().handle(host.handler, 'the simulated FreeBSD host');
  return {
    driver: new FreeBSDDriver({ runner, rootDir: '/usr/qfleet/zone2', logDir: '/var/log/qfleet' }),
    base: { method: 'tarball', source: '/var/tmp/base.txz', mirror: '' },
    service: 'sshd',
    cleanup: async () => undefined,
  };
});
