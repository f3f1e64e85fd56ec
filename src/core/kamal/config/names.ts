/**
 * What a Kamal name may look like. Each validator returns why a value is refused, or
 * undefined when it is fine. The config reader drops refused values (recording a Problem);
 * the command builders call `assertValidName` again so nothing hostile reaches a command.
 */
import { DeployRollbackError } from '../../model';
import { readKamalHost } from './host-string';

export type NameKind =
  | 'service'
  | 'version'
  | 'role'
  | 'destination'
  | 'host'
  | 'proxy host'
  | 'env name'
  | 'label key'
  | 'image'
  | 'registry server'
  | 'ssh user';

/** Kamal 2.12 checks `/^[a-z0-9_-]+$/i` (case-insensitive) in ensure_valid_service_name. */
const SERVICE = /^[a-z0-9_-]+$/i;
/** Docker's tag grammar: what `docker tag` and `docker run REPO:V` accept. */
const VERSION = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const ROLE = /^[A-Za-z0-9_-]+$/;
const DESTINATION = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const HOSTNAME = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?$/;
const IPV6 = /^[0-9A-Fa-f:.]+$/;
const SSH_USER = /^[A-Za-z_][A-Za-z0-9._-]*\$?$/;
/**
 * Kamal takes any key (`A-B`, `a.b`, `1ABC`, a number Psych read: `0x1F` is "31") and writes it on
 * the command line unquoted; a key the shell would split or expand is refused here instead.
 */
const ENV_NAME = /^[A-Za-z0-9_@%+:,./-]+$/;
const LABEL_KEY = /^[A-Za-z0-9][A-Za-z0-9._/-]*$/;
const IMAGE = /^[A-Za-z0-9][A-Za-z0-9._/:-]*$/;
const REGISTRY_SERVER = /^[A-Za-z0-9][A-Za-z0-9.-]*(?::[0-9]{1,5})?(?:\/[A-Za-z0-9._-]+)*$/;

function describe(value: string): string {
  const shown = value.length > 60 ? `${value.slice(0, 57)}...` : value;
  return JSON.stringify(shown);
}

function notString(value: unknown): string | undefined {
  if (typeof value !== 'string') return 'should be a string';
  if (value === '') return 'is empty';
  return undefined;
}

/** A validator: a non-empty string that `fits`, else why not (`refused`, after the value as shown). */
function nameRule(fits: (text: string) => boolean, refused: string): (value: unknown) => string | undefined {
  return (value) => notString(value) ?? (fits(value as string) ? undefined : `${describe(value as string)} ${refused}`);
}

export const validateService = nameRule((text) => SERVICE.test(text), 'is not a valid service name: only letters, digits, "-" and "_" are allowed');

export const validateVersion = nameRule((text) => VERSION.test(text), 'is not a valid version: a Docker tag is up to 128 letters, digits, "_", "." and "-", not starting with "." or "-"');

export const validateRole = nameRule((text) => ROLE.test(text), 'is not a valid role name: only letters, digits, "-" and "_" are allowed');

export const validateDestination = nameRule((text) => DESTINATION.test(text) && !text.includes('..'), 'is not a valid destination: only letters, digits, "-", "_" and "." are allowed, starting with a letter or digit');

function validHostPart(host: string): boolean {
  if (host.startsWith('[') && host.endsWith(']')) return IPV6.test(host.slice(1, -1)) && host.includes(':');
  if (host.includes(':')) return IPV6.test(host);
  return HOSTNAME.test(host) && host.length <= 253;
}

/** A server as Kamal/SSHKit read it: `[user@]host[:port]`, IPv4, IPv6 bare (`::1`) or bracketed (`[fe80::1]:22`). */
export function validateHost(value: unknown): string | undefined {
  const wrong = notString(value);
  if (wrong) return wrong;
  const parts = readKamalHost(value as string);
  return typeof parts === 'string' ? `${describe(value as string)} is not a valid host: ${parts}` : undefined;
}

/** A kamal-proxy routing host: a domain name, optionally a leading `*.` wildcard. */
export function validateProxyHost(value: unknown): string | undefined {
  const wrong = notString(value);
  if (wrong) return wrong;
  const text = value as string;
  const name = text.startsWith('*.') ? text.slice(2) : text;
  if (!HOSTNAME.test(name) && !validHostPart(name)) {
    return `${describe(text)} is not a valid proxy host: use a domain name such as app.example.com`;
  }
  return undefined;
}

export const validateEnvName = nameRule((text) => ENV_NAME.test(text), 'is not an env name Kamal can put on a command line: letters, digits and _ @ % + : , . / -');

export const validateLabelKey = nameRule((text) => LABEL_KEY.test(text) && !text.includes('..'), 'is not a valid label key: letters, digits, ".", "/", "_" and "-", starting with a letter or digit');

export const validateImage = nameRule((text) => IMAGE.test(text) && !text.includes('..') && !text.includes('//'), 'is not a valid image name: letters, digits, ".", "/", ":", "_" and "-"');

export const validateRegistryServer = nameRule((text) => REGISTRY_SERVER.test(text) && !text.includes('..'), 'is not a valid registry server: use host[:port][/path], e.g. ghcr.io or localhost:5555');

export const validateSshUser = nameRule((text) => SSH_USER.test(text), 'is not a valid SSH user: letters, digits, ".", "_" and "-", not starting with "-"');

const VALIDATORS: Record<NameKind, (value: unknown) => string | undefined> = {
  service: validateService,
  version: validateVersion,
  role: validateRole,
  destination: validateDestination,
  host: validateHost,
  'proxy host': validateProxyHost,
  'env name': validateEnvName,
  'label key': validateLabelKey,
  image: validateImage,
  'registry server': validateRegistryServer,
  'ssh user': validateSshUser,
};

export function validateName(kind: NameKind, value: unknown): string | undefined {
  return VALIDATORS[kind](value);
}

/** For the command builders: refuses a value before it can reach a command line. */
export function assertValidName(kind: NameKind, value: unknown): string {
  const reason = validateName(kind, value);
  if (reason) throw new DeployRollbackError(`Refusing ${kind} ${reason.startsWith('"') ? reason : `value: ${reason}`}`);
  return value as string;
}
