/** What the Kamal inventory, planner and executor need from a host: run a shell line. */

export interface ExecResult {
  /** null when the remote side closed without an exit status (e.g. killed by a signal). */
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  signal?: AbortSignal;
  /** Written to the command's stdin, then closed. */
  stdin?: string;
  /** Deadline for this command (default: the pool's command timeout); past it the command is stopped and rejected. */
  timeoutMs?: number;
  /** Called with the command's standard output as it arrives (UTF-8, split anywhere); the result still has all of it. */
  onStdout?: (text: string) => void;
}

export interface HostSession {
  /** The host as named in the config. */
  readonly host: string;
  /** Runs one shell line (already quoted by src/core/shell.ts) in the SSH user's login shell. */
  exec(command: string, options?: ExecOptions): Promise<ExecResult>;
}

/** Where the SSH user, port and jump host come from: Kamal's `ssh` block. */
export interface SshTarget {
  host: string;
  user: string;
  port: number;
  proxy?: { user: string; host: string; port: number };
  proxyCommand?: string;
  keys: string[];
  keysOnly: boolean;
  /** true: ~/.ssh/config; false: none; strings: these files. */
  config: boolean | string[];
  keepaliveInterval: number;
}

/** Asks the user; the VS Code layer shows a modal, the CLI asks on the terminal. */
export interface SshPrompts {
  /** An unknown host key: return true to trust it and append it to known_hosts. */
  confirmUnknownHostKey(host: string, port: number, keyType: string, fingerprintSha256: string): Promise<boolean>;
  /** An encrypted private key: return undefined to skip this key. */
  passphrase(keyFile: string): Promise<string | undefined>;
}

export interface SessionPool {
  /** One connection per (user, host, port, jump), opened on first use and reused. */
  session(target: SshTarget): Promise<HostSession>;
  /**
   * Resolves once every connection being opened has its link up (its handshake's first bytes are
   * out) or has failed, or after `timeoutMs`: local work started then does not hold them back.
   */
  whenDialled?(timeoutMs: number): Promise<void>;
  dispose(): void;
}
