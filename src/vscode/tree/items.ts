import * as vscode from 'vscode';
import type { HostContainer, Release } from '../../core/model';
import { runningOnLabel } from '../../core/kamal/hosts/releases';
import type { AppNode, EnvironmentNode, HostContainerNode, HostErrorNode, LastKnown, LoadErrorNode, LoadingNode, ProblemNode, ReleaseNode, ShowMoreNode, TreeNode } from './nodes';
import { codeDescription, commitTitle, missingCodeNote, releaseLabel, shortCommitSha } from '../code';
import { shortAge, shortDuration } from './time';

const Collapsed = vscode.TreeItemCollapsibleState.Collapsed;
const None = vscode.TreeItemCollapsibleState.None;

/** What the tree learned about a row beyond its node: kept by the view, read when the row is drawn. */
export interface RowFacts {
  /** Whether the app has a previous release to roll back to; undefined until its releases were read. */
  hasPrevious?(appId: string): boolean | undefined;
  /** Whether the user left the row expanded (kept across reloads by the extension). */
  isExpanded?(id: string): boolean;
}

/**
 * contextValue is `<kind>+<flag>+<flag>…` (Container Tools / GitLens style), flags in a fixed order
 * (releaseFlags): package.json menus match it with regexes anchored on the kind, e.g.
 * `/^release\b.*\+rollbackable\+forward\b/` for Roll Forward.
 */
export function treeItemFor(node: TreeNode, now = Date.now(), facts: RowFacts = {}): vscode.TreeItem {
  const item = itemFor(node, now, facts);
  return node.lastKnown ? asLastKnown(item, node.kind, node.lastKnown) : item;
}

/**
 * A row from an earlier read says so first, and offers no action: what it shows may not be true
 * now, and the sources it came from were replaced by the refresh.
 */
function asLastKnown(item: vscode.TreeItem, kind: string, lastKnown: LastKnown): vscode.TreeItem {
  const time = new Date(lastKnown.since).toTimeString().slice(0, 5);
  const mark = lastKnown.state === 'reading' ? 'reading…' : `stale since ${time}`;
  item.description = item.description ? `${mark} · ${String(item.description)}` : mark;
  const why = lastKnown.state === 'reading' ? `As read at ${time}; reading again now.` : `As read at ${time}: the last read failed.`;
  if (item.tooltip instanceof vscode.MarkdownString) item.tooltip.appendMarkdown(`\n\n---\n\n*${why}*`);
  else item.tooltip = item.tooltip ? `${item.tooltip}\n${why}` : why;
  item.contextValue = `${kind}+lastKnown`;
  item.command = undefined;
  return item;
}

