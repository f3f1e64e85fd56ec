/**
 * Builders for Kamal rollback tests: a config, and fake hosts that record every command line and
 * answer like a small Docker + kamal-proxy would, so plans and runs can be checked end to end.
 */
import type { Reporter } from '../../../src/core/model';
import type { ExecOptions, ExecResult, HostSession } from '../../../src/core/ssh/types';
import type { SftpChannel } from '../../../src/core/ssh/sftp';
import { emptyConfig } from '../../../src/core/kamal/config/read';
import { lineHash, textDigest } from '../../../src/core/kamal/commands/env-file';
import type { KamalConfig, KamalProxy, KamalRole } from '../../../src/core/kamal/config/types';
import type { KamalInventory } from '../../../src/core/kamal/hosts/inventory';

export function proxyConfig(overrides: Partial<KamalProxy> = {}): KamalProxy {
  return {
    hosts: [],
    appPort: 80,
    ssl: false,
    healthcheck: { path: '/up', interval: 1, timeout: 5 },
    bufferRequests: true,
    bufferResponses: true,
    requestHeaders: [],
    responseHeaders: [],
    ...overrides,
  };
}

export function role(name: string, hosts: string[], overrides: Partial<KamalRole> = {}): KamalRole {
  return {
    name,
    hosts,
    hostTags: {},
    primary: name === 'web',
    options: {},
    labels: {},
    env: { clear: {}, secret: [] },
    proxy: name === 'web' ? proxyConfig() : undefined,
    ...overrides,
  };
}

export function kamalConfig(overrides: Partial<KamalConfig> = {}): KamalConfig {
  const roles = overrides.roles ?? [role('web', ['web-1'])];
  return {
    ...emptyConfig('/nonexistent/project/config/deploy.yml'),
    service: 'chat',
    image: 'bars/app',
    registryServer: 'localhost:5555',
    repository: 'localhost:5555/bars/app',
    roles,
    hosts: [...new Set(roles.flatMap((entry) => entry.hosts))],
    ssh: { user: 'root', port: 22, keys: [], keysOnly: false, config: false, forwardAgent: false, keepaliveInterval: 30 },
    readinessDelay: 0,
    deployTimeout: 10,
    ...overrides,
  };
}

export interface FakeContainer {
  id: string;
  name: string;
  state: 'running' | 'exited' | 'created';
  /** Seconds since the epoch. */
  created: number;
  image: string;
}

let nextId = 1;
function containerId(): string {
  const hex = (nextId++).toString(16).padStart(12, '0');
  return `${hex}${'ab'.repeat(26)}`;
}

/** One host's Docker state, lock directory, env files and audit log, driven by command lines. */
export class FakeHost implements HostSession {
  readonly commands: string[] = [];
  containers: FakeContainer[] = [];
  lock?: string;
  envFiles = new Set<string>();
  /** Role → the env file's text (a role in envFiles without one holds Kamal's empty file, "\n"). */
  envContents = new Map<string, string>();
  /** Every exchange as sent (a fused one whole); `commands` has its steps. */
  exchanges: string[] = [];
  audit: string[] = [];
  tags: string[] = [];
  proxyTargets = new Map<string, string>();
  /** Plain files on the host (the custom TLS files a deploy leaves). */
  files = new Set<string>();
  /** Asset and error page commands, in order. */
  folderCommands: string[] = [];
  /** What arrived over SFTP: folders made and files written, in order. */
  uploads: { path: string; mode: number; content?: string; chmod?: true }[] = [];

  sftp(): Promise<SftpChannel> {
    const uploads = this.uploads;
    return Promise.resolve({
      mkdir: (path, attributes, callback) => {
        uploads.push({ path, mode: attributes.mode });
        callback(null);
      },
      writeFile: (path, data, options, callback) => {
        uploads.push({ path, mode: options.mode, content: data.toString('utf8') });
        callback(null);
      },
      chmod: (path, mode, callback) => {
        uploads.push({ path, mode, chmod: true });
        callback(null);
      },
      end: () => undefined,
    });
  }
  /** Versions whose new containers never become healthy. */
  unhealthy = new Set<string>();
  /** Image tags removed (docker rmi) while their containers stay. */
  deletedImages = new Set<string>();
  /** Set to make every later command fail as if the link dropped. */
  down = false;
  /** Called before each command: lets a test drop the link at a chosen point. */
  beforeExec?: (command: string, host: FakeHost) => void;
  private clock = 1_700_000_000;

