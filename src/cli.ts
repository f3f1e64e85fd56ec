import { parseArgs } from 'node:util';
import { discoverSources } from './core/discovery';
import { defaultFinders, environmentsToJson, openSource, releasesToJson } from './core/finders';
import * as path from 'node:path';
import { codeChangeSummary, commitTitle, ReleaseCodeReader, shortCommitSha } from './core/commits';
import { fullShaProblem, GitopsSource } from './core/gitops';
import { DeployRollbackError, type App, type Release, type ReleaseSource, type Reporter, type RollbackOutcome, type RollbackPlan, type SourceCommit } from './core/model';
import { quote } from './core/shell';
import { createSessionPool } from './core/ssh/pool';
import type { SessionPool, SshPrompts } from './core/ssh/types';
import { escapeControl } from './core/text';
import { describeLock } from './core/kamal/commands/lock';
import { judgeLockRun, notStaleReason, staleLockQuestion } from './core/kamal/commands/lock-run';
import { KamalSource } from './core/kamal/source';
import { runningOnLabel } from './core/kamal/hosts/releases';
import { agreeToWriteEnvFiles, type KamalPlanDetail } from './core/kamal/rollback';
import { DEFAULT_LOCK_WAIT_INTERVAL_S, DEFAULT_LOCK_WAIT_TIMEOUT_S, KAMAL_RUN_OPTION_SPECS, KamalOptionsError, kamalRunOptions, type KamalRunOptions } from './cli-kamal-options';
import { version } from '../package.json';

// Everything this CLI prints may carry text from a host: control characters are shown, never obeyed.
const out = (text: string): void => void process.stdout.write(escapeControl(text));
const err = (text: string): void => void process.stderr.write(escapeControl(text));

const USAGE = `deploy-rollback ${version}: see what runs where and roll back Kamal and gitops deploys.

Usage:
  deploy-rollback environments --workspace DIR --json
  deploy-rollback releases --gitops PATH --env ENV --app APP [--limit N] [--code-repo DIR]... [--json]
  deploy-rollback releases --kamal CONFIG [--destination D] [--json]
  deploy-rollback rollback --gitops PATH --env ENV --app APP --to SHA [--restore-tree] [--dry-run] [--yes] [--json]
  deploy-rollback rollback --kamal CONFIG [--destination D] [--to VERSION] [-r ROLES] [-h HOSTS] [-p] [-H]
                   [--lock-wait [--lock-wait-timeout S] [--lock-wait-interval S]] [--write-env-files]
                   [--secret-commands] [--dry-run] [--yes] [--json]
  deploy-rollback release-lock --kamal CONFIG [--destination D] [--yes]

Options:
  --workspace DIR    folder to search for config/deploy.yml and gitops repositories
  --gitops PATH      a gitops repository (Gimlet layout)
  --kamal CONFIG     config/deploy.yml, its config/ folder or the project folder
  -d, --destination D  Kamal destination (config/deploy.D.yml), as kamal -d
  --env ENV          gitops environment; --app APP: the app in it
  --to TARGET        gitops: full 40-hex sha of the release (the first column of "releases"),
                     older (roll back) or rolled back (roll forward); Kamal: version (default: previous)
  release-lock       Kamal: remove a deploy lock directory that names nobody (no details),
                     which \`kamal lock release\` cannot remove; a lock naming its holder is left
  --restore-tree     gitops: write <env>/<app> as at the target in one commit naming it,
                     instead of reverts (offered when reverts cannot restore it exactly)
  --limit N          how many releases (default 10)
  --code-repo DIR    gitops: a clone of the apps' source repositories, or a folder holding
                     clones (repeatable; default: the gitops repository's parent folder and
                     the current directory). Kamal reads the repository holding the config
  -r, --roles R,..   Kamal: roll back only these roles (comma-separated, * wildcards), as kamal -r
  -h, --hosts H,..   Kamal: only these hosts (comma-separated, * wildcards), as kamal -h; the deploy
                     lock is taken on the first of them, as Kamal does
  -p, --primary      Kamal: only the primary host (of the first --roles match, if given)
  -H, --skip-hooks   Kamal: run no .kamal/hooks
  --lock-wait        Kamal: while someone else holds the deploy lock, check again every
                     --lock-wait-interval seconds (default ${DEFAULT_LOCK_WAIT_INTERVAL_S}) for at most
                     --lock-wait-timeout seconds (default ${DEFAULT_LOCK_WAIT_TIMEOUT_S}); a signal stops the wait
  --write-env-files  kamal: write the role env files that differ from what Kamal would write
                     (current config and .kamal/secrets), as Kamal's rollback does
  --secret-commands  kamal: let .kamal/secrets run its $(...) commands to compare env files
                     (they may prompt, as 1Password's does); without it those keys are not compared
  --dry-run          print the plan (and the gitops diff stat) and change nothing
  --yes              do not ask for confirmation (required when stdin is not a terminal)
  --json             machine-readable output (rollback: one JSON object with the plan, its
                     code change and, unless --dry-run, the outcome)
  --verbose          also print every git and remote command run
  --connect-timeout S  SSH connect timeout in seconds (default 10)
  --help             this help;  -v, --version  the version

Exit codes:
  0  success (rollback: every host / the remote ended on the target)
  1  refused or failed: the reason is on stderr; nothing half-done is left behind
  2  usage error
  129, 130, 131, 143  interrupted by SIGHUP, SIGINT, SIGQUIT, SIGTERM: the run was cancelled, the lock released
     and the per-host table printed; a second signal releases the lock (best effort) and exits at once`;

