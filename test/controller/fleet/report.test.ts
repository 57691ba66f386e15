import { strict as assert } from 'node:assert';
import { exitCodeOf, EXIT } from '../../../controller/context.js';
import type { HostOutcome, HostStatus } from '../../../controller/fleet/fanout.js';
import type { HostTarget } from '../../../controller/fleet/host-target.js';
import * as grpc from '@grpc/grpc-js';
import { fleetJson, hostSummary, prefixLines, problem, progressLine } from '../../../controller/fleet/report.js';
import { agentError } from '../support/agent-error.js';

const host = (name: string): HostTarget => ({ name, address: name, sshPort: 22, sshUser: undefined, agentPort: 7443, vars: {} });
const o = <T>(name: string, status: HostStatus, rest: Partial<HostOutcome<T>> = {}): HostOutcome<T> => ({ host: host(name), status, ...rest });

describe('fleet: aggregation, exit codes, JSON', () => {
  describe('exit codes', () => {
    it('0 when every host is ok and every container result is ok', () => {
      assert.equal(exitCodeOf([o('a', 'ok', { result: 1 }), o('b', 'ok', { result: 2 })]), EXIT.ok);
    });
    it('0 for no host at all (nothing failed)', () => assert.equal(exitCodeOf([]), EXIT.ok));
    for (const status of ['failed', 'unreachable', 'timed out'] as const) {
      it(`1 when any host is ${status}`, () => assert.equal(exitCodeOf([o('a', 'ok', { result: 1 }), o('b', status, { error: 'x' })]), EXIT.failed));
    }
    it('1 when a host answered but one of its containers failed', () => {
      assert.equal(exitCodeOf([o('a', 'ok', { result: { bad: true } }), o('b', 'ok', { result: { bad: false } })], (r) => r.bad), EXIT.failed);
    });
    it('2 when every host refused the request as invalid (a usage error such as a bad name)', () => {
      assert.equal(exitCodeOf([o('a', 'failed', { code: 'INVALID_ARGUMENT' }), o('b', 'failed', { code: 'INVALID_ARGUMENT' })]), EXIT.usage);
    });
    it('1 when only some hosts refuse an argument (say an install source missing on one host)', () => {
      assert.equal(exitCodeOf([o('a', 'ok', { result: 1 }), o('b', 'failed', { code: 'INVALID_ARGUMENT' })]), EXIT.failed);
    });
    it('1, not 2, when an invalid argument comes with a host that is down', () => {
      assert.equal(exitCodeOf([o('a', 'failed', { code: 'INVALID_ARGUMENT' }), o('b', 'unreachable', { code: 'UNAVAILABLE' })]), EXIT.failed);
    });
  });

  it('JSON is one array of {host, status, result|error}: result when the agent answered, error, the gRPC code (or null) and the agent\'s reason when not ok', () => {
    const doc = JSON.parse(fleetJson<{ results: { ok: boolean }[] }>(
      [
        o('a', 'ok', { result: { results: [{ ok: true }] } }),
        o('b', 'ok', { result: { results: [{ ok: false }] } }),
        o('c', 'unreachable', { error: 'connect ECONNREFUSED', cause: new Error('x') }),
        o('d', 'timed out', { error: 'no answer within 30s' }),
        o('e', 'failed', {
          error: 'Error; no such chroot container: web9.', code: 'NOT_FOUND',
          cause: agentError(grpc.status.NOT_FOUND, 'Error; no such chroot container: web9.', 'REASON_NOT_FOUND', { containers: 'web9' }),
        }),
        o('f', 'failed', { error: 'Error; gone', code: 'NOT_FOUND', cause: agentError(grpc.status.NOT_FOUND, 'Error; gone') }),
      ],
      { failedInside: (r) => (r.results.some((x) => !x.ok) ? '1 of 1 containers failed' : undefined) },
    ));
    assert.deepEqual(doc, [
      { host: 'a', status: 'ok', result: { results: [{ ok: true }] } },
      { host: 'b', status: 'failed', result: { results: [{ ok: false }] }, error: '1 of 1 containers failed', code: null, reason: null, fields: {} },
      { host: 'c', status: 'unreachable', error: 'connect ECONNREFUSED', code: null, reason: null, fields: {} },
      { host: 'd', status: 'timed out', error: 'no answer within 30s', code: null, reason: null, fields: {} },
      { host: 'e', status: 'failed', error: 'Error; no such chroot container: web9.', code: 'NOT_FOUND', reason: 'not-found', fields: { containers: 'web9' } },
      { host: 'f', status: 'failed', error: 'Error; gone', code: 'NOT_FOUND', reason: null, fields: {} },
    ], 'reason and fields are the agent\'s ErrorDetail, null and {} from an agent that sends none');
  });

  it('the summary names each host that did not answer and why', () => {
    assert.equal(hostSummary([o('a', 'ok'), o('b', 'ok')]), '2 of 2 hosts answered.');
    assert.equal(
      hostSummary([o('a', 'ok'), o('b', 'unreachable', { error: 'connect ECONNREFUSED 10.0.0.2:7443' }), o('c', 'timed out', { error: 'no answer within 5s' }), o('d', 'failed', { error: 'Error; permission denied' })]),
      '1 of 4 hosts answered; not answering: b (unreachable: connect ECONNREFUSED 10.0.0.2:7443), c (timed out: no answer within 5s), d (Error; permission denied).',
    );
    assert.equal(hostSummary([o('a', 'ok')]), '1 of 1 host answered.');
  });

  it('counts a host whose agent answered with an error of its own as answered, and names it as failed', () => {
    assert.equal(
      hostSummary([o('a', 'ok'), o('b', 'failed', { code: 'PERMISSION_DENIED', error: 'Error; read-only certificate' }), o('c', 'unreachable', { error: 'gone' })]),
      '2 of 3 hosts answered; not answering: c (unreachable: gone); failed: b (Error; read-only certificate).',
    );
  });

  it('says that no host answered when none did, never a word about containers', () => {
    assert.equal(
      hostSummary([o('a', 'timed out', { error: 'no answer within 5s' }), o('b', 'unreachable', { error: 'cannot resolve b: ENOTFOUND' })]),
      'No host answered (0 of 2); not answering: a (timed out: no answer within 5s), b (unreachable: cannot resolve b: ENOTFOUND).',
    );
  });

  it('the progress line counts hosts done and names the first few awaited', () => {
    assert.equal(progressLine(0, 2, ['a', 'b']), '0 of 2 hosts done; waiting for a, b');
    assert.equal(progressLine(1, 6, ['b', 'c', 'd', 'e', 'f']), '1 of 6 hosts done; waiting for b, c, d and 2 more');
    assert.equal(progressLine(1, 1, []), '1 of 1 host done');
  });

  it('prefixes every line of a host’s output with the host', () => {
    assert.equal(prefixLines('web01', 'web1: Start chroot completed.\nweb2: Bypassed; No service configured yet'), 'web01: web1: Start chroot completed.\nweb01: web2: Bypassed; No service configured yet');
    assert.equal(problem({ status: 'unreachable', error: 'gone' }), 'unreachable: gone');
  });
});
