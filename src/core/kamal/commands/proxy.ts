/**
 * `kamal-proxy deploy` as Kamal 2 runs it (commands/app/proxy.rb, configuration/proxy.rb
 * `deploy_options`). `deploy` replaces the service's whole configuration in kamal-proxy, so the
 * full flag set is rebuilt from the config every time: a bare `--target` would drop hosts and TLS.
 */
import { DeployRollbackError } from '../../model';
import type { KamalConfig, KamalProxy, KamalRole } from '../config/types';
import { containerPrefix, isRecord, rawRoleConfig, serviceWithDestination } from './app';
import { optionizeWith, renderWords, ShellWord, type KamalValue, type Word } from './kamal-shell';

export const PROXY_CONTAINER_NAME = 'kamal-proxy';
export const DEFAULT_LOG_REQUEST_HEADERS = ['Cache-Control', 'Last-Modified', 'User-Agent'];

const TARGET_ID_PATTERN = /^[0-9a-f]{12}$/;

/** A proxy key that only the raw config carries (role's proxy hash merged over the top-level one). */
export function rawProxySetting(config: Pick<KamalConfig, 'raw'>, role: string, key: string): unknown {
  const roleProxy = rawRoleConfig(config, role)?.proxy;
  if (isRecord(roleProxy) && key in roleProxy) return roleProxy[key];
  const topProxy = config.raw.proxy;
  return isRecord(topProxy) ? topProxy[key] : undefined;
}

/** A nested proxy setting as Kamal reads it from the role's proxy deep-merged over the top-level one. */
export function rawProxyDig(config: Pick<KamalConfig, 'raw'>, role: string, ...keys: string[]): unknown {
  const dig = (from: unknown): unknown => {
    let cursor = from;
    for (const key of keys) cursor = isRecord(cursor) ? cursor[key] : undefined;
    return cursor;
  };
  const fromRole = dig(rawRoleConfig(config, role)?.proxy);
  return fromRole !== undefined ? fromRole : dig(config.raw.proxy);
}

/** `proxy.ssl: {certificate_pem, private_key_pem}`: certificates Kamal uploads itself (names of secrets). */
export function customCertificate(config: Pick<KamalConfig, 'raw'>, role: string): boolean {
  const present = (value: unknown) => value !== undefined && value !== null && value !== '';
  return present(rawProxyDig(config, role, 'ssl', 'certificate_pem')) && present(rawProxyDig(config, role, 'ssl', 'private_key_pem'));
}

/** kamal-proxy's view of the host's `.kamal/proxy/apps-config` (Kamal's proxy boot mounts it there). */
export const PROXY_APPS_CONFIG_IN_CONTAINER = '/home/kamal-proxy/.apps-config';

/** `.kamal/proxy/apps-config/S[-D]`, relative to the SSH user's home. */
export function proxyAppsConfigDirectory(config: Pick<KamalConfig, 'service' | 'destination'>): string {
  return `.kamal/proxy/apps-config/${serviceWithDestination(config)}`;
}

/** Where the last deploy left the role's certificate and key, on the host and as kamal-proxy sees them. */
export function tlsFiles(config: Pick<KamalConfig, 'service' | 'destination'>, role: string): { host: string[]; container: [string, string] } {
  const relative = `${serviceWithDestination(config)}/tls/${role}`;
  return {
    host: [`.kamal/proxy/apps-config/${relative}/cert.pem`, `.kamal/proxy/apps-config/${relative}/key.pem`],
    container: [`${PROXY_APPS_CONFIG_IN_CONTAINER}/${relative}/cert.pem`, `${PROXY_APPS_CONFIG_IN_CONTAINER}/${relative}/key.pem`],
  };
}

/** Error pages of version V as kamal-proxy reads them. */
export function errorPagesInContainer(config: Pick<KamalConfig, 'service' | 'destination'>, version: string): string {
  return `${PROXY_APPS_CONFIG_IN_CONTAINER}/${serviceWithDestination(config)}/error_pages/${version}`;
}

function seconds(value: unknown): string | undefined {
  return value === undefined || value === null || value === false ? undefined : `${String(value)}s`;
}

