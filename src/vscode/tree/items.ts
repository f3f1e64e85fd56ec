import * as vscode from 'vscode';
import type { Release } from '../../core/model';
import type { AppNode, EnvironmentNode, HostContainerNode, HostErrorNode, LoadErrorNode, LoadingNode, ProblemNode, ReleaseNode, ShowMoreNode, TreeNode } from './nodes';
import { relativeTime } from './time';

const Collapsed = vscode.TreeItemCollapsibleState.Collapsed;
const None = vscode.TreeItemCollapsibleState.None;

export function treeItemFor(node: TreeNode, now = Date.now()): vscode.TreeItem {
  switch (node.kind) {
    case 'environment':
      return environmentItem(node);
    case 'app':
      return appItem(node);
    case 'release':
      return releaseItem(node, now);
    case 'hostContainer':
      return hostContainerItem(node);
    case 'hostError':
      return hostErrorItem(node);
    case 'problem':
      return problemItem(node);
    case 'showMore':
      return showMoreItem(node);
    case 'loadError':
      return loadErrorItem(node);
    case 'loading':
      return loadingItem(node);
  }
}

function environmentItem(node: EnvironmentNode): vscode.TreeItem {
  const { environment } = node;
  const item = new vscode.TreeItem(environment.name, Collapsed);
  item.id = node.id;
  item.contextValue = `environment+${environment.source}`;
  item.iconPath = new vscode.ThemeIcon(environment.source === 'kamal' ? 'server-environment' : 'repo');
  const where = vscode.workspace.asRelativePath(environment.location);
  item.description = node.showSource ? `${environment.source} · ${where}` : environment.source;
  item.tooltip = `${environment.source === 'kamal' ? 'Kamal destination' : 'Gitops environment'} ${environment.name}\n${environment.location}`;
  if (environment.problems.some((problem) => problem.severity === 'error')) {
    item.iconPath = new vscode.ThemeIcon('error', new vscode.ThemeColor('problemsErrorIcon.foreground'));
  }
  return item;
}

function appItem(node: AppNode): vscode.TreeItem {
  const { app } = node;
  const item = new vscode.TreeItem(app.name, Collapsed);
  item.id = node.id;
  const flags = ['app', app.environment.source];
  if (app.lock) {
    flags.push('locked');
    item.iconPath = new vscode.ThemeIcon('lock', new vscode.ThemeColor('problemsWarningIcon.foreground'));
    item.description = `locked by ${app.lock.holder}`;
    const tooltip = new vscode.MarkdownString(`**Deploy lock held** by ${escape(app.lock.holder)}`);
    if (app.lock.lockedAt) tooltip.appendMarkdown(` at ${escape(app.lock.lockedAt)}`);
    if (app.lock.message) tooltip.appendMarkdown(`\n\n${escape(app.lock.message)}`);
    item.tooltip = tooltip;
  } else {
    item.iconPath = new vscode.ThemeIcon('package');
  }
  item.contextValue = flags.join('+');
  return item;
}

export function releaseFlags(release: Release): string[] {
  const flags = ['release', release.app.environment.source];
  if (release.current) flags.push('current');
  if (release.previous) flags.push('previous');
  if (release.rolledBack) flags.push('rolledBack');
  if (release.rollbackable) flags.push('rollbackable');
  return flags;
}

function releaseItem(node: ReleaseNode, now: number): vscode.TreeItem {
  const { release } = node;
  const label = release.title ? `${release.version}  ${release.title}` : release.version;
  const item = new vscode.TreeItem(label, node.source.hostEntries ? Collapsed : None);
  item.id = node.id;
  item.contextValue = releaseFlags(release).join('+');

  const description: string[] = [];
  if (release.current) description.push('current');
  else if (release.rolledBack) description.push('rolled back');
  else if (release.previous) description.push('previous');
  if (release.presence) description.push(release.presence);
  // Why a release cannot be picked belongs where the eye is; rolled back says it already.
  if (!release.rollbackable && !release.current && !release.rolledBack && release.reason) description.push(release.reason);
  if (release.created) description.push(relativeTime(Date.parse(release.created), now));
  if (release.triggeredBy) description.push(`by ${release.triggeredBy}`);
  item.description = description.join(' · ');

  if (release.current) {
    item.iconPath = new vscode.ThemeIcon('pass-filled', new vscode.ThemeColor('testing.iconPassed'));
  } else if (release.rolledBack) {
    item.iconPath = new vscode.ThemeIcon('discard', new vscode.ThemeColor('disabledForeground'));
  } else if (release.rollbackable) {
    item.iconPath = new vscode.ThemeIcon('history');
  } else {
    item.iconPath = new vscode.ThemeIcon('circle-slash', new vscode.ThemeColor('disabledForeground'));
  }
  item.tooltip = releaseTooltip(release);
  return item;
}

function releaseTooltip(release: Release): vscode.MarkdownString {
  const md = new vscode.MarkdownString('', true);
  md.appendMarkdown(`**${escape(release.version)}**`);
  if (release.current) md.appendMarkdown(' — current');
  if (release.rolledBack) md.appendMarkdown(' — rolled back');
  md.appendMarkdown('\n\n');
  const rows: [string, string | undefined][] = [
    ['Source', release.sourceRepo],
    ['Branch', release.sourceBranch],
    ['Author', release.author],
    ['Triggered by', release.triggeredBy],
    ['Created', release.created],
    [release.app.environment.source === 'gitops' ? 'Gitops commit' : 'Release', release.app.environment.source === 'gitops' ? release.id : undefined],
    ['Hosts', release.presence],
    ['Not a rollback target', release.rollbackable ? undefined : release.reason],
  ];
  for (const [name, value] of rows) if (value) md.appendMarkdown(`${name}: \`${value.replace(/`/g, "'")}\`  \n`);
  if (release.url) md.appendMarkdown(`[Open source commit](${encodeURI(release.url)})  \n`);
  if (release.message) {
    md.appendMarkdown('\n---\n\n');
    md.appendText(release.message);
  }
  return md;
}