function itemFor(node: TreeNode, now: number, facts: RowFacts): vscode.TreeItem {
  switch (node.kind) {
    case 'environment':
      return withExpansion(environmentItem(node), facts);
    case 'app':
      return withExpansion(appItem(node, facts.hasPrevious?.(node.id)), facts);
    case 'release':
      return withExpansion(releaseItem(node, now), facts);
    case 'hostContainer':
      return hostContainerItem(node, now);
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

/** VS Code forgets which custom-tree rows were open on reload; the ids the user left expanded say it again. */
function withExpansion(item: vscode.TreeItem, facts: RowFacts): vscode.TreeItem {
  if (item.collapsibleState === Collapsed && item.id && facts.isExpanded?.(item.id)) item.collapsibleState = vscode.TreeItemCollapsibleState.Expanded;
  return item;
}

function environmentItem(node: EnvironmentNode): vscode.TreeItem {
  const { environment } = node;
  const item = new vscode.TreeItem(environment.name, Collapsed);
  item.id = node.id;
  const broken = environment.problems.some((problem) => problem.severity === 'error');
  item.contextValue = ['environment', environment.source, ...(broken ? ['problems'] : [])].join('+');
  item.iconPath = new vscode.ThemeIcon(environment.source === 'kamal' ? 'server-environment' : 'repo');
  const where = vscode.workspace.asRelativePath(environment.location);
  // Two environments of the same name: the folder tells them apart; the full path is in the tooltip.
  item.description = node.showSource ? `${environment.source} · ${shortPath(where)}` : environment.source;
  item.tooltip = `${environment.source === 'kamal' ? 'Kamal destination' : 'Gitops environment'} ${environment.name}\n${environment.location}`;
  if (broken) {
    item.iconPath = new vscode.ThemeIcon('error', new vscode.ThemeColor('problemsErrorIcon.foreground'));
  }
  return item;
}

function appItem(node: AppNode, hasPrevious: boolean | undefined): vscode.TreeItem {
  const { app } = node;
  const item = new vscode.TreeItem(app.name, Collapsed);
  item.id = node.id;
  const flags = ['app', app.environment.source];
  // "Roll Back to Previous" is offered only once the releases show there is one.
  if (hasPrevious) flags.push('hasPrevious');
  if (app.lock) {
    flags.push('locked');
    item.iconPath = new vscode.ThemeIcon('lock', new vscode.ThemeColor('problemsWarningIcon.foreground'));
    item.description = `locked by ${shorten(app.lock.holder, 20)}`;
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

/**
 * `release+<source>[+current][+previous][+rolledBack][+rollbackable+back|forward][+partial][+commit][+compare]`,
 * in this order. `partial`: it runs on some hosts and other readable hosts run something else;
 * `commit`: its commit is in a local clone; `compare`: so is the running release's, another one.
 */
export function releaseFlags(release: Release, runningSha?: string): string[] {
  const flags = ['release', release.app.environment.source];
  if (release.current) flags.push('current');
  if (release.previous) flags.push('previous');
  if (release.rolledBack) flags.push('rolledBack');
  if (release.rollbackable) flags.push('rollbackable', release.direction === 'forward' ? 'forward' : 'back');
  if (release.runningOn) flags.push('partial');
  const sha = release.code?.commit?.sha;
  if (sha) flags.push('commit');
  if (sha && runningSha && !release.current && runningSha !== sha) flags.push('compare');
  return flags;
}

/** One or two words for the sidebar; the whole reason is in the tooltip. */
export function shortReason(reason: string): string {
  if (isUncertain(reason)) return 'uncertain history';
  if (/^pruned on |^missing on /.test(reason)) return 'pruned';
  if (/unreachable/.test(reason)) return 'host unreachable';
  return shorten(reason, 24);
}

/** The history could not be read with certainty ("uncertain: …"): said even on a rollback target. */
export function isUncertain(reason: string | undefined): boolean {
  return reason?.startsWith('uncertain:') ?? false;
}

/**
 * What the description says, most important first: state, then the commit (sha, subject, author,
 * its age) when a local clone has it, else the deploy's age, who, and the title (cut first).
 * `noteMissing`: this row says for its app that commits are not in the local clone.
 */
export function releaseDescription(release: Release, now: number, noteMissing = false): string {
  const parts: string[] = [];
  // A canary's state first: which release runs where is the question during one.
  const running = runningOnLabel(release);
  if (release.current) parts.push(running ?? 'current');
  else if (release.rolledBack) parts.push('rolled back');
  else if (release.previous) parts.push('previous');
  else if (release.rollbackable && release.direction === 'forward') parts.push('newer');
  if (!release.current && running) parts.push(running);
  // Why a release cannot be picked belongs where the eye is; rolled back says it already.
  if (!release.rollbackable && !release.current && !release.rolledBack && release.reason) parts.push(shortReason(release.reason));
  else if (isUncertain(release.reason)) parts.push(shortReason(release.reason ?? ''));
  // "3 of 3 hosts" says nothing; "2 of 3" does.
  const partial = /^(\d+) of (\d+) /.exec(release.presence ?? '');
  if (partial && partial[1] !== partial[2]) parts.push(`${partial[1]}/${partial[2]} hosts`);
  const code = codeDescription(release, now);
  if (code.length > 0) return [...parts, ...code].filter(Boolean).join(' · ');
  if (noteMissing) parts.push(missingCodeNote(release) ?? '');
  if (release.created) parts.push(shortAge(Date.parse(release.created), now));
  if (release.triggeredBy) parts.push(shorten(release.triggeredBy.replace(/@.*$/, ''), 16));
  if (release.title) parts.push(release.title);
  return parts.filter(Boolean).join(' · ');
}

function releaseItem(node: ReleaseNode, now: number): vscode.TreeItem {
  const { release } = node;
  const item = new vscode.TreeItem(releaseLabel(release), node.source.hostEntries ? Collapsed : None);
  item.id = node.id;
  item.contextValue = releaseFlags(release, node.running?.code?.commit?.sha).join('+');
  item.description = releaseDescription(release, now, node.noteMissingCode);

  if (release.current) {
    item.iconPath = new vscode.ThemeIcon('pass-filled', new vscode.ThemeColor('testing.iconPassed'));
  } else if (isUncertain(release.reason)) {
    item.iconPath = new vscode.ThemeIcon('warning', new vscode.ThemeColor('problemsWarningIcon.foreground'));
  } else if (release.rollbackable && release.direction === 'forward') {
    item.iconPath = new vscode.ThemeIcon(release.rolledBack ? 'redo' : 'arrow-up');
  } else if (release.rolledBack) {
    item.iconPath = new vscode.ThemeIcon('discard', new vscode.ThemeColor('disabledForeground'));
  } else if (release.rollbackable) {
    item.iconPath = new vscode.ThemeIcon('history');
  } else {
    item.iconPath = new vscode.ThemeIcon('circle-slash', new vscode.ThemeColor('disabledForeground'));
  }
  item.tooltip = releaseTooltip(release, now);
  // Click: gitops opens the release's change as a diff (GitLens opens the commit); Kamal its history on the hosts.
  item.command =
    release.app.environment.source === 'gitops'
      ? { command: 'deployRollback.openChange', title: 'Open Change', arguments: [node] }
      : { command: 'deployRollback.showReleaseHistory', title: 'Show History on Hosts', arguments: [node] };
  return item;
}

function releaseTooltip(release: Release, now: number): vscode.MarkdownString {
  const md = new vscode.MarkdownString('', true);
  const commit = release.code?.commit;
  const kamal = release.app.environment.source === 'kamal';
  md.appendMarkdown(`**${escape(release.version)}**`);
  if (release.title) md.appendMarkdown(` ${escape(release.title)}`);
  else if (commit) md.appendMarkdown(` ${escape(commitTitle(commit))}`);
  if (release.current) md.appendMarkdown(' — current');
  if (release.rolledBack) md.appendMarkdown(' — rolled back');
  if (release.rollbackable) md.appendMarkdown(release.direction === 'forward' ? ' — going to it is a roll forward' : ' — going to it is a rollback');
  md.appendMarkdown('\n\n');
  const rows: [string, string | undefined][] = [
    ['Source', release.sourceRepo],
    ['Branch', release.sourceBranch],
    // The commit's own author is below, with its message.
    ['Author', commit ? undefined : release.author],
    // Kamal: the last boot, from the hosts' audit logs; without a line there, nobody can say who.
    [kamal ? 'Last booted by' : 'Triggered by', release.triggeredBy ?? (kamal ? 'unknown (no audit log line on the hosts)' : undefined)],
    [kamal ? 'Last booted' : 'Created', release.created && `${release.created} (${shortAge(Date.parse(release.created), now)})`],
    [release.app.environment.source === 'gitops' ? 'Gitops commit' : 'Release', release.app.environment.source === 'gitops' ? release.id : undefined],
    ['Hosts', release.presence],
    ['Runs now on', release.runningOn && `${release.runningOn.hosts.join(', ')} (not on ${release.runningOn.otherHosts.join(', ')})`],
    ['Not a rollback target', release.rollbackable ? undefined : release.reason],
    ['History', release.rollbackable && isUncertain(release.reason) ? release.reason : undefined],
  ];
  for (const [name, value] of rows) if (value) md.appendMarkdown(`${name}: \`${value.replace(/`/g, "'")}\`  \n`);
  if (release.url) md.appendMarkdown(`[Open source commit](${encodeURI(release.url)})  \n`);
  const code = release.code;
  if (code?.commit) {
    const { commit } = code;
    md.appendMarkdown('\n---\n\n');
    md.appendMarkdown(`**Commit ${shortCommitSha(commit.sha)}**`);
    if (code.repository) md.appendMarkdown(` in ${escape(code.repository)}`);
    md.appendMarkdown('  \n');
    const author = commit.authorEmail ? `${commit.authorName} <${commit.authorEmail}>` : commit.authorName;
    md.appendMarkdown(`Author: ${escape(author)}  \n`);
    md.appendMarkdown(`Commit date: ${escape(commit.commitDate)} (${escape(shortAge(Date.parse(commit.commitDate), now))})  \n`);
    if (commit.pullRequest) md.appendMarkdown(`Pull request: #${escape(commit.pullRequest.number)} ${escape(commit.pullRequest.title)}  \n`);
    if (code.uncommitted) md.appendMarkdown('**Built from uncommitted changes** on top of this commit  \n');
    md.appendMarkdown('\n');
    md.appendText(commit.message);
    return md;
  }
  if (code) {
    md.appendMarkdown(`Commit: \`${code.ref.replace(/`/g, "'")}\`${code.missing ? ` ${escape(code.missing)}` : ''}  \n`);
    if (code.uncommitted) md.appendMarkdown('**Built from uncommitted changes**  \n');
  }
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

/** "up 3m" / "exited · created 2d ago", from the creation time now, never docker's status text of the last read. */
export function containerAge(container: Pick<HostContainer, 'state' | 'created'>, now: number): string {
  const created = Date.parse(container.created);
  if (Number.isNaN(created)) return container.state;
  return container.state === 'running' ? `up ${shortDuration(created, now)}` : `${container.state} · created ${shortAge(created, now)}`;
}

function hostContainerItem(node: HostContainerNode, now: number): vscode.TreeItem {
  const { container } = node;
  const item = new vscode.TreeItem(`${container.host} · ${container.role}`, None);
  item.id = node.id;
  // A rollback keeps the container it displaced under `<name>_replaced_<hex>`; same host and role, so say so.
  const replaced = container.name.includes('_replaced_');
  // Said first: the default sidebar width cuts the end of the description.
  item.description = `${replaced ? 'replaced copy · ' : ''}${containerAge(container, now)}`;
  item.contextValue = ['hostContainer', container.state, ...(replaced ? ['replaced'] : [])].join('+');
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
  const created = Date.parse(container.created);
  const age = Number.isNaN(created) ? '' : ` (${shortAge(created, now)})`;
  // docker's status line ages from the moment it was read; the state and creation time do not.
  md.appendMarkdown(`State: ${escape(container.state)}  \nCreated: ${escape(container.created)}${escape(age)}  \nImage: \`${container.image.replace(/`/g, "'")}\`  \nRole: ${escape(container.role)}`);
  item.tooltip = md;
  return item;
}

