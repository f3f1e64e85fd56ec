/**
 * `kamal-proxy deploy` as Kamal 2 runs it (commands/app/proxy.rb, configuration/proxy.rb
 * `deploy_options`). `deploy` replaces the service's whole configuration in kamal-proxy, so the
 * full flag set is rebuilt from the config every time: a bare `--target` would drop hosts and TLS.
 */
import { DeployRollbackError } from '../../model';
import type { KamalConfig, KamalProxy, KamalRole } from '../types';
import { containerPrefix, isRecord, rawRoleConfig } from './app';

export const PROXY_CONTAINER_NAME = 'kamal-proxy';
export const DEFAULT_LOG_REQUEST_HEADERS = ['Cache-Control', 'Last-Modified', 'User-Agent'];
/** kamal-proxy's own defaults: flags equal to them are left out, as Kamal leaves unset keys out. */
const DEFAULT_HEALTHCHECK_INTERVAL = 1;
const DEFAULT_HEALTHCHECK_TIMEOUT = 5;

const TARGET_ID_PATTERN = /^[0-9a-f]{12}$/;

function seconds(value: number): string {
  return `${value}s`;
}

/** A proxy key that only the raw config carries (role's proxy hash merged over the top-level one). */
export function rawProxySetting(config: Pick<KamalConfig, 'raw'>, role: string, key: string): unknown {
  const roleProxy = rawRoleConfig(config, role)?.proxy;
  if (isRecord(roleProxy) && key in roleProxy) return roleProxy[key];
  const topProxy = config.raw.proxy;
  return isRecord(topProxy) ? topProxy[key] : undefined;
}

/** Settings we cannot reproduce faithfully; the planner refuses rather than drop them silently. */
export function unsupportedProxySettings(config: Pick<KamalConfig, 'raw'>, role: string): string[] {
  const found: string[] = [];
  if (isRecord(rawProxySetting(config, role, 'ssl'))) found.push('proxy.ssl with a custom certificate');
  if (rawProxySetting(config, role, 'certificate_pem') !== undefined) found.push('proxy.certificate_pem');
  if (config.raw.error_pages_path !== undefined) found.push('error_pages_path');
  return found;
}

function flag(name: string, value: string | number | boolean | undefined): string[] {
  if (value === undefined) return [];
  if (value === true) return [`--${name}`];
  return [`--${name}=${String(value)}`];
}

/** Kamal's `deploy_options`, in its order, rendered like `optionize(..., with: "=")`. */
export function proxyDeployOptions(config: KamalConfig, role: KamalRole, proxy: KamalProxy): string[] {
  const sslRedirect = rawProxySetting(config, role.name, 'ssl_redirect');
  const requestHeaders = proxy.requestHeaders.length > 0 ? proxy.requestHeaders : DEFAULT_LOG_REQUEST_HEADERS;
  return [
    ...proxy.hosts.flatMap((host) => flag('host', host)),
    ...flag('tls', proxy.ssl ? true : undefined),
    ...flag('deploy-timeout', seconds(config.deployTimeout)),
    ...flag('drain-timeout', seconds(config.drainTimeout)),
    ...flag('health-check-interval', proxy.healthcheck.interval !== DEFAULT_HEALTHCHECK_INTERVAL ? seconds(proxy.healthcheck.interval) : undefined),
    ...flag('health-check-timeout', proxy.healthcheck.timeout !== DEFAULT_HEALTHCHECK_TIMEOUT ? seconds(proxy.healthcheck.timeout) : undefined),
    ...flag('health-check-path', proxy.healthcheck.path),
    ...flag('target-timeout', proxy.responseTimeout !== undefined ? seconds(proxy.responseTimeout) : undefined),
    ...flag('buffer-requests', proxy.bufferRequests),
    ...flag('buffer-responses', proxy.bufferResponses),
    ...flag('buffer-memory', proxy.memory),
    ...flag('max-request-body', proxy.maxRequestBody),
    ...flag('max-response-body', proxy.maxResponseBody),
    ...flag('path-prefix', proxy.pathPrefix),
    ...flag('strip-path-prefix', proxy.stripPathPrefix),
    ...flag('forward-headers', proxy.forwardHeaders),
    ...flag('tls-redirect', typeof sslRedirect === 'boolean' ? sslRedirect : undefined),
    ...requestHeaders.flatMap((header) => flag('log-request-header', header)),
    ...proxy.responseHeaders.flatMap((header) => flag('log-response-header', header)),
  ];
}

/**
 * `docker exec kamal-proxy kamal-proxy deploy S-R[-D] --target=<cid12>:<port> ...`. kamal-proxy
 * waits for the target's health check, switches, drains the old target, and exits non-zero if
 * the target never became healthy.
 */
export function proxyDeploy(config: KamalConfig, role: KamalRole, targetContainerId: string): string[] {
  if (!role.proxy) throw new DeployRollbackError(`Role ${role.name} does not run behind kamal-proxy.`, 'proxy');
  if (!TARGET_ID_PATTERN.test(targetContainerId)) {
    throw new DeployRollbackError(`Refusing proxy target ${JSON.stringify(targetContainerId)}: expected a 12-hex container id.`, 'proxy');
  }
  return [
    'docker', 'exec', PROXY_CONTAINER_NAME, 'kamal-proxy', 'deploy', containerPrefix(config, role.name),
    `--target=${targetContainerId}:${role.proxy.appPort}`,
    ...proxyDeployOptions(config, role, role.proxy),
  ];
}
