/**
 * Starts test hosts for demos and manual use, prints them as JSON and keeps them up until
 * Ctrl-C (or SIGTERM), then tears them down.
 *
 *   npx tsx test/hosts/cli.ts start --count 3 [--jump-only 1] [--state-file F]
 *       [--seed SERVICE --versions v1,v2,v3 --running v2 [--destination D] [--missing host2:v1]]
 *   npx tsx test/hosts/cli.ts cleanup      # removes leftovers of crashed runs
 */
import { writeFileSync } from 'node:fs';
import { AppImageSpec, cleanupLeftovers, startHosts } from './harness';

interface CliOptions {
  count: number;
  jumpOnly: number;
  stateFile?: string;
  seed?: string;
  versions: string[];
  running?: string;
  destination?: string;
  missing: Record<string, string[]>;
  unhealthy: string[];
}

const USAGE =
  'usage: cli.ts start --count N [--jump-only M] [--state-file FILE] [--seed SERVICE --versions v1,v2 --running v2 ' +
  '[--destination D] [--missing host2:v1,host1:v2] [--unhealthy v3]] | cli.ts cleanup';

function parse(args: string[]): CliOptions {
  const options: CliOptions = { count: 1, jumpOnly: 0, versions: ['v1', 'v2', 'v3'], missing: {}, unhealthy: [] };
  for (let index = 0; index < args.length; index++) {
    const flag = args[index];
    const value = args[index + 1];
    if (value === undefined) throw new Error(`${flag} needs a value\n${USAGE}`);
    index++;
    switch (flag) {
      case '--count':
        options.count = Number(value);
        break;
      case '--jump-only':
        options.jumpOnly = Number(value);
        break;
      case '--state-file':
        options.stateFile = value;
        break;
      case '--seed':
        options.seed = value;
        break;
      case '--versions':
        options.versions = value.split(',').filter(Boolean);
        break;
      case '--running':
        options.running = value;
        break;
      case '--destination':
        options.destination = value;
        break;
      case '--unhealthy':
        options.unhealthy = value.split(',').filter(Boolean);
        break;
      case '--missing':
        for (const pair of value.split(',')) {
          const [host, version] = pair.split(':');
          if (!host || !version) throw new Error(`--missing takes host:version pairs, got "${pair}"`);
          (options.missing[host] ??= []).push(version);
        }
        break;
      default:
        throw new Error(`unknown option ${flag}\n${USAGE}`);
    }
  }
  return options;
}

async function start(options: CliOptions): Promise<void> {
  const images: AppImageSpec[] = options.versions.map((version) => ({ version, unhealthy: options.unhealthy.includes(version) }));
  const started = Date.now();
  const testHosts = await startHosts({ count: options.count, jumpOnly: options.jumpOnly, images, service: options.seed });
  const seconds = (Date.now() - started) / 1000;
  if (options.seed) {
    await testHosts.seedKamalState({
      service: options.seed,
      destination: options.destination,
      versions: options.versions,
      running: options.running ?? options.versions[options.versions.length - 1] ?? 'v1',
      missing: options.missing,
    });
  }
  const summary = {
    runId: testHosts.runId,
    runDir: testHosts.runDir,
    startSeconds: seconds,
    pid: process.pid,
    repository: testHosts.repository,
    clientKeyPath: testHosts.clientKeyPath,
    clientPublicKey: testHosts.clientPublicKey,
    knownHostsPath: testHosts.knownHostsPath,
    sshConfigPath: testHosts.sshConfigPath,
    hosts: testHosts.hosts,
  };
  const json = JSON.stringify(summary, null, 2);
  if (options.stateFile) writeFileSync(options.stateFile, `${json}\n`);
  process.stdout.write(`${json}\n`);
  process.stderr.write(`test hosts up; try: ssh -F ${testHosts.sshConfigPath} host0 docker ps   (Ctrl-C stops them)\n`);
  // The harness's SIGINT/SIGTERM handlers tear the hosts down and exit; this keeps us alive until then.
  setInterval(() => undefined, 60_000);
}

async function main(): Promise<void> {
  const [command, ...rest] = process.argv.slice(2);
  if (command === 'start') return start(parse(rest));
  if (command === 'cleanup') {
    const problems = cleanupLeftovers();
    if (problems.length > 0) throw new Error(problems.join('\n'));
    process.stdout.write('no leftovers of crashed runs remain\n');
    return;
  }
  throw new Error(USAGE);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