const HOST_ERROR_KINDS: Record<string, string> = { unreachable: 'unreachable', auth: 'SSH authentication failed', 'host-key': 'host key refused', timeout: 'timed out', docker: 'Docker not answering' };

function hostErrorItem(node: HostErrorNode): vscode.TreeItem {
  const kind = HOST_ERROR_KINDS[node.error.kind ?? 'unreachable'];
  const item = new vscode.TreeItem(`${node.error.host}: ${kind}`, None);
  item.id = node.id;
  item.description = shortHostError(node.error.message);
  item.tooltip = `${node.error.host} (${kind}): ${node.error.message}\nIts containers are not shown: they could not be read.`;
  item.iconPath = new vscode.ThemeIcon('warning', new vscode.ThemeColor('problemsWarningIcon.foreground'));
  item.contextValue = 'error+host';
  return item;
}

/** What went wrong on a host, in a few words; the whole message is in the tooltip and the output. */
export function shortHostError(message: string): string {
  if (/^Could not connect to /.test(message)) {
    const cause = /\b(ECONNREFUSED|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|timed out|host key|authentication)/i.exec(message)?.[1];
    return cause ? `cannot connect (${cause})` : 'cannot connect';
  }
  if (/^docker container ls failed/.test(message)) return 'docker failed';
  return shorten(message, 40);
}

