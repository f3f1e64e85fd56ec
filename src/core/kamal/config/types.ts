import type { Problem } from '../../model';

/**
 * A Kamal config after ERB, destination merge and validation: what the inventory, the
 * command builders and the rollback planner read. Field names follow Kamal's own.
 * Values that could not be resolved (unresolved ERB) are listed in `unknown` by their
 * dotted key path; builders refuse to use them.
 */
export interface KamalConfig {
  /** Absolute path of config/deploy.yml. */
  file: string;
  /** Absolute path of config/deploy.<destination>.yml when a destination is used. */
  destinationFile?: string;
  /** Absent when deploying without a destination. */
  destination?: string;
  requireDestination: boolean;
  service: string;
  image: string;
  registryServer?: string;
  /** `[registry.server/]image`: what containers are run from. */
  repository: string;
  /** Sorted by name, as Kamal sorts them; the primary role is not moved. */
  roles: KamalRole[];
  primaryRole: string;
  /** Every host of every role, first-seen order, no duplicates. */
  hosts: string[];
  ssh: KamalSsh;
  boot: { limit?: number | string; wait?: number };
  retainContainers: number;
  readinessDelay: number;
  deployTimeout: number;
  drainTimeout: number;
  /** Absolute path of the hooks folder (`.kamal/hooks` next to config/ unless `hooks_path`). */
  hooksPath: string;
  /** Top-level env (roles merge theirs over it). */
  env: KamalEnv;
  /** Top-level labels. */
  labels: Record<string, string>;
  volumes: string[];
  logging: { driver?: string; options: Record<string, string> };
  /** The merged document, for anything not normalised above. */
  raw: Record<string, unknown>;
  /** Dotted key paths whose values are unknown (unresolved ERB). */
  unknown: string[];
  problems: Problem[];
}

export interface KamalEnv {
  clear: Record<string, string>;
  /** Clear keys whose YAML value was the boolean false: Kamal passes `KEY=false` unquoted. */
  literalFalse?: string[];
  /** Names only: values live in the env file on the host and are never read. */
  secret: string[];
}

export interface KamalRole {
  name: string;
  hosts: string[];
  /** Host → tags from the `{host: tag}` form. */
  hostTags: Record<string, string[]>;
  primary: boolean;
  cmd?: string;
  /** `options:` as given, rendered as `--key="value"` flags by the command builders. */
  options: Record<string, unknown>;
  /** Top-level labels merged with the role's. */
  labels: Record<string, string>;
  /** Top-level env merged with the role's. */
  env: KamalEnv;
  /** Absent when this role does not run behind kamal-proxy. */
  proxy?: KamalProxy;
}

export interface KamalProxy {
  hosts: string[];
  appPort: number;
  ssl: boolean;
  healthcheck: { path: string; interval: number; timeout: number };
  responseTimeout?: number;
  bufferRequests: boolean;
  bufferResponses: boolean;
  maxRequestBody?: number;
  maxResponseBody?: number;
  memory?: number;
  forwardHeaders?: boolean;
  pathPrefix?: string;
  stripPathPrefix?: boolean;
  requestHeaders: string[];
  responseHeaders: string[];
}

export interface KamalSsh {
  user: string;
  port: number;
  /** Jump host (`ssh.proxy`): bare host means root@host. */
  proxy?: { user: string; host: string; port: number };
  proxyCommand?: string;
  keys: string[];
  keysOnly: boolean;
  /** true: ~/.ssh/config and /etc/ssh/ssh_config; false: none; strings: these files. */
  config: boolean | string[];
  forwardAgent: boolean;
  /** Seconds. */
  keepaliveInterval: number;
}
