import * as vscode from 'vscode';

export interface Settings {
  gitopsPaths: string[];
  gitopsMode: 'auto' | 'multi-env' | 'repo-per-env';
  gitopsEnvironmentName: string;
  gitopsNetworkTimeoutSeconds: number;
  kamalConfigPaths: string[];
  protectedEnvironments: string[];
  sshConnectTimeoutSeconds: number;
  sshCommandTimeoutSeconds: number;
  sshKeepaliveIntervalSeconds: number;
  runHooks: boolean;
  pollIntervalSeconds: number;
  logLines: number;
  releasesPerApp: number;
}

export function readSettings(): Settings {
  // Some settings are resource-scoped (per folder); the first folder is the one that counts.
  const config = vscode.workspace.getConfiguration('deployRollback', vscode.workspace.workspaceFolders?.[0]?.uri);
  return {
    gitopsPaths: config.get<string[]>('gitops.paths', []),
    gitopsMode: config.get<Settings['gitopsMode']>('gitops.mode', 'auto'),
    gitopsEnvironmentName: config.get<string>('gitops.environmentName', ''),
    gitopsNetworkTimeoutSeconds: config.get<number>('gitops.networkTimeout', 60),
    kamalConfigPaths: config.get<string[]>('kamal.configPaths', []),
    protectedEnvironments: config.get<string[]>('protectedEnvironments', ['production', 'prod']),
    sshConnectTimeoutSeconds: config.get<number>('ssh.connectTimeout', 10),
    sshCommandTimeoutSeconds: config.get<number>('ssh.commandTimeout', 120),
    sshKeepaliveIntervalSeconds: config.get<number>('ssh.keepaliveInterval', 5),
    runHooks: config.get<boolean>('kamal.runHooks', true),
    pollIntervalSeconds: config.get<number>('refresh.pollInterval', 0),
    logLines: config.get<number>('containerLogs.lines', 200),
    releasesPerApp: config.get<number>('releasesPerApp', 10),
  };
}

/** Paths in settings may be relative to the first workspace folder, as users write them. */
export function resolveWorkspacePath(path: string): string {
  const root = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  if (!root || path.startsWith('/') || /^[A-Za-z]:[\\/]/.test(path)) return path;
  return vscode.Uri.joinPath(vscode.Uri.file(root), path).fsPath;
}