function problemItem(node: ProblemNode): vscode.TreeItem {
  const { problem } = node;
  const where = problem.line ? `${vscode.workspace.asRelativePath(problem.file)}:${problem.line}` : vscode.workspace.asRelativePath(problem.file);
  const item = new vscode.TreeItem(problem.message, None);
  item.id = node.id;
  item.description = where;
  item.tooltip = `${where}: ${problem.message}`;
  item.iconPath = new vscode.ThemeIcon(problem.severity, new vscode.ThemeColor(problem.severity === 'error' ? 'problemsErrorIcon.foreground' : 'problemsWarningIcon.foreground'));
  item.contextValue = `problem+${problem.severity}`;
  const position = new vscode.Position(Math.max(0, (problem.line ?? 1) - 1), Math.max(0, (problem.column ?? 1) - 1));
  item.command = {
    command: 'vscode.open',
    title: 'Open',
    arguments: [vscode.Uri.file(problem.file), { selection: new vscode.Range(position, position) }],
  };
  return item;
}

function showMoreItem(node: ShowMoreNode): vscode.TreeItem {
  const item = new vscode.TreeItem(node.count ? `Show ${node.count} more…` : 'Show more…', None);
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
  item.contextValue = 'error+load';
  return item;
}

function shorten(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** The last two segments of a workspace-relative path. */
function shortPath(where: string): string {
  const parts = where.split(/[\\/]/);
  return parts.length > 2 ? `…/${parts.slice(-2).join('/')}` : where;
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
