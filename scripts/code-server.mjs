// Installs, caches and launches code-server 4.100.3 (a full VS Code 1.100.3 with a Node
// extension host) from npm, because @vscode/test-electron cannot download VS Code offline.
// Plain Node ESM so .ci/run, the demo and the test runners can use it without a build.
//
//   node scripts/code-server.mjs install
//   node scripts/code-server.mjs install-extension <file.vsix> <extensions-dir>
//   node scripts/code-server.mjs start [--folder DIR] [--port N] [--disable-workspace-trust]
/* global fetch */
import { spawn, execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, copyFileSync, mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const CODE_SERVER_VERSION = '4.100.3';
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// DEPLOY_ROLLBACK_CODE_SERVER_DIR moves the cache, e.g. to a CI cache volume.
export const codeServerDir = process.env.DEPLOY_ROLLBACK_CODE_SERVER_DIR
  ? path.resolve(process.env.DEPLOY_ROLLBACK_CODE_SERVER_DIR)
  : path.join(repoRoot, '.vscode-test', `code-server-${CODE_SERVER_VERSION}`);
export const codeServerBin = path.join(codeServerDir, 'node_modules', '.bin', 'code-server');
const installedMarker = path.join(codeServerDir, '.installed');
// Without this, code-server writes a config with a generated password into ~/.config.
const codeServerConfig = path.join(codeServerDir, 'config.yaml');
const installLock = `${codeServerDir}.lock`;

// @vscode/ripgrep's install script downloads rg from GitHub unless this cache holds the tarball.
const ripgrepCacheDir = path.join(tmpdir(), 'vscode-ripgrep-cache-1.15.11');
const ripgrepTarball = 'ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz';

const INSTALL_TIMEOUT_MS = 10 * 60_000;

function log(message) {
  console.log(`[code-server] ${message}`);
}

function run(command, args, options = {}) {
  return new Promise((resolve, reject) => {
    execFile(command, args, { maxBuffer: 64 * 1024 * 1024, ...options }, (error, stdout, stderr) => {
      if (error) {
        const output = `${stdout}${stderr}`.trim().split('\n').slice(-30).join('\n');
        reject(new Error(`${command} ${args.join(' ')} failed (${error.code ?? error.signal}):\n${output}`));
      } else {
        resolve({ stdout, stderr });
      }
    });
  });
}

function isProcessAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Polls `condition` until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor(condition, { timeoutMs, intervalMs = 100, what }) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

function codeServerEnv(extra = {}) {
  if (!existsSync(codeServerConfig)) writeFileSync(codeServerConfig, 'auth: none\ncert: false\n');
  return {
    ...process.env,
    CODE_SERVER_CONFIG: codeServerConfig,
    // code-server queries open-vsx.org for extensions; tests may reach only loopback, so point
    // the gallery at a closed local port (refused at once) instead.
    EXTENSIONS_GALLERY: JSON.stringify({ serviceUrl: 'http://127.0.0.1:9/gallery', itemUrl: 'http://127.0.0.1:9/items', resourceUrlTemplate: 'http://127.0.0.1:9/resource/{publisher}/{name}/{version}/{path}' }),
    ...extra,
  };
}

function isInstalled() {
  return existsSync(installedMarker) && existsSync(codeServerBin);
}

async function prepareRipgrepCache() {
  const rg = '/usr/bin/rg';
  if (!existsSync(rg)) {
    throw new Error('code-server install needs ripgrep at /usr/bin/rg (its @vscode/ripgrep download is offline-blocked): apt-get install -y ripgrep');
  }
  const tarball = path.join(ripgrepCacheDir, ripgrepTarball);
  if (existsSync(tarball)) return;
  mkdirSync(ripgrepCacheDir, { recursive: true });
  const staging = mkdtempSync(path.join(tmpdir(), 'rgpkg-'));
  try {
    copyFileSync(rg, path.join(staging, 'rg'));
    await run('tar', ['-C', staging, '-czf', tarball, 'rg']);
    log(`ripgrep cache: ${tarball}`);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

async function takeInstallLock() {
  mkdirSync(path.dirname(installLock), { recursive: true });
  await waitFor(
    () => {
      try {
        mkdirSync(installLock);
        writeFileSync(path.join(installLock, 'pid'), String(process.pid));
        return true;
      } catch {
        const holder = Number(readFileSafe(path.join(installLock, 'pid')));
        // A lock left by a dead installer must not block forever.
        if (holder && !isProcessAlive(holder)) rmSync(installLock, { recursive: true, force: true });
        return isInstalled();
      }
    },
    { timeoutMs: INSTALL_TIMEOUT_MS, intervalMs: 500, what: `the code-server install lock ${installLock}` },
  );
  return () => rmSync(installLock, { recursive: true, force: true });
}

function readFileSafe(file) {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/**
 * Installs code-server into `.vscode-test/code-server-4.100.3/` unless a previous install
 * finished there (marker file), and returns the path of its `code-server` binary.
 */
export async function ensureCodeServer() {
  if (isInstalled()) return codeServerBin;
  const release = await takeInstallLock();
  try {
    if (isInstalled()) return codeServerBin;
    log(`installing code-server ${CODE_SERVER_VERSION} into ${codeServerDir} (about a minute)`);
    rmSync(codeServerDir, { recursive: true, force: true });
    mkdirSync(codeServerDir, { recursive: true });
    await prepareRipgrepCache();
    // Its own package.json keeps npm from walking up into the extension's package.json.
    writeFileSync(path.join(codeServerDir, 'package.json'), JSON.stringify({ name: 'code-server-cache', private: true }, null, 2));
    try {
      await run('npm', ['install', '--unsafe-perm', '--no-audit', '--no-fund', `code-server@${CODE_SERVER_VERSION}`], {
        cwd: codeServerDir,
        env: { ...process.env, npm_config_yes: 'true' },
        timeout: INSTALL_TIMEOUT_MS,
      });
    } catch (error) {
      throw new Error(`npm install code-server@${CODE_SERVER_VERSION} in ${codeServerDir} failed: ${error.message}`);
    }
    if (!existsSync(codeServerBin)) throw new Error(`npm install finished but ${codeServerBin} does not exist`);
    const { stdout } = await run(codeServerBin, ['--version'], { env: codeServerEnv() }).catch((error) => {
      throw new Error(`installed code-server does not run (${codeServerBin} --version): ${error.message}`);
    });
    const version = stdout.trim().split('\n').pop();
    writeFileSync(installedMarker, `${version}\ninstalled ${new Date().toISOString()}\n`);
    log(`installed: ${version}`);
    return codeServerBin;
  } finally {
    release();
  }
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function answersHttp(url) {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await response.arrayBuffer();
    return response.status < 500;
  } catch {
    return false;
  }
}

/**
 * Starts code-server on 127.0.0.1 with no auth and resolves once it answers HTTP.
 * `env` is added to the server's environment, which its extension host inherits.
 * `onOutput` gets every line code-server prints (`quiet` keeps them off the console).
 */
export async function startCodeServer({
  userDataDir,
  extensionsDir,
  folder,
  disableWorkspaceTrust = false,
  port,
  env = {},
  startTimeoutMs = 60_000,
  quiet = false,
  onOutput,
} = {}) {
  if (!userDataDir || !extensionsDir) throw new Error('startCodeServer needs userDataDir and extensionsDir');
  const bin = await ensureCodeServer();
  const chosenPort = port ?? (await freePort());
  const args = [
    '--auth', 'none',
    '--bind-addr', `127.0.0.1:${chosenPort}`,
    '--user-data-dir', userDataDir,
    '--extensions-dir', extensionsDir,
    '--disable-telemetry',
    '--disable-update-check',
    '--disable-getting-started-override',
  ];
  if (disableWorkspaceTrust) args.push('--disable-workspace-trust');
  if (folder) args.push(folder);
  mkdirSync(userDataDir, { recursive: true });
  mkdirSync(extensionsDir, { recursive: true });
  // Own process group so stop() ends code-server and the extension hosts it forked, by pgid.
  const child = spawn(bin, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: codeServerEnv(env) });
  const output = [];
  const collect = (chunk) => {
    for (const line of chunk.toString().split('\n')) {
      if (!line.trim()) continue;
      output.push(line);
      if (output.length > 200) output.shift();
      if (!quiet) console.log(`[code-server:${chosenPort}] ${line}`);
      onOutput?.(line);
    }
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  let exited = null;
  const exitedPromise = new Promise((resolve) => child.once('exit', (code, signal) => resolve((exited = { code, signal }))));
  const url = `http://127.0.0.1:${chosenPort}`;

  const stop = async () => {
    if (exited) return;
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {
      return;
    }
    const timeout = new Promise((resolve) => setTimeout(resolve, 5000).unref());
    await Promise.race([exitedPromise, timeout]);
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };

  try {
    await waitFor(
      async () => {
        if (exited) throw new Error(`code-server exited (${exited.code ?? exited.signal}) before answering on ${url}:\n${output.join('\n')}`);
        return answersHttp(`${url}/healthz`);
      },
      { timeoutMs: startTimeoutMs, intervalMs: 200, what: `code-server to answer on ${url}` },
    );
  } catch (error) {
    await stop();
    throw new Error(`${error.message}\nlast code-server output:\n${output.slice(-30).join('\n')}`);
  }
  log(`listening on ${url} (pid ${child.pid})`);
  return { url, port: chosenPort, pid: child.pid, output, stop };
}

/** Installs a packaged extension into `extensionsDir`, as a user would with "Install from VSIX". */
export async function installVsix(vsixPath, extensionsDir, { userDataDir } = {}) {
  if (!existsSync(vsixPath)) throw new Error(`no .vsix at ${vsixPath} (npm run package builds it)`);
  const bin = await ensureCodeServer();
  const ownUserData = userDataDir ?? mkdtempSync(path.join(tmpdir(), 'code-server-install-'));
  mkdirSync(extensionsDir, { recursive: true });
  try {
    const { stdout, stderr } = await run(bin, ['--user-data-dir', ownUserData, '--extensions-dir', extensionsDir, '--install-extension', vsixPath], {
      timeout: 120_000,
      env: codeServerEnv(),
    });
    const text = `${stdout}${stderr}`;
    if (/failed|error/i.test(text) && !/successfully installed/i.test(text)) {
      throw new Error(`code-server --install-extension ${vsixPath} reported: ${text.trim()}`);
    }
    log(`installed ${path.basename(vsixPath)} into ${extensionsDir}`);
    return text.trim();
  } finally {
    if (!userDataDir) rmSync(ownUserData, { recursive: true, force: true });
  }
}

async function main(argv) {
  const [command, ...rest] = argv;
  const option = (name) => {
    const index = rest.indexOf(name);
    return index >= 0 ? rest[index + 1] : undefined;
  };
  switch (command) {
    case 'install':
      console.log(await ensureCodeServer());
      return;
    case 'install-extension': {
      const [vsix, extensionsDir] = rest;
      if (!vsix || !extensionsDir) throw new Error('usage: code-server.mjs install-extension <file.vsix> <extensions-dir>');
      await installVsix(path.resolve(vsix), path.resolve(extensionsDir));
      return;
    }
    case 'start': {
      const base = mkdtempSync(path.join(tmpdir(), 'code-server-'));
      const server = await startCodeServer({
        userDataDir: path.join(base, 'user-data'),
        extensionsDir: option('--extensions-dir') ?? path.join(base, 'extensions'),
        folder: option('--folder') && path.resolve(option('--folder')),
        port: option('--port') ? Number(option('--port')) : undefined,
        disableWorkspaceTrust: rest.includes('--disable-workspace-trust'),
      });
      console.log(`open ${server.url}  (Ctrl+C stops it)`);
      const shutdown = async () => {
        await server.stop();
        rmSync(base, { recursive: true, force: true });
        process.exit(0);
      };
      process.on('SIGINT', shutdown);
      process.on('SIGTERM', shutdown);
      return;
    }
    default:
      throw new Error('usage: node scripts/code-server.mjs install | install-extension <vsix> <extensions-dir> | start [--folder DIR] [--port N] [--disable-workspace-trust]');
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((error) => {
    console.error(`[code-server] ${error.message}`);
    process.exit(1);
  });
}
