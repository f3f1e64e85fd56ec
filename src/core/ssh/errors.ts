import { DeployRollbackError, type HostErrorKind } from '../model';

export type { HostErrorKind };

/**
 * Why a host could not be used, told apart so the UI and the report can say which:
 * `unreachable` (no TCP answer, refused, dropped, or silent: keepalives unanswered), `auth` (no
 * key accepted), `host-key` (unknown, changed or revoked), `timeout` (it answers keepalives but a
 * command ran past its deadline), `docker` (sshd answers, the Docker daemon does not).
 */
export class SshError extends DeployRollbackError {
  constructor(
    message: string,
    readonly kind: HostErrorKind,
  ) {
    super(message, `ssh ${kind}`);
  }
}

/** The kind carried by an SshError; other errors on a host's way are taken as `unreachable`. */
export function hostErrorKind(error: unknown): HostErrorKind {
  return error instanceof SshError ? error.kind : 'unreachable';
}

/** Docker's "cannot connect to the daemon" (and what `docker exec` says when it is gone, exit 255 aside). */
export function looksLikeDockerDown(stderr: string): boolean {
  return /Cannot connect to the Docker daemon|Is the docker daemon running|docker\.sock: connect: (connection refused|no such file)|error during connect/i.test(stderr);
}