class UsageError extends Error {}

const options = {
  workspace: { type: 'string' },
  gitops: { type: 'string' },
  kamal: { type: 'string' },
  destination: { type: 'string', short: 'd' },
  env: { type: 'string' },
  app: { type: 'string' },
  to: { type: 'string' },
  'code-repo': { type: 'string', multiple: true },
  limit: { type: 'string' },
  'dry-run': { type: 'boolean' },
  'restore-tree': { type: 'boolean' },
  'write-env-files': { type: 'boolean' },
  'secret-commands': { type: 'boolean' },
  yes: { type: 'boolean' },
  json: { type: 'boolean' },
  verbose: { type: 'boolean' },
  'connect-timeout': { type: 'string' },
  ...KAMAL_RUN_OPTION_SPECS,
  help: { type: 'boolean' },
  version: { type: 'boolean', short: 'v' },
} as const;

type Flags = ReturnType<typeof parseArgs<{ options: typeof options; allowPositionals: true }>>['values'];

function stderrReporter(verbose: boolean): Reporter {
  const write = (prefix: string) => (message: string) => err(`${prefix}${message}\n`);
  return {
    step: write('» '),
    info: write(''),
    debug: verbose ? write('  $ ') : () => {},
    warn: write('warning: '),
    error: write('error: '),
  };
}

