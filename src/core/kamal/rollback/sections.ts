/**
 * Several steps in one SSH exchange: each step is a section the host answers with a marker line
 * (`@@deploy-rollback NAME`), its output, and its exit status (`@@deploy-rollback rc N`), so the
 * caller reads every step's own result and can report each as its marker arrives.
 */
import { shellLine } from '../../shell';

export const MARK = '@@deploy-rollback';
/** Constant text, so it can be appended to a quoted line without quoting. */
export const STATUS_ECHO = `echo "${MARK} rc $?"`;

export interface Section {
  lines: string[];
  rc?: number;
}

/** `echo '@@deploy-rollback NAME'; COMMAND; echo "@@deploy-rollback rc $?"`: runs whatever came before. */
export function section(name: string, command: string): string {
  return `${shellLine(['echo', `${MARK} ${name}`])}; ${command}; ${STATUS_ECHO}`;
}

/**
 * Sections joined so that each runs only if the one before exited 0: `echo '@@… a'; A && echo
 * "@@… rc 0" && echo '@@… b' && B; echo "@@… rc $?"`. The last section that started gets the
 * status of the one that stopped the chain.
 */
export function chain(sections: [string, string][]): string {
  const parts = sections.map(([name, command], index) =>
    index === 0 ? `${shellLine(['echo', `${MARK} ${name}`])}; ${command}` : ` && echo "${MARK} rc 0" && ${shellLine(['echo', `${MARK} ${name}`])} && ${command}`,
  );
  return `${parts.join('')}; ${STATUS_ECHO}`;
}

/** What starts every line a concurrent section writes: `@@deploy-rollback@N ` (N its index). */
const CONCURRENT_PREFIX = `${MARK}@`;
const CONCURRENT_LINE = /^@@deploy-rollback@(\d+) (.*)$/s;

/**
 * Sections run at the same time, for queries that do not depend on each other (each docker CLI
 * call costs its own start-up). Every line a section writes is prefixed with its index by a
 * shell loop, one `printf` (one write, far under PIPE_BUF) per line, so lines of different
 * sections never mix; parseSections puts them back in order. No temporary files: a full /tmp
 * must not stop a rollback during an incident.
 */
export function concurrent(sections: [string, string][]): string {
  if (sections.length < 2) return sections.map(([name, command]) => section(name, command)).join('; ');
  const jobs = sections.map(([name, command], index) => `{ ${section(name, command)}; } | while IFS= read -r line; do printf '%s\\n' "${CONCURRENT_PREFIX}${index} $line"; done &`);
  return `${jobs.join(' ')} wait`;
}

/** Concurrent sections' lines back in order, each section whole, before the lines that came after them. */
function demultiplex(lines: string[]): string[] {
  const jobs = new Map<number, string[]>();
  const rest: string[] = [];
  for (const line of lines) {
    const match = CONCURRENT_LINE.exec(line);
    if (!match) {
      rest.push(line);
      continue;
    }
    const index = Number(match[1]);
    jobs.set(index, [...(jobs.get(index) ?? []), match[2]]);
  }
  if (jobs.size === 0) return lines;
  return [...[...jobs.keys()].sort((a, b) => a - b).flatMap((index) => jobs.get(index)!), ...rest];
}

const TRAILING_STATUS = /^(.*)@@deploy-rollback rc (\d+)$/s;

/** Each section's output lines and exit status, by name (concurrent sections included). */
export function parseSections(stdout: string): Map<string, Section> {
  const sections = new Map<string, Section>();
  let current: Section | undefined;
  for (const whole of demultiplex(stdout.split('\n'))) {
    // Output without a final newline (`base64 -d` of a lock's details) has the status marker on its last line.
    const fused = TRAILING_STATUS.exec(whole);
    if (fused && fused[1] !== '' && current) {
      if (fused[1].trim() !== '') current.lines.push(fused[1]);
      current.rc = Number(fused[2]);
      current = undefined;
      continue;
    }
    const line = whole;
    if (line.startsWith(`${MARK} rc `)) {
      if (current) current.rc = Number(line.slice(`${MARK} rc `.length));
      current = undefined;
    } else if (line.startsWith(`${MARK} `)) {
      current = { lines: [] };
      sections.set(line.slice(MARK.length + 1), current);
    } else if (current && line.trim() !== '') {
      current.lines.push(line);
    }
  }
  return sections;
}

/** Calls `onSection` once per section, as its marker line arrives (`finish`: the rest, for sessions that cannot stream). */
export function markerWatcher(onSection: (name: string) => void): { onStdout: (text: string) => void; finish: (stdout: string) => void } {
  const seen = new Set<string>();
  let pending = '';
  const line = (text: string) => {
    if (!text.startsWith(`${MARK} `) || text.startsWith(`${MARK} rc `)) return;
    const name = text.slice(MARK.length + 1).trim();
    if (seen.has(name)) return;
    seen.add(name);
    onSection(name);
  };
  return {
    onStdout: (text) => {
      pending += text;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      lines.forEach(line);
    },
    finish: (stdout) => stdout.split('\n').forEach(line),
  };
}