  constructor(readonly host: string, private readonly service = 'chat') {}

  /** Containers for versions (oldest first); `running` names the one serving, others are exited. */
  seed(roleName: string, versions: string[], running: string | undefined, options: { destination?: string } = {}): this {
    const prefix = [this.service, roleName, options.destination].filter(Boolean).join('-');
    for (const version of versions) {
      const id = containerId();
      this.containers.push({ id, name: `${prefix}-${version}`, state: version === running ? 'running' : 'exited', created: this.clock++, image: `localhost:5555/bars/app:${version}` });
      if (version === running) this.proxyTargets.set(prefix, id.slice(0, 12));
    }
    this.envFiles.add(roleName);
    return this;
  }

  running(): string[] {
    return this.containers.filter((container) => container.state === 'running').map((container) => container.name);
  }

  async exec(command: string, options?: ExecOptions): Promise<ExecResult> {
    this.exchanges.push(command);
    // The executor's fused exchanges: each step is recorded, and can be interrupted, on its own.
    if (command.includes('@@deploy-rollback') && !command.includes("'@@deploy-rollback list ")) return this.fused(command, options);
    this.commands.push(command);
    this.beforeExec?.(command, this);
    if (this.down) throw new Error(`connect ECONNREFUSED ${this.host}:22`);
    // As the pool does: a cancelled run's command never starts (or its channel is closed).
    if (options?.signal?.aborted) throw Object.assign(new Error('Cancelled'), { name: 'AbortError' });
    if (command.includes('@@deploy-rollback')) return this.preflight(command);
    if (command.includes('@@dr-readback')) return this.readBack(command);
    return this.run(command);
  }