function ask(question: string, hidden = false): Promise<string> {
  // Loaded only to ask: a run with --yes never does.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const readline = require('node:readline') as typeof import('node:readline');
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  if (hidden) {
    // Echo nothing while a passphrase is typed.
    (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = () => {};
  }
  return new Promise((resolve) => {
    rl.question(question, (answer) => {
      rl.close();
      if (hidden) err('\n');
      resolve(answer);
    });
  });
}

const terminalPrompts: SshPrompts = {
  async confirmUnknownHostKey(host, port, keyType, fingerprint) {
    const where = port === 22 ? host : `[${host}]:${port}`;
    if (!process.stdin.isTTY) {
      err(`Host key of ${where} is unknown (${keyType} ${fingerprint}); add it to ~/.ssh/known_hosts first (no terminal to ask).\n`);
      return false;
    }
    const answer = await ask(`The authenticity of host '${where}' can't be established.\n${keyType} key fingerprint is ${fingerprint}.\nAre you sure you want to continue connecting (yes/no)? `);
    return answer.trim().toLowerCase() === 'yes';
  },
  async passphrase(keyFile) {
    if (!process.stdin.isTTY) return undefined;
    const answer = await ask(`Enter passphrase for key '${keyFile}': `, true);
    return answer === '' ? undefined : answer;
  },
};

function required(flags: Flags, name: keyof Flags, command: string): string {
  const value = flags[name];
  if (typeof value !== 'string' || value === '') throw new UsageError(`${command} needs --${name}`);
  return value;
}

async function main(argv: string[]): Promise<number> {
  let parsed;
  // -h is Kamal's --hosts; alone it still asks for help.
  if (argv.length === 1 && argv[0] === '-h') argv = ['--help'];
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const flags = parsed.values;
  if (flags.version) {
    out(`${version}\n`);
    return 0;
  }
  const [command, ...rest] = parsed.positionals;
  if (flags.help || !command) {
    out(`${USAGE}\n`);
    return flags.help ? 0 : 2;
  }
  if (rest.length) throw new UsageError(`unexpected argument: ${rest[0]}`);

  exitOnSignals();
  const reporter = stderrReporter(Boolean(flags.verbose));
  const timeout = flags['connect-timeout'] !== undefined ? Number(flags['connect-timeout']) : 10;
  // setTimeout fires at once beyond 2^31 ms: bound the value instead of letting it wrap.
  if (flags['connect-timeout']?.trim() === '' || !Number.isFinite(timeout) || timeout <= 0 || timeout > 3600) {
    throw new UsageError(`--connect-timeout takes seconds from 1 to 3600, not ${JSON.stringify(flags['connect-timeout'])}`);
  }
  let pool: SessionPool | undefined;
  const getPool = () =>
    (pool ??= createSessionPool({ prompts: terminalPrompts, connectTimeoutMs: timeout * 1000, log: (line) => reporter.debug(line) }));
  try {
    switch (command) {
      case 'environments':
        return await environmentsCommand(flags, getPool, reporter);
      case 'releases':
        return await releasesCommand(flags, getPool, reporter);
      case 'rollback':
        return await rollbackCommand(flags, getPool, reporter);
      case 'release-lock':
        return await releaseLockCommand(flags, getPool, reporter);
      default:
        throw new UsageError(`unknown command: ${command}`);
    }
  } finally {
    pool?.dispose();
  }
}

async function environmentsCommand(flags: Flags, pool: () => SessionPool, reporter: Reporter): Promise<number> {
  const workspace = required(flags, 'workspace', 'environments');
  const sources = await discoverSources(
    defaultFinders,
    { folders: [workspace], gitopsPaths: [], gitopsMode: 'auto', kamalConfigPaths: [], kamalRunHooks: true, env: process.env },
    { pool, connectAllowed: () => true, reporter },
  );
  const json = await environmentsToJson(sources);
  if (flags.json) out(`${JSON.stringify(json, null, 2)}\n`);
  else for (const entry of json) out(`${entry.source}\t${entry.environment}\t${entry.path}\n`);
  return 0;
}

/** Where the CLI looks for the apps' code: --code-repo, else beside the gitops repository and here. */
function codeReader(flags: Flags, reporter: Reporter): ReleaseCodeReader {
  const given = (flags['code-repo'] ?? []).map((folder) => path.resolve(folder));
  const folders = given.length > 0 ? given : [...(flags.gitops ? [path.dirname(path.resolve(flags.gitops))] : []), process.cwd()];
  return new ReleaseCodeReader({ folders: () => folders, reporter });
}

async function openFromFlags(flags: Flags, pool: () => SessionPool, reporter: Reporter, command: string): Promise<{ source: ReleaseSource; app: App }> {
  if (flags.gitops && flags.kamal) throw new UsageError(`${command} takes --gitops or --kamal, not both`);
  const code = codeReader(flags, reporter);
  if (flags.gitops) {
    const env = required(flags, 'env', command);
    const appName = required(flags, 'app', command);
    const source = await openSource({ kind: 'gitops', location: flags.gitops }, { pool, connectAllowed: () => true, reporter, code });
    return { source, app: await findApp(source, env, appName) };
  }
  if (flags.kamal) {
    const source = await openSource({ kind: 'kamal', location: flags.kamal, destination: flags.destination }, { pool, connectAllowed: () => true, reporter, code });
    const environments = await source.environments();
    const wanted = flags.destination ?? 'default';
    const environment = environments.find((candidate) => candidate.name === wanted);
    if (!environment) throw new DeployRollbackError(`No Kamal destination "${wanted}" in ${flags.kamal} (found: ${environments.map((e) => e.name).join(', ') || 'none'})`);
    const errors = environment.problems.filter((problem) => problem.severity === 'error');
    if (errors.length) throw new DeployRollbackError(errors.map((p) => `${p.file}${p.line ? `:${p.line}` : ''}${p.column ? `:${p.column}` : ''}: ${p.message}`).join('\n'));
    // The hosts are known: their handshakes run while the rest is read and planned (once their first bytes are out).
    const kamal = source instanceof KamalSource ? source : undefined;
    await kamal?.connectAhead(environment).catch(() => undefined);
    // A rollback to a given version does not show the lock status: its pre-flight reads the lock itself.
    const [app] = kamal ? await kamal.apps(environment, { readLock: !(command === 'rollback' && flags.to) }) : await source.apps(environment);
    if (!app) throw new DeployRollbackError(`No service in ${flags.kamal}`);
    return { source, app };
  }
  throw new UsageError(`${command} needs --gitops PATH or --kamal CONFIG`);
}

async function findApp(source: ReleaseSource, envName: string, appName: string): Promise<App> {
  const environments = await source.environments();
  const environment = environments.find((candidate) => candidate.name === envName);
  if (!environment) throw new DeployRollbackError(`No environment "${envName}" in ${source.location} (found: ${environments.map((e) => e.name).join(', ') || 'none'})`);
  const apps = await source.apps(environment);
  // An app deleted at HEAD is not in the working tree, but its releases are still targets.
  const app = apps.find((candidate) => candidate.name === appName) ?? (source instanceof GitopsSource ? await source.deletedApp(environment, appName) : undefined);
  if (!app) throw new DeployRollbackError(`No app "${appName}" in ${envName} (found: ${apps.map((a) => a.name).join(', ') || 'none'})`);
  return app;
}

async function releasesCommand(flags: Flags, pool: () => SessionPool, reporter: Reporter): Promise<number> {
  const limit = flags.limit ? Number(flags.limit) : 10;
  if (!Number.isInteger(limit) || limit < 1) throw new UsageError('--limit takes a whole number from 1');
  const { source, app } = await openFromFlags(flags, pool, reporter, 'releases');
  const releases = await source.releases(app, { limit });
  const json = await releasesToJson(source, releases);
  if (flags.json) out(`${JSON.stringify(json, null, 2)}\n`);
  else for (const release of releases) out(`${describeRelease(release, source.kind === 'gitops')}\n`);
  return 0;
}

/** One line per release; for gitops the first column is the gitops commit, what `rollback --to` takes. */
function describeRelease(release: Release, withId: boolean): string {
  const uncertain = release.reason?.startsWith('uncertain:') ? release.reason : undefined;
  const flags = [runningOnLabel(release) ?? (release.current && 'current'), release.previous && 'previous', release.rolledBack && 'rolled back', release.rollbackable && release.direction === 'forward' && 'roll forward', release.code?.uncommitted && 'built from uncommitted changes', (!release.rollbackable && !release.current && release.reason) || uncertain].filter(Boolean);
  // The subject of the release's commit beside its version; without one, the release's own title.
  const commit = release.code?.commit;
  const subject = commit ? `${shortCommitSha(commit.sha)} ${commitTitle(commit)}` : (release.title ?? '');
  return [...(withId ? [release.id] : []), release.version, release.created ?? '', subject, flags.length ? `(${flags.join(', ')})` : ''].join('\t').trimEnd();
}

async function rollbackCommand(flags: Flags, pool: () => SessionPool, reporter: Reporter): Promise<number> {
  // An unset variable in a script (`--to "$VERSION"`) must not become "the default target".
  if (flags.to !== undefined && flags.to.trim() === '') throw new UsageError('--to is empty: give the version to roll back to, or leave --to out for the previous one');
  if (flags.gitops && !flags.to) throw new UsageError('rollback --gitops needs --to SHA (the full sha of the release to go back to)');
  const shaProblem = flags.gitops && flags.to !== undefined ? fullShaProblem(flags.to) : undefined;
  if (shaProblem) throw new DeployRollbackError(`--to ${shaProblem}`);
  if (flags['restore-tree'] && !flags.gitops) throw new UsageError('--restore-tree is for gitops rollbacks');
  let kamal: KamalRunOptions;
  try {
    kamal = kamalRunOptions(flags, !flags.gitops);
  } catch (error) {
    if (error instanceof KamalOptionsError) throw new UsageError(error.message);
    throw error;
  }
  const { source, app } = await openFromFlags(flags, pool, reporter, 'rollback');
  let target: Release | undefined;
  if (flags.to && source.kind === 'gitops') {
    // The gitops planner says exactly why a sha is not a target (unknown, shallow clone, not a release).
    target = { id: flags.to, app, version: flags.to, current: false, rollbackable: true };
  } else if (flags.to && source.kind === 'kamal') {
    // The planner reads every host for this version anyway (with the lock under --yes): no read before it.
    target = { id: `${app.id}@${flags.to}`, app, version: flags.to, current: false, rollbackable: true };
  } else if (flags.to) {
    const releases = await source.releases(app, { limit: 10_000 });
    target = releases.find((release) => release.id === flags.to || release.version === flags.to);
    target ??= { id: `${app.id}@${flags.to}`, app, version: flags.to, current: false, rollbackable: true };
  }
  const interrupts = new Interrupts(reporter);
  try {
    return await planAndRun(flags, source, app, target, reporter, interrupts, kamal);
  } catch (error) {
    // A cancelled gitops rollback ends in an error (nothing pushed); it still exits as interrupted.
    if (interrupts.exitCode === undefined) throw error;
    err(`deploy-rollback: ${error instanceof Error ? error.message : String(error)}\n`);
    return interrupts.exitCode;
  } finally {
    interrupts.uninstall();
  }
}

async function releaseLockCommand(flags: Flags, pool: () => SessionPool, reporter: Reporter): Promise<number> {
  if (!flags.kamal) throw new UsageError('release-lock needs --kamal CONFIG');
  const { source, app } = await openFromFlags(flags, pool, reporter, 'release-lock');
  if (!(source instanceof KamalSource)) throw new UsageError('release-lock is for Kamal configs');
  const lock = app.lock;
  if (!lock) {
    out(`There is no deploy lock for ${app.name} (${app.environment.name}): nothing to release.\n`);
    return 0;
  }
  const verdict = judgeLockRun(lock);
  if (verdict.kind !== 'nameless' && verdict.kind !== 'gone') {
    err(`The deploy lock for ${app.name} is ${describeLock(lock)}. Left alone: ${notStaleReason(verdict, lock.holder, `\`kamal lock release${flags.destination ? ` -d ${quote(flags.destination)}` : ''}\``)}.\n`);
    return 1;
  }
  if (!flags.yes) {
    if (!process.stdin.isTTY) throw new DeployRollbackError('Refusing to remove the deploy lock without --yes: stdin is not a terminal to confirm on.');
    const answer = await ask(`The deploy lock for ${app.name} (${app.environment.name}) ${staleLockQuestion(verdict)}. Remove it (only if no deploy is running)? Type "yes": `);
    if (answer.trim() !== 'yes') {
      err('Not confirmed: the lock was left as is.\n');
      return 1;
    }
  }
  const result = await source.releaseStaleLock(app);
  (result.removed ? out : err)(`${result.message}\n`);
  return result.removed ? 0 : 1;
}

// SIGQUIT (Ctrl-\) is a way out like SIGTERM: left to Node's default it would dump core and leave the lock held.
const SIGNAL_EXIT_CODES: Record<InterruptSignal, number> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129, SIGQUIT: 131 };
type InterruptSignal = 'SIGINT' | 'SIGTERM' | 'SIGHUP' | 'SIGQUIT';

const exitHandlers = new Map<InterruptSignal, () => void>();

/**
 * Until a rollback installs its own cancel, a signal exits at once with its code; exiting (unlike
 * dying of the signal) runs the exit hook that ends every git child still running.
 */
function exitOnSignals(): void {
  for (const [signal, code] of Object.entries(SIGNAL_EXIT_CODES) as Array<[InterruptSignal, number]>) {
    const handler = () => process.exit(code);
    exitHandlers.set(signal, handler);
    process.on(signal, handler);
  }
}

function stopExitingOnSignals(): void {
  for (const [signal, handler] of exitHandlers) process.removeListener(signal, handler);
  exitHandlers.clear();
}

/**
 * SIGINT, SIGTERM, SIGHUP and SIGQUIT all cancel a rollback the same way: the first one stops the step in
 * flight, puts half-done steps back, releases the lock and prints the per-host table; a second one
 * releases the lock (best effort, bounded) and exits at once.
 */
class Interrupts {
  readonly controller = new AbortController();
  received?: InterruptSignal;
  /** Set once there is a lock to give back on the emergency exit. */
  emergency?: () => Promise<string>;
  private readonly handlers = new Map<InterruptSignal, () => void>();

  constructor(private readonly reporter: Reporter) {
    stopExitingOnSignals();
    for (const signal of Object.keys(SIGNAL_EXIT_CODES) as InterruptSignal[]) {
      const handler = () => this.onSignal(signal);
      this.handlers.set(signal, handler);
      process.on(signal, handler);
    }
    // A closed terminal (SIGHUP) must not turn the remaining report into a crash on EPIPE/EIO.
    process.stdout.on('error', ignoreStreamError);
    process.stderr.on('error', ignoreStreamError);
  }

  get exitCode(): number | undefined {
    return this.received ? SIGNAL_EXIT_CODES[this.received] : undefined;
  }

  private onSignal(signal: InterruptSignal): void {
    if (!this.received) {
      this.received = signal;
      this.reporter.warn(`${signal}: cancelling… (the step in flight is stopped, half-done steps are put back and the lock released; ${signal === 'SIGINT' ? 'Ctrl-C again' : 'a second signal'} exits at once)`);
      this.controller.abort();
      return;
    }
    this.reporter.warn(`${signal} again: releasing the deploy lock (best effort) and exiting now; the hosts' state is not read back.`);
    const code = SIGNAL_EXIT_CODES[this.received];
    const unlock = this.emergency?.() ?? Promise.resolve('No deploy lock was taken.');
    void unlock.then(
      (message) => {
        err(`${message}\n`);
        process.exit(code);
      },
      () => process.exit(code),
    );
  }

  uninstall(): void {
    for (const [signal, handler] of this.handlers) process.removeListener(signal, handler);
    exitOnSignals();
  }
}

