/**
 * `.kamal/secrets` as Kamal 2.12 reads it (lib/kamal/secrets.rb): `<secrets_path>-common`, then
 * `<secrets_path>[.D]`, each parsed on its own by dotenv 3 with `overwrite: true`
 * (lib/dotenv/parser.rb, substitutions/variable.rb) and Kamal's command substitution
 * (lib/kamal/secrets/dotenv/inline_command_substitution.rb). Plain values and `$VAR` resolve
 * here; `$(command)` runs only when the caller allows it, each with a bound and abortable.
 * No value read here is ever put into a message.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { DeployRollbackError } from '../../model';

/** A secret value that must never be shown: printing, logging or JSON gives a mask. */
export class SecretText {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  /** The value, for the one place that writes it to a host. */
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return '[secret]';
  }
  toJSON(): string {
    return '[secret]';
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return '[secret]';
  }
}

/** A value that needs a `$(command)` the caller did not allow: known to exist, not known. */
export const UNRESOLVED: unique symbol = Symbol('unresolved');
export type SecretValue = SecretText | typeof UNRESOLVED;

/** Runs one `$(...)` of a secrets file and returns its stdout; throws (without the output) when it fails. */
export type RunSecretCommand = (command: string) => Promise<string>;

// dotenv 3's Parser::LINE (Ruby `^`/`$` are per line, `\s` includes newlines).
const LINE = /^\s*(?:export\s+)?([\w.]+)(?:\s*=\s*?|:\s+?)(\s*'(?:\\'|[^'])*'|\s*"(?:\\"|[^"])*"|[^#\r\n]+)?\s*(?:#.*)?$/gm;
const VARIABLE = /(\\)?(\$)(?!\()\{?([A-Z0-9_]+)?\}?/gi;

interface Parsed {
  /** Key → value, in file order (a later line replaces an earlier one's value, in its place). */
  values: Map<string, string | typeof UNRESOLVED>;
  /** Keys whose value needs a command. */
  commandKeys: string[];
}

/** Ruby's `chomp`: one trailing line break. */
function chomp(text: string): string {
  return text.replace(/(\r\n|\n|\r)$/, '');
}

/** Every `$(...)` with balanced parentheses (dotenv's INTERPOLATED_SHELL_COMMAND), with its escaping backslash. */
function commandSpans(value: string): { start: number; end: number; escaped: boolean; command: string }[] {
  const spans: { start: number; end: number; escaped: boolean; command: string }[] = [];
  let index = 0;
  while (index < value.length) {
    const dollar = value.indexOf('$(', index);
    if (dollar < 0) break;
    let depth = 0;
    let end = -1;
    for (let cursor = dollar + 1; cursor < value.length; cursor += 1) {
      if (value[cursor] === '(') depth += 1;
      else if (value[cursor] === ')') {
        depth -= 1;
        if (depth === 0) {
          end = cursor + 1;
          break;
        }
      }
    }
    // `$()` does not match (`+` needs one character); an unbalanced one is left as written.
    if (end < 0 || end === dollar + 3) {
      index = dollar + 2;
      continue;
    }
    const escaped = dollar > 0 && value[dollar - 1] === '\\';
    spans.push({ start: escaped ? dollar - 1 : dollar, end, escaped, command: value.slice(dollar + 2, end - 1) });
    index = end;
  }
  return spans;
}

type Env = Record<string, string | typeof UNRESOLVED | undefined>;

/** dotenv's Variable substitution; UNRESOLVED when it takes an unresolved value. */
function substituteVariables(value: string, env: Env): string | typeof UNRESOLVED {
  let unresolved = false;
  const result = value.replace(VARIABLE, (whole: string, backslash: string | undefined, _dollar: string, name: string | undefined) => {
    if (backslash === '\\') return whole.slice(1);
    if (name === undefined) return whole;
    const found = env[name];
    if (found === UNRESOLVED) {
      unresolved = true;
      return '';
    }
    return found ?? '';
  });
  return unresolved ? UNRESOLVED : result;
}

async function substituteCommands(value: string, hash: Env, processEnv: NodeJS.ProcessEnv, run: RunSecretCommand | undefined): Promise<string | typeof UNRESOLVED> {
  const spans = commandSpans(value);
  if (spans.length === 0) return value;
  let result = '';
  let last = 0;
  for (const span of spans) {
    result += value.slice(last, span.start);
    last = span.end;
    if (span.escaped) {
      result += value.slice(span.start + 1, span.end);
      continue;
    }
    // Kamal substitutes variables in the command again, the process's ENV winning over the file's.
    const command = substituteVariables(span.command, { ...hash, ...processEnv });
    if (command === UNRESOLVED || run === undefined) return UNRESOLVED;
    const inline = /^\s*kamal\s*secrets\s+/.test(command);
    // Kamal runs `kamal secrets …` in-process with `--inline`; here it is the same CLI, run by the shell.
    result += chomp(await run(inline ? `${command} --inline` : command));
  }
  return result + value.slice(last);
}

function expandNewlines(value: string, hash: Env, processEnv: NodeJS.ProcessEnv): string {
  if ((hash.DOTENV_LINEBREAK_MODE ?? processEnv.DOTENV_LINEBREAK_MODE) === 'legacy') return value.replace(/\\n/g, '\n').replace(/\\r/g, '\r');
  return value.replace(/\\n/g, '\\\n').replace(/\\r/g, '\\\r');
}

const unescapeCharacters = (value: string): string => value.replace(/\\([^$])/g, '$1');

/** Values of one secrets file as dotenv 3 parses it with `overwrite: true`; commands run through `run` when given. */
export async function parseSecretsFile(text: string, processEnv: NodeJS.ProcessEnv, run?: RunSecretCommand): Promise<Parsed> {
  const lines = text.replace(/\r\n?/g, '\n');
  const hash: Env = {};
  const values = new Map<string, string | typeof UNRESOLVED>();
  const commandKeys: string[] = [];
  for (const match of lines.matchAll(LINE)) {
    const key = match[1];
    let value = (match[2] ?? '').trim();
    const quoted = /^(['"])([\s\S]*)\1$/.exec(value);
    const quote = quoted?.[1];
    if (quoted) value = quoted[2];
    let resolved: string | typeof UNRESOLVED = value;
    if (quote === '"') resolved = unescapeCharacters(expandNewlines(value, hash, processEnv));
    else if (quote === undefined) resolved = unescapeCharacters(value);
    if (quote !== "'") {
      if (commandSpans(resolved).some((span) => !span.escaped)) commandKeys.push(key);
      const variables = substituteVariables(resolved, { ...processEnv, ...hash });
      resolved = variables === UNRESOLVED ? UNRESOLVED : await substituteCommands(variables, hash, processEnv, run);
    }
    hash[key] = resolved;
    values.set(key, resolved);
  }
  return { values, commandKeys };
}

export interface ResolveSecretsInput {
  projectRoot: string;
  destination?: string;
  /** `secrets_path` of the config (default `.kamal/secrets`), relative to the project root. */
  secretsPath?: string;
  processEnv?: NodeJS.ProcessEnv;
  /**
   * Asked once, only when a file holds `$(...)`: whether its commands may run (they may prompt,
   * as 1Password's does). Absent or false: those values stay unresolved.
   */
  allowCommands?: (files: string[]) => Promise<boolean> | boolean;
  /** Each command's bound (default 60 s). */
  commandTimeoutMs?: number;
  signal?: AbortSignal;
  /** Told before each command runs (the command itself is not passed: it may hold a secret). */
  onCommand?: () => void;
}

export interface ResolvedSecrets {
  /** The files read, relative to the project root, in Kamal's order. */
  files: string[];
  /** What Kamal would find for a secret name: undefined when no file defines it. */
  lookup(name: string): SecretValue | undefined;
  /** Names of secrets that need a command that was not run. */
  unresolved: string[];
  /** Whether the files' commands were run. */
  commandsRan: boolean;
}

/** Kamal's `Secrets#secrets_filenames`: `<path>-common`, then `<path>` or `<path>.D`. */
export function secretsFileNames(secretsPath: string, destination?: string): string[] {
  return [`${secretsPath}-common`, `${secretsPath}${destination !== undefined ? `.${destination}` : ''}`];
}

async function readIfPresent(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'EISDIR') return undefined;
    throw new DeployRollbackError(`Cannot read ${file}: ${(error as Error).message}.`, 'validate');
  }
}

/** Ruby backticks: `/bin/sh -c COMMAND` from the project root, stdout kept, bounded and abortable. */
export function shellCommandRunner(cwd: string, env: NodeJS.ProcessEnv, timeoutMs: number, signal: AbortSignal | undefined, file: string): RunSecretCommand {
  return (command) =>
    new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(new DeployRollbackError(`Stopped before running a command of ${file}`, 'validate'));
        return;
      }
      // Its own process group, so a timeout or cancel ends whatever it started too.
      const child = spawn('/bin/sh', ['-c', command], { cwd, env, stdio: ['ignore', 'pipe', 'ignore'], detached: true });
      const chunks: Buffer[] = [];
      let ended: string | undefined;
      const kill = (why: string) => {
        ended = why;
        try {
          if (child.pid !== undefined) process.kill(-child.pid, 'SIGTERM');
        } catch {
          child.kill('SIGTERM');
        }
      };
      const timer = setTimeout(() => kill(`did not finish within ${timeoutMs / 1000} s and was stopped`), timeoutMs);
      const onAbort = () => kill('was stopped');
      signal?.addEventListener('abort', onAbort, { once: true });
      child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
      const finish = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      child.on('error', (error) => {
        finish();
        reject(new DeployRollbackError(`A command in ${file} could not start: ${error.message}`, 'validate'));
      });
      child.on('close', (code) => {
        finish();
        // Its output (and stderr, never read) may hold a secret: the message says only how it ended.
        if (ended) reject(new DeployRollbackError(`A command in ${file} ${ended}`, 'validate'));
        else if (code !== 0) reject(new DeployRollbackError(`A command in ${file} failed (exit ${code ?? 'by signal'}; its output is not shown, it may hold secrets)`, 'validate'));
        else resolve(Buffer.concat(chunks).toString('utf8'));
      });
    });
}

/** Reads the secrets files Kamal would read, as it would, running their commands only if allowed. */
export async function resolveSecrets(input: ResolveSecretsInput): Promise<ResolvedSecrets> {
  const processEnv = input.processEnv ?? process.env;
  const secretsPath = input.secretsPath ?? '.kamal/secrets';
  const present: { name: string; text: string }[] = [];
  for (const name of secretsFileNames(secretsPath, input.destination)) {
    const text = await readIfPresent(path.resolve(input.projectRoot, name));
    if (text !== undefined) present.push({ name, text });
  }
  const withCommands = [];
  for (const file of present) if ((await parseSecretsFile(file.text, processEnv)).commandKeys.length > 0) withCommands.push(file.name);
  const allowed = withCommands.length > 0 && input.allowCommands !== undefined ? await input.allowCommands(withCommands) : false;
  input.signal?.throwIfAborted();
  const merged = new Map<string, SecretValue>();
  const unresolved = new Set<string>();
  for (const file of present) {
    const runner = shellCommandRunner(input.projectRoot, processEnv, input.commandTimeoutMs ?? 60_000, input.signal, file.name);
    const run: RunSecretCommand | undefined = allowed
      ? (command) => {
          input.onCommand?.();
          return runner(command);
        }
      : undefined;
    const parsed = await parseSecretsFile(file.text, processEnv, run);
    for (const [key, value] of parsed.values) {
      merged.set(key, value === UNRESOLVED ? UNRESOLVED : new SecretText(value));
      if (value === UNRESOLVED) unresolved.add(key);
      else unresolved.delete(key);
    }
  }
  return { files: present.map((file) => file.name), lookup: (name) => merged.get(name), unresolved: [...unresolved], commandsRan: allowed };
}