  /**
   * `echo 'M a'; A; echo "M rc $?"` sections, and chains `echo 'M a'; A && echo "M rc 0" && echo
   * 'M b' && B; echo "M rc $?"` where a failing step skips the rest of its chain.
   */
  private fused(script: string, options?: ExecOptions): ExecResult {
    const RC_ANY = '; echo "@@deploy-rollback rc $?"';
    const RC_0 = ' && echo "@@deploy-rollback rc 0" && ';
    let stdout = '';
    let stderr = '';
    let pos = 0;
    while (pos < script.length) {
      if (script.startsWith('; ', pos)) pos += 2;
      const head = /^echo '(@@deploy-rollback [^']*)'(?:; | && )/.exec(script.slice(pos));
      if (!head) break;
      stdout += `${head[1]}\n`;
      pos += head[0].length;
      const endAny = script.indexOf(RC_ANY, pos);
      const end0 = script.indexOf(RC_0, pos);
      const chained = end0 !== -1 && (endAny === -1 || end0 < endAny);
      const end = chained ? end0 : endAny;
      const step = script.slice(pos, end === -1 ? undefined : end);
      this.commands.push(step);
      this.beforeExec?.(step, this);
      if (this.down) throw new Error(`connect ECONNREFUSED ${this.host}:22`);
      if (options?.signal?.aborted) throw Object.assign(new Error('Cancelled'), { name: 'AbortError' });
      const result = this.run(step);
      stdout += result.stdout;
      stderr += result.stderr;
      if (chained && result.code === 0) {
        stdout += '@@deploy-rollback rc 0\n';
        pos = end + RC_0.length;
        continue;
      }
      stdout += `@@deploy-rollback rc ${result.code}\n`;
      const last = chained ? script.indexOf(RC_ANY, end) : end;
      pos = last === -1 ? script.length : last + RC_ANY.length;
    }
    return { code: 0, stdout, stderr };
  }

  /** The executor's read-back after a failure or cancel: sections of containers and kamal-proxy's list. */
  private readBack(script: string): ExecResult {
    let stdout = '';
    for (const chunk of script.split('echo "@@dr-readback-rc $?"')) {
      const match = /echo (@@dr-readback-\S+); (.*?);?$/s.exec(chunk.trim().replace(/^;\s*/, ''));
      if (!match) continue;
      const result = this.run(match[2]);
      stdout += `${match[1]}\n${result.stdout}@@dr-readback-rc ${result.code}\n`;
    }
    return this.ok(stdout);
  }

  private ok(stdout = ''): ExecResult {
    return { code: 0, stdout, stderr: '' };
  }

  private fail(stderr: string, code = 1): ExecResult {
    return { code, stdout: '', stderr };
  }

  private preflight(script: string): ExecResult {
    let stdout = '';
    const chunks = script.split('echo "@@deploy-rollback rc $?"');
    chunks.forEach((chunk, index) => {
      const match = /echo '@@deploy-rollback ([a-z]+(?: [A-Za-z0-9_-]+)?)'; (.*?);?$/s.exec(chunk.trim());
      if (!match) return;
      stdout += `@@deploy-rollback ${match[1]}\n`;
      const result = this.run(match[2]);
      stdout += result.stdout;
      // As the shell does: the status line follows the output where it stopped (no newline after a lock's message).
      if (index < chunks.length - 1) stdout += `@@deploy-rollback rc ${result.code}\n`;
      else if (match[1] !== 'lock') stdout += `@@deploy-rollback rc ${result.code}\n`;
    });
    return this.ok(stdout);
  }

  private byName(name: string): FakeContainer | undefined {
    return this.containers.find((container) => container.name === name);
  }

  /** A `&&` list: each part (or known two-part form) in turn, stopping at the first failure. */
  private run(command: string): ExecResult {
    // A fused exchange is always taken part by part (a leading command's pattern could swallow it whole).
    const whole = command.includes('@@deploy-rollback') ? { code: 127, stdout: '', stderr: '' } : this.runOne(command);
    const parts = splitAndList(command);
    if (whole.code !== 127 || parts.length === 1) return whole;
    let stdout = '';
    for (let index = 0; index < parts.length; ) {
      let result: ExecResult | undefined;
      if (index + 1 < parts.length) {
        const pair = this.runOne(`${parts[index]} && ${parts[index + 1]}`);
        if (pair.code !== 127) {
          result = pair;
          index += 2;
        }
      }
      if (!result) {
        result = this.runOne(parts[index]);
        index += 1;
      }
      stdout += result.stdout;
      if (result.code !== 0) return { ...result, stdout };
    }
    return this.ok(stdout);
  }

  private runOne(command: string): ExecResult {
    let match: RegExpExecArray | null;
    if (command === 'mkdir -p .kamal') return this.ok();
    // The executor's fused exchanges: marker lines between the steps.
    if ((match = /^echo (?:'(@@deploy-rollback [^']*)'|"(@@deploy-rollback rc 0)")$/.exec(command))) return this.ok(`${match[1] ?? match[2]}\n`);
    if ((match = /^mkdir -p \.kamal && echo '(.*)' >> (\.kamal\/\S+-audit\.log)$/s.exec(command))) {
      this.audit.push(match[1]);
      return this.ok();
    }
    if ((match = /^mkdir (\.kamal\/lock-\S+) && \{ echo '([A-Za-z0-9+/=\n]+)' > \S+\/details \|\| \{ rm -rf \S+; false; \}; \}$/s.exec(command))) {
      if (this.lock !== undefined) return this.fail(`mkdir: cannot create directory '${match[1]}': File exists`);
      this.lock = Buffer.from(match[2].replace(/\n/g, ''), 'base64').toString('utf8');
      return this.ok();
    }
    if ((match = /^if cat \S+ \| base64 -d 2>\/dev\/null \| grep -qF -e '([^']*)'(?: && cat \S+ \| base64 -d 2>\/dev\/null \| grep -qF -e '([^']*)')?; then (.*); fi$/s.exec(command))) {
      return this.lock !== undefined && this.lock.includes(match[1]) && this.lock.includes(match[2] ?? '') ? this.run(match[3]) : this.ok();
    }
    if ((match = /^echo '([A-Za-z0-9+/=\n]+)' > \.kamal\/lock-\S+\/details$/s.exec(command))) {
      if (this.lock === undefined) return this.fail('sh: cannot create .kamal/lock-chat/details: Directory nonexistent');
      this.lock = Buffer.from(match[1].replace(/\n/g, ''), 'base64').toString('utf8');
      return this.ok();
    }
    if (/^test -d \.kamal\/lock-\S+ && echo present \|\| true$/.test(command)) return this.ok(this.lock !== undefined ? 'present\n' : '');
    if (/^stat \.kamal\/lock-\S+ > \/dev\/null && cat \S+ \| base64 -d \| base64$/.test(command)) {
      // Encoded again as coreutils' base64 does: 76 columns, a final newline.
      const encoded = Buffer.from(this.lock ?? '', 'utf8').toString('base64').replace(/.{76}/g, '$&\n');
      return this.lock !== undefined ? this.ok(`${encoded}\n`) : this.fail("stat: cannot statx '.kamal/lock-chat': No such file or directory");
    }
    if (/^stat \.kamal\/lock-\S+ > \/dev\/null && cat \S+ \| base64 -d$/.test(command)) {
      // `base64 -d` prints the details as written: no newline after the message.
      return this.lock !== undefined ? this.ok(this.lock) : this.fail("stat: cannot statx '.kamal/lock-chat': No such file or directory");
    }
    if (/^rm \.kamal\/lock-\S+\/details && rm -r \.kamal\/lock-\S+$/.test(command)) {
      if (this.lock === undefined) return this.fail('rm: cannot remove: No such file or directory');
      this.lock = undefined;
      return this.ok();
    }
    if ((match = /^if test -f \.kamal\/apps\/\S+\/env\/roles\/(\S+)\.env; then echo yes; while .* printf '%s\\n%s' ([0-9a-f]+) "\$l" \| sha256sum \| cut -c1-64; done < \S+; else echo no; fi$/s.exec(command))) {
      if (!this.envFiles.has(match[1])) return this.ok('no\n');
      const nonce = match[2];
      const lines = (this.envContents.get(match[1]) ?? '\n').split('\n').filter((line) => line !== '' && !line.startsWith('#'));
      return this.ok(`yes\n${lines.map((line) => `${line.split('=')[0]}\t${lineHash(nonce, line)}\n`).join('')}`);
    }
    if ((match = /^if test -f \.kamal\/apps\/\S+\/env\/roles\/(\S+)\.env; then \{ printf '%s\\n' ([^\s;]+); cat \S+; \} \| sha256sum \| cut -c1-64; else echo no; fi$/.exec(command))) {
      const content = this.envContents.get(match[1]) ?? '\n';
      return this.ok(this.envFiles.has(match[1]) ? `${textDigest(match[2], content)}\n` : 'no\n');
    }
    if ((match = /^test -f \.kamal\/apps\/\S+\/env\/roles\/(\S+)\.env && echo yes \|\| echo no$/.exec(command))) {
      return this.ok(this.envFiles.has(match[1]) ? 'yes\n' : 'no\n');
    }
    if ((match = /^docker container ls --all --filter label=service=(\S+) --filter label=destination=(\S*) --filter label=role=(\S+) --format /.exec(command))) {
      const prefix = [match[1], match[3], match[2]].filter(Boolean).join('-') + '-';
      // Newest first, as docker lists them.
      const lines = this.containers
        .map((container, index) => ({ container, index }))
        .filter(({ container }) => container.name.startsWith(prefix))
        .sort((a, b) => b.container.created - a.container.created || b.index - a.index)
        .map(({ container }) => container)
        .map((container) => `${container.id.slice(0, 12)}\t${container.name}\t${container.state}\t${new Date(container.created * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' +0000 UTC')}`);
      return this.ok(lines.map((line) => `${line}\n`).join(''));
    }
    if ((match = /^docker container ls --all --filter 'name=\^(.+)\$' --quiet(?: \| (.*))?$/s.exec(command))) {
      const container = this.byName(match[1]);
      const rest = match[2];
      if (rest === undefined) return this.ok(container ? `${container.id.slice(0, 12)}\n` : '');
      if (!container) return rest.startsWith('xargs docker stop') || rest.startsWith('xargs docker logs') ? this.fail('"docker stop" requires at least 1 argument.') : this.fail('"docker inspect" requires at least 1 argument.');
      if (rest.startsWith('xargs docker stop')) {
        container.state = 'exited';
        for (const [service, target] of this.proxyTargets) if (container.id.startsWith(target)) this.proxyTargets.delete(service);
        return this.ok(`${container.id.slice(0, 12)}\n`);
      }
      if (rest.startsWith('xargs docker inspect')) {
        if (container.state !== 'running') return this.ok('exited\n');
        return this.ok(this.unhealthy.has(container.image.split(':').pop() ?? '') ? 'unhealthy\n' : 'healthy\n');
      }
      if (rest.startsWith('xargs docker logs --timestamps --tail 50')) return this.ok(`2026-11-23T00:00:00Z ${container.name} booting\n2026-11-23T00:00:01Z health check failed\n`);
    }
    // Kamal's current version (sh -c …| head -1) and its first half (the latest image's active container): the newest running.
    if ((match = /^sh -c .*label=role=([A-Za-z0-9_-]+) .*\| head -1$/s.exec(command)) || (match = /^docker ps --latest --format '\{\{\.Names\}\}' .*label=role=([A-Za-z0-9_-]+) .*--filter ancestor=\$\(docker image ls --filter reference=\S+ --format '\{\{\.ID\}\}'\)$/s.exec(command))) {
      const running = this.containers.filter((container) => container.state === 'running' && new RegExp(`^${this.service}-${match?.[1]}-`).test(container.name));
      running.sort((a, b) => b.created - a.created);
      return this.ok(running[0] ? `${running[0].name}\n` : '');
    }
    if ((match = /^docker rename (\S+) (\S+)$/.exec(command))) {
      const container = this.byName(match[1]);
      if (!container) return this.fail(`Error: No such container: ${match[1]}`);
      container.name = match[2];
      return this.ok();
    }
    if ((match = /^docker run --detach .* --name (\S+) .* (localhost:5555\/bars\/app:(\S+))(?: .*)?$/s.exec(command))) {
      if (this.byName(match[1])) return this.fail(`docker: Error response from daemon: Conflict. The container name "/${match[1]}" is already in use.`, 125);
      const container: FakeContainer = { id: containerId(), name: match[1], state: 'running', created: this.clock++, image: match[2] };
      this.containers.push(container);
      return this.ok(`${container.id}\n`);
    }
    if ((match = /^docker exec kamal-proxy kamal-proxy deploy (\S+) --target="?([0-9a-f]{12}):(\d+)/.exec(command))) {
      const target = match[2];
      const container = this.containers.find((candidate) => candidate.id.startsWith(target));
      if (!container || container.state !== 'running' || this.unhealthy.has(container.image.split(':').pop() ?? '')) {
        return this.fail(`Error: target failed to become healthy within configured timeout`);
      }
      this.proxyTargets.set(match[1], target);
      return this.ok();
    }
    if (/^test -f \S+ \|\| echo \S+( ; test -f \S+ \|\| echo \S+)*$/.test(command)) {
      const missing = [...command.matchAll(/test -f (\S+) \|\|/g)].map((found) => found[1]).filter((file) => !this.files.has(file));
      return this.ok(missing.map((file) => `${file}\n`).join(''));
    }
    // Asset and error page folders: recorded, always fine.
    if (/^(mkdir -p \.kamal\/(apps|proxy)\/\S+|docker container (rm|create|cp) .*|find \.kamal\/.*|mkdir -p \.kamal\/apps\/\S+\/assets\/volumes\/.* ; cp -rnT .*)$/s.test(command)) {
      this.folderCommands.push(command);
      return this.ok();
    }
    if ((match = /^docker image ls --format '\{\{\.Tag\}\}' (\S+)$/.exec(command))) {
      const repository = match[1];
      const tags = new Set(this.containers.map((container) => container.image).filter((image) => image.startsWith(`${repository}:`) && !this.deletedImages.has(image)).map((image) => image.slice(repository.length + 1)));
      return this.ok([...tags].map((tag) => `${tag}\n`).join(''));
    }
    if (command === 'docker exec kamal-proxy kamal-proxy list') {
      // As kamal-proxy v0.9 prints it: every cell styled with ANSI escapes, padded, two spaces apart.
      const cell = (text: string, style = '') => `\x1b[${style}m${text}\x1b[0m  `;
      const header = ['Service', 'Host', 'Path', 'Target', 'State', 'TLS'].map((text) => cell(text, '3;94')).join('');
      const rows = [...this.proxyTargets].sort().map(([service, target]) => cell(service, '1;34') + cell('') + cell('/') + cell(`${target}:80`) + cell('running') + cell('no'));
      return this.ok([header, ...rows].join('\n') + '\n');
    }
    if ((match = /^if docker container inspect (\S+) > \/dev\/null 2>&1; then docker rm -f (\S+) > \/dev\/null 2>&1; docker rename \S+ \S+; fi$/.exec(command))) {
      const renamed = this.byName(match[1]);
      if (!renamed) return this.ok();
      this.containers = this.containers.filter((container) => container.name !== match?.[2]);
      renamed.name = match[2];
      return this.ok();
    }
    if ((match = /^docker ps --quiet --filter label=service=\S+ --filter label=destination=\S* --filter label=role=(\S+) --filter status=running \| \{ grep -vxF -e "\$\(docker container ls --all --quiet --filter 'name=\^(\S+)\$'\)" \|\| true; \} \| xargs -r docker stop/.exec(command))) {
      const prefix = `${this.service}-${match[1]}-`;
      for (const container of this.containers) if (container.name.startsWith(prefix) && container.name !== match[2] && container.state === 'running') container.state = 'exited';
      return this.ok();
    }
    if ((match = /^docker tag (\S+) (\S+)$/.exec(command))) {
      this.tags.push(`${match[1]} -> ${match[2]}`);
      return this.ok();
    }
    return this.fail(`fake host ${this.host}: unexpected command: ${command}`, 127);
  }
}