function ignoreStreamError(): void {}

async function planAndRun(flags: Flags, source: ReleaseSource, app: App, target: Release | undefined, reporter: Reporter, interrupts: Interrupts, kamal: KamalRunOptions): Promise<number> {
  let plan;
  const runsAtOnce = flags.yes === true && flags['dry-run'] !== true;
  try {
    const envFiles = source.kind === 'kamal' ? { allowCommands: () => flags['secret-commands'] === true, write: flags['write-env-files'] === true } : undefined;
    const planning = source.planRollback(app, target, interrupts.controller.signal, { restoreTree: flags['restore-tree'] === true, runsAtOnce, dryRun: flags['dry-run'] === true, kamal, ...(envFiles ? { envFiles } : {}) });
    const releaseLockNow = source.releaseLockNow?.bind(source);
    if (runsAtOnce && releaseLockNow) {
      // The pre-flight may take the lock: a second signal waits (bounded) for the plan's own release, or releases it.
      interrupts.emergency = async () => {
        let timer: NodeJS.Timeout | undefined;
        const bound = new Promise<undefined>((resolve) => (timer = setTimeout(resolve, 5000, undefined)));
        try {
          const planned = await Promise.race([planning, bound]);
          return planned ? await releaseLockNow(planned, 5000) : 'The checks did not end within 5 s: `kamal lock status` tells whether they left the deploy lock taken.';
        } catch {
          return 'Stopped while checking the hosts: a deploy lock taken with the checks was released if it named this run.';
        } finally {
          clearTimeout(timer);
        }
      };
    }
    plan = await planning;
  } catch (error) {
    if (interrupts.exitCode === undefined) throw error;
    err(`Interrupted (${interrupts.received}) while checking the hosts: nothing was changed.\n`);
    return interrupts.exitCode;
  }
  if (interrupts.exitCode !== undefined) {
    // A lock taken with the pre-flight goes back (only if it names this run).
    if (runsAtOnce && source.releaseLockNow) err(`${await source.releaseLockNow(plan, 5000)}\n`);
    err(`Interrupted (${interrupts.received}): nothing was changed.\n`);
    return interrupts.exitCode;
  }
  const verb = plan.direction === 'forward' ? 'Roll forward' : 'Roll back';
  // With --json stdout carries one JSON object only; the plan's text goes to stderr.
  const show = flags.json ? err : out;
  const codeLine = plan.codeChange ? `${codeChangeSummary(plan.codeChange).replace(/^t/, 'T')}.\n` : '';
  show(`${verb} ${plan.app} in ${plan.environment} from ${plan.from} to ${plan.to}\n${plan.summary}\n${codeLine}\n${plan.lines.join('\n')}\n`);
  if (flags['dry-run']) {
    // Interrupted, the preview stops too, so its throw-away worktree is removed before exiting.
    const extra = (await source.previewRollback?.(plan, interrupts.controller.signal)) ?? [];
    if (extra.length) show(`\n${extra.join('\n')}\n`);
    show('\nDry run: nothing was changed.\n');
    if (flags.json) out(`${JSON.stringify({ dryRun: true, plan: planJson(plan, extra) }, null, 2)}\n`);
    return interrupts.exitCode ?? 0;
  }
  if (!flags.yes) {
    if (!process.stdin.isTTY) throw new DeployRollbackError('Refusing to roll back without --yes: stdin is not a terminal to confirm on.');
    const answer = await ask(`\n${verb} ${plan.app} (${plan.environment}) to ${plan.to}? Type "yes": `);
    if (answer.trim() !== 'yes') {
      err('Not confirmed: nothing was changed.\n');
      return 1;
    }
    const envFiles = kamalEnvFiles(plan);
    if (envFiles && !envFiles.write && envFiles.differences.length > 0) {
      const write = await ask(`Write the differing env files as Kamal's rollback does (${envFiles.differences.map((entry) => `${entry.host} (${entry.role})`).join(', ')})? Type "write", or anything else to keep them: `);
      if (write.trim() === 'write') agreeToWriteEnvFiles(plan as RollbackPlan<KamalPlanDetail>);
    }
  }
  const runningPlan = plan;
  if (source.releaseLockNow) interrupts.emergency = () => source.releaseLockNow!(runningPlan, 5000);
  const outcome: RollbackOutcome = await source.executeRollback(plan, reporter, interrupts.controller.signal);
  for (const line of outcome.lines) show(`${line}\n`);
  (outcome.ok ? show : err)(`${outcome.message}\n`);
  if (flags.json) out(`${JSON.stringify({ dryRun: false, plan: planJson(plan, []), outcome: { ok: outcome.ok, message: outcome.message, lines: outcome.lines } }, null, 2)}\n`);
  if (outcome.ok) return 0;
  const rollForward = (outcome as RollbackOutcome & { rollForward?: RollbackPlan }).rollForward;
  if (rollForward && flags.kamal) {
    // Hosts differ: both ways back to one version everywhere, as commands to paste.
    const scope = [flags.roles !== undefined && `-r ${quote(flags.roles)}`, flags.hosts !== undefined && `-h ${quote(flags.hosts)}`, flags.primary && '-p', flags['skip-hooks'] && '-H'].filter(Boolean).join(' ');
    const base = `deploy-rollback rollback --kamal ${quote(flags.kamal)}${flags.destination ? ` --destination ${quote(flags.destination)}` : ''}${scope ? ` ${scope}` : ''}`;
    err(`To finish on ${plan.to} everywhere: ${base} --to ${quote(plan.to)}\nTo put every host back on ${rollForward.to}: ${base} --to ${quote(rollForward.to)}\n`);
  }
  return interrupts.exitCode ?? 1;
}