const stateIcons: Record<string, [string, string]> = {
  running: ['vm-running', 'debugIcon.startForeground'],
  restarting: ['sync', 'problemsWarningIcon.foreground'],
  paused: ['debug-pause', 'problemsWarningIcon.foreground'],
  created: ['vm-outline', 'disabledForeground'],
  exited: ['vm-outline', 'debugIcon.stopForeground'],
  dead: ['error', 'problemsErrorIcon.foreground'],
};

function hostContainerItem(node: HostContainerNode): vscode.TreeItem {
  const { container } = node;
  const item = new vscode.TreeItem(`${container.host} · ${container.role}`, None);
  item.id = node.id;
  // A rollback keeps the container it displaced under `<name>_replaced_<hex>`; same host and role, so say so.
  item.description = container.name.includes('_replaced_') ? `${container.state} · replaced copy` : container.state;
  item.contextValue = `hostContainer+${container.state}`;
  const [icon, color] = stateIcons[container.state] ?? ['question', 'problemsWarningIcon.foreground'];
  item.iconPath = new vscode.ThemeIcon(icon, new vscode.ThemeColor(color));
  if (container.stale) {
    // The host did not answer: an earlier read's view, never shown as the state now.
    item.description = `stale: was ${container.state} at ${container.stale.seenAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z')} · host not answering`;
    item.iconPath = new vscode.ThemeIcon('history', new vscode.ThemeColor('disabledForeground'));
    item.contextValue = 'hostContainer+stale';
  }
  const md = new vscode.MarkdownString();
  md.appendMarkdown(`**${escape(container.name)}** on ${escape(container.host)}\n\n`);
  md.appendMarkdown(`Status: ${escape(container.status)}  \nCreated: ${escape(container.created)}  \nImage: \`${container.image}\`  \nRole: ${escape(container.role)}`);
  item.tooltip = md;
  return item;
}

const HOST_ERROR_KINDS: Record<string, string> = { unreachable: 'unreachable', auth: 'SSH authentication failed', 'host-key': 'host key refused', timeout: 'timed out', docker: 'Docker not answering' };

function hostErrorItem(node: HostErrorNode): vscode.TreeItem {
  const kind = HOST_ERROR_KINDS[node.error.kind ?? 'unreachable'];
  const item = new vscode.TreeItem(`${node.error.host}: ${kind}`, None);
  item.id = node.id;
  item.description = node.error.message;
  item.tooltip = `${node.error.host} (${kind}): ${node.error.message}\nIts containers are not shown: they could not be read.`;
  item.iconPath = new vscode.ThemeIcon('warning', new vscode.ThemeColor('problemsWarningIcon.foreground'));
  item.contextValue = 'hostError';
  return item;
}

function problemItem(node: ProblemNode): vscode.TreeItem {
  const { problem } = node;
  const where = problem.line ? `${vscode.workspace.asRelativePath(problem.file)}:${problem.line}` : vscode.workspace.asRelativePath(problem.file);
  const item = new vscode.TreeItem(problem.message, None);
  item.id = node.id;
  item.description = where;
  item.tooltip = `${where}: ${problem.message}`;
  item.iconPath = new vscode.ThemeIcon(problem.severity, new vscode.ThemeColor(problem.severity === 'error' ? 'problemsErrorIcon.foreground' : 'problemsWarningIcon.foreground'));
  item.contextValue = 'problem';
  const position = new vscode.Position(Math.max(0, (problem.line ?? 1) - 1), Math.max(0, (problem.column ?? 1) - 1));
  item.command = {
    command: 'vscode.open',
    title: 'Open',
    arguments: [vscode.Uri.file(problem.file), { selection: new vscode.Range(position, position) }],
  };
  return item;
}

function showMoreItem(node: ShowMoreNode): vscode.TreeItem {
  const item = new vscode.TreeItem('Show more…', None);
  item.id = node.id;
  item.iconPath = new vscode.ThemeIcon('ellipsis');
  item.contextValue = 'showMore';
  item.command = { command: 'deployRollback.showMore', title: 'Show More', arguments: [node] };
  return item;
}

function loadErrorItem(node: LoadErrorNode): vscode.TreeItem {
  const item = new vscode.TreeItem(node.message, None);
  item.id = node.id;
  item.tooltip = node.message;
  item.iconPath = new vscode.ThemeIcon('error', new vscode.ThemeColor('problemsErrorIcon.foreground'));
  item.contextValue = 'loadError';
  return item;
}

function escape(text: string): string {
  return text.replace(/[\\`*_{}[\]()#+\-.!|<>]/g, '\\$&');
}

function loadingItem(node: LoadingNode): vscode.TreeItem {
  const item = new vscode.TreeItem(node.message, None);
  item.id = node.id;
  item.iconPath = new vscode.ThemeIcon('loading~spin');
  item.contextValue = 'loading';
  return item;
}