/** Splits `a && b && c` outside single quotes (our quoting never uses double quotes). */
function splitAndList(command: string): string[] {
  const parts: string[] = [];
  let inQuote = false;
  let start = 0;
  for (let index = 0; index < command.length; index++) {
    const char = command[index];
    if (char === "'") inQuote = !inQuote;
    else if (!inQuote && char === '\\') index++;
    else if (!inQuote && command.startsWith(' && ', index)) {
      parts.push(command.slice(start, index));
      start = index + 4;
      index += 3;
    }
  }
  parts.push(command.slice(start));
  return parts;
}

export class FakeHosts {
  readonly hosts = new Map<string, FakeHost>();
  unreachable = new Set<string>();

  constructor(names: string[]) {
    for (const name of names) this.hosts.set(name, new FakeHost(name));
  }

  get(name: string): FakeHost {
    const host = this.hosts.get(name);
    if (!host) throw new Error(`no fake host ${name}`);
    return host;
  }

  sessions = async (name: string): Promise<HostSession> => {
    if (this.unreachable.has(name)) throw new Error(`connect ETIMEDOUT ${name}:22`);
    return this.get(name);
  };

  allCommands(): string[] {
    return [...this.hosts.values()].flatMap((host) => host.commands);
  }
}

export class RecordingReporter implements Reporter {
  readonly entries: { level: string; message: string }[] = [];
  /** Every Reporter.progress call, as `done/total`. */
  readonly progressed: string[] = [];
  progress(done: number, total: number): void {
    this.progressed.push(`${done}/${total}`);
  }
  step(message: string): void {
    this.entries.push({ level: 'step', message });
  }
  info(message: string): void {
    this.entries.push({ level: 'info', message });
  }
  debug(message: string): void {
    this.entries.push({ level: 'debug', message });
  }
  warn(message: string): void {
    this.entries.push({ level: 'warn', message });
  }
  error(message: string): void {
    this.entries.push({ level: 'error', message });
  }
  text(level?: string): string {
    return this.entries.filter((entry) => level === undefined || entry.level === level).map((entry) => entry.message).join('\n');
  }
}

/** What the tree's inventory would have read from the fakes just now (one `web` role a host). */
export function recentRead(config: KamalConfig, fakes: FakeHosts): KamalInventory {
  return {
    service: config.service,
    primaryHost: 'web-1',
    primaryRole: 'web',
    readAt: new Date().toISOString(),
    hosts: [...fakes.hosts.values()].map((host) => {
      const listed = [...host.containers].reverse();
      return {
        host: host.host,
        roles: ['web'],
        containers: listed.map((container, order) => ({
          id: container.id,
          host: host.host,
          role: 'web',
          name: container.name,
          state: container.state === 'running' ? ('running' as const) : ('exited' as const),
          status: container.state,
          image: container.image,
          created: new Date(container.created * 1000).toISOString(),
          version: container.name.replace('chat-web-', ''),
          replaced: container.name.includes('_replaced_'),
          order,
        })),
        currentVersions: Object.fromEntries(host.running().map((name) => ['web', name.replace('chat-web-', '')])),
      };
    }),
  };
}