/** `rollback --json`: the plan as the dry run prints it, its code change with every listed commit. */
function planJson(plan: RollbackPlan, preview: string[]): Record<string, unknown> {
  const commitJson = (commit: SourceCommit) => ({
    sha: commit.sha,
    subject: commit.subject,
    title: commitTitle(commit),
    author: commit.authorName,
    date: commit.authorDate,
    ...(commit.pullRequest ? { pullRequest: commit.pullRequest } : {}),
  });
  const change = plan.codeChange;
  return {
    source: plan.source,
    environment: plan.environment,
    app: plan.app,
    from: plan.from,
    to: plan.to,
    direction: plan.direction ?? 'back',
    summary: plan.summary,
    lines: plan.lines,
    preview,
    codeChange: change
      ? {
          direction: change.direction,
          repository: change.repository,
          fromSha: change.fromSha,
          toSha: change.toSha,
          total: change.total,
          commits: change.commits.map(commitJson),
          ...(change.diverged ? { diverged: { total: change.diverged.total, commits: change.diverged.commits.map(commitJson) } } : {}),
          ...(change.shallowCut ? { shallowCut: change.shallowCut } : {}),
        }
      : null,
    codeChangeUnknown: plan.codeChangeUnknown ?? null,
    scope: scopeJson(plan),
    ...envFilesJson(plan),
  };
}

