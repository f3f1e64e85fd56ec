/** Gimlet's release.json, parsed leniently: every field may be missing in older files. */

export interface GimletVersion {
  repositoryName?: string;
  sha?: string;
  /** Unix seconds. */
  created?: number;
  branch?: string;
  /** "tag" | "pr"; absent means push. */
  event?: string;
  sourceBranch?: string;
  targetBranch?: string;
  tag?: string;
  authorName?: string;
  authorEmail?: string;
  committerName?: string;
  committerEmail?: string;
  message?: string;
  url?: string;
}

export interface GimletRelease {
  app?: string;
  env?: string;
  artifactId?: string;
  triggeredBy?: string;
  version?: GimletVersion;
  gitopsRef?: string;
  gitopsRepo?: string;
}

const VERSION_STRINGS = [
  'repositoryName',
  'sha',
  'branch',
  'event',
  'sourceBranch',
  'targetBranch',
  'tag',
  'authorName',
  'authorEmail',
  'committerName',
  'committerEmail',
  'message',
  'url',
] as const;

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** Undefined when the text is not a JSON object; wrong-typed fields are dropped, not fatal. */
export function parseReleaseJson(content: string): GimletRelease | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(content);
  } catch {
    return undefined;
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return undefined;
  const record = raw as Record<string, unknown>;
  const release: GimletRelease = {
    app: text(record.app),
    env: text(record.env),
    artifactId: text(record.artifactId),
    triggeredBy: text(record.triggeredBy),
    gitopsRef: text(record.gitopsRef),
    gitopsRepo: text(record.gitopsRepo),
  };
  const version = record.version;
  if (version !== null && typeof version === 'object' && !Array.isArray(version)) {
    const source = version as Record<string, unknown>;
    const parsed: GimletVersion = {};
    for (const key of VERSION_STRINGS) {
      const value = text(source[key]);
      if (value !== undefined) parsed[key] = value;
    }
    if (typeof source.created === 'number' && Number.isFinite(source.created)) parsed.created = source.created;
    release.version = parsed;
  }
  return release;
}
