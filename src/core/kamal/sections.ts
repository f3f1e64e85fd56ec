/**
 * Several steps in one SSH exchange: each step is a section the host answers with a marker line
 * (`@@deploy-rollback NAME`), its output, and its exit status (`@@deploy-rollback rc N`), so the
 * caller reads every step's own result and can report each as its marker arrives.
 */
import { shellLine } from '../shell';

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

/** Each section's output lines and exit status, by name. */
export function parseSections(stdout: string): Map<string, Section> {
  const sections = new Map<string, Section>();
  let current: Section | undefined;
  for (const line of stdout.split('\n')) {
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
