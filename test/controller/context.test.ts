import * as grpc from '@grpc/grpc-js';
import { strict as assert } from 'node:assert';
import { EXIT, reportError } from '../../controller/context.js';
import { errorDetailOf } from '../../controller/agent-error.js';
import { _qfleet_agent_v1_ErrorDetail_Reason as REASONS } from '../../proto/gen/qfleet/agent/v1/ErrorDetail.js';
import type { ErrorDetail } from '../../proto/error-detail.js';
import { agentError } from './support/agent-error.js';

/** What reportError prints for an error, and the exit code. */
function printed(e: unknown): { line: string; exit: number } {
  const lines: string[] = [];
  const exit = reportError({ err: (t) => lines.push(t), socket: '/run/qfleetd.sock' }, e);
  assert.equal(lines.length, 1);
  return { line: lines[0]!, exit };
}

describe('controller: printing an agent\'s error from its ErrorDetail, never from its text', () => {
  /** Each reason the agent may send, with the status code it comes with and what qfleet prints. */
  const cases: Record<Exclude<keyof typeof REASONS, 'REASON_UNSPECIFIED'>, [grpc.status, string, string]> = {
    REASON_INVALID_ARGUMENT: [grpc.status.INVALID_ARGUMENT, 'Error; give container names or -A (all), not both.', 'Error; give container names or -A (all), not both.'],
    REASON_NAME_INVALID: [grpc.status.INVALID_ARGUMENT, 'Error; chroot container name "123" is all numeric, which is invalid.', 'Error; chroot container name "123" is all numeric, which is invalid.'],
    REASON_NOT_FOUND: [grpc.status.NOT_FOUND, 'Error; no such chroot container: web9.', 'Error; no such chroot container: web9.'],
    REASON_ALREADY_EXISTS: [grpc.status.ALREADY_EXISTS, 'Error; chroot container web1 already exists.', 'Error; chroot container web1 already exists.'],
    REASON_BUSY: [grpc.status.ABORTED, 'Error; web1 is busy starting since 2026-11-28T10:00:00.000Z; try again when that is done.', 'Error; web1 is busy starting since 2026-11-28T10:00:00.000Z; try again when that is done.'],
    REASON_RUNNING: [grpc.status.FAILED_PRECONDITION, 'Error; stop these chroot containers before deleting: web1 (running). Nothing was deleted.', 'Error; stop these chroot containers before deleting: web1 (running). Nothing was deleted.'],
    REASON_STOPPED: [grpc.status.FAILED_PRECONDITION, 'Error; web1 is stopped; exec needs a started chroot.', 'Error; web1 is stopped; exec needs a started chroot.'],
    REASON_BROKEN: [grpc.status.FAILED_PRECONDITION, 'Error; web1 is broken (x); stop it to clean up, then start it.', 'Error; web1 is broken (x); stop it to clean up, then start it.'],
    REASON_NO_BASE: [grpc.status.FAILED_PRECONDITION, 'Error; no base is installed on this host: run qfleet install first.', 'Error; no base is installed on this host: run qfleet install first.'],
    REASON_RELEASE_MISMATCH: [grpc.status.FAILED_PRECONDITION, 'Error; the base is 13.2-RELEASE but this host runs 14.1-RELEASE.', 'Error; the base is 13.2-RELEASE but this host runs 14.1-RELEASE.'],
    REASON_NO_SERVICE_SCRIPT: [grpc.status.FAILED_PRECONDITION, 'Error; web1 has no rc script for nginx.', 'Error; web1 has no rc script for nginx.'],
    REASON_UNSUPPORTED: [grpc.status.FAILED_PRECONDITION, 'Error; this host cannot run web1 with isolation jail; it offers chroot, namespaces.', 'Error; this host cannot run web1 with isolation jail; it offers chroot, namespaces.'],
    REASON_PRECONDITION: [grpc.status.FAILED_PRECONDITION, 'Error; kern.securelevel is 1.', 'Error; kern.securelevel is 1.'],
    // UNAVAILABLE, yet the agent answered: its words, not "cannot reach the agent".
    REASON_SHUTTING_DOWN: [grpc.status.UNAVAILABLE, 'Error; qfleetd is shutting down and takes no new Start; run it again once the agent is back.', 'Error; qfleetd is shutting down and takes no new Start; run it again once the agent is back.'],
    REASON_UNAUTHENTICATED: [grpc.status.UNAUTHENTICATED, 'the client certificate has expired.', 'qfleet: the agent refused this client: the client certificate has expired.'],
    REASON_PERMISSION_DENIED: [grpc.status.PERMISSION_DENIED, 'the read-only certificate (CN=grafana) may not call /qfleet.agent.v1.AgentService/Start.', 'qfleet: the agent refused this client: the read-only certificate (CN=grafana) may not call /qfleet.agent.v1.AgentService/Start.'],
    REASON_COMMAND_FAILED: [grpc.status.INTERNAL, 'umount /x: exited 1: busy', "qfleet: a command failed on the agent's host: umount /x: exited 1: busy"],
    REASON_INTERNAL: [grpc.status.INTERNAL, 'Error; something unforeseen', 'qfleet: the agent failed: Error; something unforeseen'],
  };
  for (const [reason, [code, message, line]] of Object.entries(cases)) {
    it(`${reason}: ${line.slice(0, 60)}`, () => {
      const out = printed(agentError(code, message, reason as ErrorDetail['reason']));
      assert.equal(out.line, line);
      assert.equal(out.exit, code === grpc.status.INVALID_ARGUMENT ? EXIT.usage : EXIT.failed);
    });
  }

  it('knows every reason agent.proto declares', () => {
    assert.deepEqual(Object.keys(cases).sort(), Object.keys(REASONS).filter((r) => r !== 'REASON_UNSPECIFIED').sort());
  });

  it('the text decides nothing: a qchroot-worded message is printed as the reason says', () => {
    assert.equal(printed(agentError(grpc.status.INTERNAL, 'Error; looks like qchroot', 'REASON_COMMAND_FAILED')).line, "qfleet: a command failed on the agent's host: Error; looks like qchroot");
    assert.equal(printed(agentError(grpc.status.NOT_FOUND, 'no such chroot container: web9', 'REASON_NOT_FOUND')).line, 'no such chroot container: web9');
  });

  it('a reason newer than this qfleet prints as the agent\'s failure', () => {
    const e = agentError(grpc.status.FAILED_PRECONDITION, 'Error; a future refusal', 99 as unknown as ErrorDetail['reason']);
    assert.equal(errorDetailOf(e)?.reason, 'unknown');
    assert.deepEqual(printed(e), { line: 'qfleet: the agent failed: Error; a future refusal', exit: EXIT.failed });
  });

  describe('without a detail (an agent before API 2, a proxy, the transport)', () => {
    it('prints the words after qfleet:, exit 2 for an invalid argument', () => {
      assert.deepEqual(printed(agentError(grpc.status.FAILED_PRECONDITION, 'Error; web1 is running')), { line: 'qfleet: Error; web1 is running', exit: EXIT.failed });
      assert.deepEqual(printed(agentError(grpc.status.INVALID_ARGUMENT, 'Error; bad name')), { line: 'qfleet: Error; bad name', exit: EXIT.usage });
    });
    it('UNAVAILABLE: the agent could not be reached', () => {
      assert.match(printed(agentError(grpc.status.UNAVAILABLE, 'connect ENOENT')).line, /^qfleet: cannot reach the agent at \/run\/qfleetd\.sock: is qfleetd running\? \(connect ENOENT\)$/);
    });
    it('trailer bytes that do not decode are no detail', () => {
      const e = agentError(grpc.status.NOT_FOUND, 'Error; x');
      e.metadata.set('grpc-status-details-bin', Buffer.from([0xff, 0xff, 0xff]));
      assert.equal(errorDetailOf(e), undefined);
      assert.equal(printed(e).line, 'qfleet: Error; x');
    });
  });
});
