/** The SSH layer: what the Kamal inventory, executor, VS Code layer and CLI import. */
export { createSessionPool, type InspectableSessionPool, type SessionPoolOptions, type SessionPoolStats } from './pool';
export { resolveSshTarget, sshConfigFiles, describeTarget, parseJumpSpec, DEFAULT_IDENTITY_FILES, type ResolvedSshTarget, type SshResolveEnv, type SshTargetHints } from './resolve';
export { checkKnownHosts, fingerprintSha256, keyTypeOfBlob, knownHostsLine, knownHostsName, appendKnownHost, type KnownHostsVerdict } from './knownHosts';
export { redactSecrets } from './redact';
export { SshError, hostErrorKind, looksLikeDockerDown, type HostErrorKind } from './errors';
export type { ExecOptions, ExecResult, HostSession, SessionPool, SshPrompts, SshTarget } from './types';
export { inlineIncludes } from './includes';