/** Kamal: which hosts and roles the run touches and which it leaves as they are (null for gitops). */
function scopeJson(plan: RollbackPlan): Record<string, unknown> | null {
  if (plan.source !== 'kamal') return null;
  const detail = (plan as RollbackPlan<KamalPlanDetail>).detail;
  const scope = detail.scope;
  return {
    narrowed: scope?.narrowed ?? false,
    hosts: scope?.hosts ?? detail.hosts,
    roles: scope?.roles ?? detail.roles,
    primaryHost: detail.primaryHost,
    leftHosts: scope?.leftHosts ?? [],
    leftRoles: scope?.leftRoles ?? [],
    left: scope?.left ?? [],
    hooksSkipped: detail.hooksSkipped === true,
  };
}

function kamalEnvFiles(plan: RollbackPlan): KamalPlanDetail['envFiles'] {
  return plan.source === 'kamal' ? (plan as RollbackPlan<KamalPlanDetail>).detail.envFiles : undefined;
}

/** Kamal: which env file keys differ from what Kamal would write, never a value. */
function envFilesJson(plan: RollbackPlan): Record<string, unknown> {
  const env = kamalEnvFiles(plan);
  if (!env) return {};
  return {
    envFiles: {
      secretsFiles: env.secretsFiles,
      differences: env.differences.map((entry) => ({ host: entry.host, role: entry.role, path: entry.path, keys: entry.keys, writable: entry.content !== undefined })),
      notCompared: env.notCompared,
      write: env.write,
    },
  };
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Interrupted: connections still being opened must not keep the process for their timeout.
    if (code >= 128) process.exit(code);
  },
  (error: unknown) => {
    if (error instanceof UsageError) {
      err(`deploy-rollback: ${error.message}\nRun deploy-rollback --help for usage.\n`);
      process.exitCode = 2;
      return;
    }
    err(`deploy-rollback: ${error instanceof Error ? error.message : String(error)}\n`);
    if (process.env.DEPLOY_ROLLBACK_DEBUG && error instanceof Error) err(`${error.stack}\n`);
    process.exitCode = 1;
  },
);