function given(value: unknown): KamalValue | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return value;
  return undefined;
}

/**
 * Kamal's `deploy_options` in its order, `.compact`ed: a flag whose setting is absent is left out,
 * so kamal-proxy applies its own default. Rendered as `optionize(..., with: "=")`.
 */
export function proxyDeployOptions(config: KamalConfig, role: KamalRole, proxy: KamalProxy, version: string): Word[] {
  const dig = (...keys: string[]) => rawProxyDig(config, role.name, ...keys);
  const ssl = dig('ssl');
  const custom = customCertificate(config, role.name);
  const tls = custom ? tlsFiles(config, role.name).container : undefined;
  const bufferRequests = dig('buffering', 'requests');
  const bufferResponses = dig('buffering', 'responses');
  const requestHeaders = dig('logging', 'request_headers');
  const responseHeaders = dig('logging', 'response_headers');
  const list = (value: unknown): KamalValue[] | undefined => (Array.isArray(value) ? value.map((entry) => given(entry) ?? String(entry)) : given(value) !== undefined ? [given(value) as KamalValue] : undefined);
  const errorPages = config.raw.error_pages_path !== undefined && config.raw.error_pages_path !== null ? errorPagesInContainer(config, version) : undefined;
  return optionizeWith([
    ['host', proxy.hosts],
    ['tls', ssl === true || isRecord(ssl) ? true : undefined],
    ['tls-certificate-path', tls?.[0]],
    ['tls-private-key-path', tls?.[1]],
    ['deploy-timeout', seconds(config.deployTimeout)],
    ['drain-timeout', seconds(config.drainTimeout)],
    ['health-check-interval', seconds(dig('healthcheck', 'interval'))],
    ['health-check-timeout', seconds(dig('healthcheck', 'timeout'))],
    ['health-check-path', given(dig('healthcheck', 'path'))],
    ['target-timeout', seconds(dig('response_timeout'))],
    ['buffer-requests', bufferRequests === undefined || bufferRequests === null ? true : given(bufferRequests)],
    ['buffer-responses', bufferResponses === undefined || bufferResponses === null ? true : given(bufferResponses)],
    ['buffer-memory', given(dig('buffering', 'memory'))],
    ['max-request-body', given(dig('buffering', 'max_request_body'))],
    ['max-response-body', given(dig('buffering', 'max_response_body'))],
    ['path-prefix', given(dig('path_prefix'))],
    ['strip-path-prefix', given(dig('strip_path_prefix'))],
    ['forward-headers', given(dig('forward_headers'))],
    ['tls-redirect', given(dig('ssl_redirect'))],
    ['log-request-header', list(requestHeaders) ?? DEFAULT_LOG_REQUEST_HEADERS],
    ['log-response-header', list(responseHeaders)],
    ['error-pages', errorPages],
  ]);
}

/**
 * `docker exec kamal-proxy kamal-proxy deploy S-R[-D] --target="<cid12>:<port>" ...`. kamal-proxy
 * waits for the target's health check, switches, drains the old target, and exits non-zero if
 * the target never became healthy.
 */
export function proxyDeploy(config: KamalConfig, role: KamalRole, targetContainerId: string, version: string): string {
  if (!role.proxy) throw new DeployRollbackError(`Role ${role.name} does not run behind kamal-proxy.`, 'proxy');
  if (!TARGET_ID_PATTERN.test(targetContainerId) && targetContainerId !== TARGET_PLACEHOLDER) {
    throw new DeployRollbackError(`Refusing proxy target ${JSON.stringify(targetContainerId)}: expected a 12-hex container id.`, 'proxy');
  }
  return renderWords([
    'docker', 'exec', PROXY_CONTAINER_NAME, 'kamal-proxy', 'deploy', containerPrefix(config, role.name),
    new ShellWord(`--target="${targetContainerId}:${role.proxy.appPort}"`),
    ...proxyDeployOptions(config, role, role.proxy, version),
  ]);
}

/** What the plan shows until `docker run` prints the container id. */
export const TARGET_PLACEHOLDER = '<cid12>';
