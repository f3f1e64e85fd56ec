/**
 * Test images made without a registry: a busybox rootfs imported with `docker import`.
 * App images serve GET /up and GET /version with busybox httpd; the kamal-proxy stand-in
 * implements the CLI contract Kamal drives (`deploy`, `list`) with busybox nc.
 */
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runOk } from './exec';

export interface AppImageSpec {
  /** Tag of the image, e.g. `v1`; `GET /version` answers it. */
  version: string;
  /** Repository of the image; defaults to the harness's `repository` option (`user/app`). */
  repository?: string;
  /** `GET /up` answers 404 instead of 200, so kamal-proxy never switches to it. */
  unhealthy?: boolean;
  /** The container exits with status 1 right after it starts. */
  exitsImmediately?: boolean;
  /**
   * Files under `/rails/public/assets` (name → content), as a Rails 8 image carries its compiled
   * assets; `GET /assets/<name>` serves them from there (where Kamal's asset volume is mounted).
   */
  assets?: Record<string, string>;
}

/** Kamal 2.12's Kamal::Configuration::Proxy::Run::MINIMUM_VERSION is v0.9.0. */
export const KAMAL_PROXY_IMAGE = 'basecamp/kamal-proxy:v0.9.0';
export const DEFAULT_REPOSITORY = 'user/app';
export const DEFAULT_IMAGES: readonly AppImageSpec[] = [{ version: 'v1' }, { version: 'v2' }, { version: 'v3' }];

const BUSYBOX = '/bin/busybox';
const BUSYBOX_SOURCES = ['/usr/bin/busybox', '/bin/busybox'];

// PID 1 must end on SIGTERM as real apps do, or every `docker stop` waits its grace period.
const APP_ENTRYPOINT = `#!/bin/sh
if [ -f /exits-immediately ]; then
  echo "app $(cat /www/version) exits immediately (test image built that way)" >&2
  exit 1
fi
echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) app $(cat /www/version) starting: httpd on :80, serving /www" >&2
# -v: one line per request on stderr, so docker logs shows what a real app's would (health checks included).
httpd -f -v -p 80 -h /www &
child=$!
trap 'kill $child 2>/dev/null; exit 0' TERM INT
wait $child
`;

export const KAMAL_PROXY_SCRIPT = `#!/bin/sh
# Stand-in for the kamal-proxy CLI that Kamal drives: "deploy" switches a service to a target
# only once GET <health-check-path> answers 2xx, and keeps the old target otherwise.
STATE_DIR=/state/services
HISTORY=/state/history

seconds_of() {
  case "$1" in
    *ms) s=$(( \${1%ms} / 1000 )) ;;
    *s) s=\${1%s} ;;
    *m) s=$(( \${1%m} * 60 )) ;;
    *) s=$1 ;;
  esac
  [ "$s" -ge 1 ] 2>/dev/null || s=1
  echo "$s"
}

resolve() {
  case "$1" in
    *[!0-9.]*) nslookup "$1" 127.0.0.11 2>/dev/null |
      awk '/^Name:/ { named = 1; next } named && /^Address/ { sub(/^Address[^:]*:[ \\t]*/, ""); print; exit }' ;;
    *) echo "$1" ;;
  esac
}

status_of() {
  addr=$(resolve "$1")
  [ -n "$addr" ] || return 0
  printf 'GET %s HTTP/1.0\\r\\nHost: %s\\r\\n\\r\\n' "$3" "$1" | nc -w 2 "$addr" "$2" 2>/dev/null | head -1 | awk '{ print $2 }'
}

# The flags of kamal-proxy v0.9's "deploy" (internal/cmd/deploy.go): anything else is refused as cobra refuses it.
flag_kind() {
  case "$1" in
    tls|tls-staging|tls-redirect|buffer-requests|buffer-responses|forward-headers|strip-path-prefix|read-target-websockets) echo bool ;;
    deploy-timeout|drain-timeout|health-check-interval|health-check-timeout|writer-affinity-timeout|target-timeout) echo duration ;;
    buffer-memory|max-request-body|max-response-body|health-check-port) echo int ;;
    target|read-target|host|path-prefix|tls-certificate-path|tls-private-key-path|health-check-path|error-pages|log-request-header|log-response-header) echo string ;;
    *) echo unknown ;;
  esac
}

refuse() {
  echo "Error: $1" >&2
  echo "Run 'kamal-proxy deploy --help' for usage." >&2
  exit 1
}

check_value() {
  case "$(flag_kind "$1")" in
    bool) case "$2" in 1|t|T|TRUE|true|True|0|f|F|FALSE|false|False) ;; *) refuse "invalid argument \\"$2\\" for \\"--$1\\" flag: strconv.ParseBool: parsing \\"$2\\": invalid syntax" ;; esac ;;
    duration) echo "$2" | grep -Eq '^([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+$' || refuse "invalid argument \\"$2\\" for \\"--$1\\" flag: time: invalid duration \\"$2\\"" ;;
    int) echo "$2" | grep -Eq '^-?[0-9]+$' || refuse "invalid argument \\"$2\\" for \\"--$1\\" flag: strconv.ParseInt: parsing \\"$2\\": invalid syntax" ;;
  esac
}

is_true() {
  case "$1" in 1|t|T|TRUE|true|True) return 0 ;; esac
  return 1
}

deploy() {
  service=""; target=""; path=/up; timeout=30s; flags=""; seen=" "
  while [ $# -gt 0 ]; do
    case "$1" in
      --*=*) name=\${1%%=*}; name=\${name#--}; value=\${1#*=} ;;
      --*)
        name=\${1#--}
        if [ "$(flag_kind "$name")" = bool ]; then
          value=true
        elif [ "$(flag_kind "$name")" = unknown ]; then
          value=""
        elif [ $# -lt 2 ]; then
          refuse "flag needs an argument: --$name"
        else
          value=$2; shift
        fi ;;
      *)
        if [ -n "$service" ]; then refuse "accepts 1 arg(s), received 2"; fi
        service=$1; shift; continue ;;
    esac
    shift
    [ "$(flag_kind "$name")" != unknown ] || refuse "unknown flag: --$name"
    check_value "$name" "$value"
    case "$(flag_kind "$name")" in bool) flag="--$name" ; is_true "$value" || flag="--$name=$value" ;; *) flag="--$name=$value" ;; esac
    case "$name" in
      target) target=$value ;;
      health-check-path) path=$value ;;
      deploy-timeout) timeout=$value ;;
    esac
    seen="$seen$name "
    [ "$(flag_kind "$name")" = bool ] && ! is_true "$value" && seen="$seen!$name "
    flags="$flags$flag
"
  done
  [ -n "$service" ] || refuse "accepts 1 arg(s), received 0"
  [ -n "$target" ] || refuse 'required flag(s) "target" not set'
  case "$seen" in *" tls-certificate-path "*) case "$seen" in *" tls-private-key-path "*) ;; *) refuse "if any flags in the group [tls-certificate-path tls-private-key-path] are set they must all be set; missing [tls-private-key-path]" ;; esac ;; esac
  case "$seen" in *" tls-private-key-path "*) case "$seen" in *" tls-certificate-path "*) ;; *) refuse "if any flags in the group [tls-certificate-path tls-private-key-path] are set they must all be set; missing [tls-certificate-path]" ;; esac ;; esac
  case "$seen" in *" max-request-body "*) case "$seen" in *" buffer-requests "*) ;; *) refuse "max-request-body can only be set when request buffering is enabled" ;; esac ;; esac
  case "$seen" in *" max-response-body "*) case "$seen" in *" buffer-responses "*) ;; *) refuse "max-response-body can only be set when response buffering is enabled" ;; esac ;; esac
  case "$seen" in *" tls "*) case "$seen" in *" !tls "*) ;; *) case "$seen" in *" host "*) ;; *) refuse "host must be set when using TLS" ;; esac ;; esac ;; esac
  host=\${target%:*}; port=\${target##*:}
  [ "$host" != "$target" ] || port=80
  limit=$(seconds_of "$timeout")
  start=$(date +%s)
  checks=0
  mkdir -p "$STATE_DIR"
  while :; do
    code=$(status_of "$host" "$port" "$path")
    case "$code" in 2??) break ;; esac
    if [ $(( $(date +%s) - start )) -ge "$limit" ]; then
      echo "$service $target failed" >> "$HISTORY"
      echo "Error: target failed to become healthy within configured timeout ($timeout)" >&2
      exit 1
    fi
    # A fresh container often answers a few ms after the first check: 20 ms apart for the first
    # half second, so a rollback's time is not set by where a 200 ms poll happened to fall.
    checks=$((checks + 1))
    if [ "$checks" -le 25 ]; then usleep 20000; else usleep 200000; fi
  done
  { echo "target=$target"; printf '%s' "$flags"; } > "$STATE_DIR/.$service.new" && mv "$STATE_DIR/.$service.new" "$STATE_DIR/$service"
  echo "$service $target deployed" >> "$HISTORY"
  echo "Deployed $service to $target"
}

# kamal-proxy v0.9's "list" (internal/cmd/list.go, formatting.go): services sorted, columns padded to
# their widest cell plus two spaces, every cell wrapped in ANSI styles (header italic, names bold).
list() {
  for file in "$STATE_DIR"/*; do
    [ -f "$file" ] || continue
    awk -v name="$(basename "$file")" '
      /^target=/ { target = substr($0, 8) }
      /^--host=/ { hosts = hosts (hosts == "" ? "" : ",") substr($0, 8) }
      /^--path-prefix=/ { paths = paths (paths == "" ? "" : ",") substr($0, 15) }
      $0 == "--tls" || $0 == "--tls=true" { tls = "yes" }
      END { printf "%s\\t%s\\t%s\\t%s\\t%s\\t%s\\n", name, hosts, (paths == "" ? "/" : paths), target, "running", (tls == "" ? "no" : tls) }
    ' "$file"
  done | awk -F '\\t' '
    BEGIN { rows = 1; split("Service Host Path Target State TLS", head, " "); for (i = 1; i <= 6; i++) { cell[1, i] = head[i]; width[i] = length(head[i]) } }
    { rows++; for (i = 1; i <= 6; i++) { cell[rows, i] = $i; if (length($i) > width[i]) width[i] = length($i) } }
    END {
      for (r = 1; r <= rows; r++) {
        line = ""
        for (i = 1; i <= 6; i++) {
          style = (r == 1) ? "3;94" : (i == 1 ? "1;34" : "")
          pad = ""; for (k = length(cell[r, i]); k < width[i]; k++) pad = pad " "
          line = line "\\033[" style "m" cell[r, i] "\\033[0m" pad "  "
        }
        print line
      }
    }'
}

command=$1
[ $# -gt 0 ] && shift
case "$command" in
  run)
    trap 'exit 0' TERM INT
    while :; do sleep 3600 & wait $!; done ;;
  deploy) deploy "$@" ;;
  remove) rm -f "$STATE_DIR/$1" ;;
  stop|resume) echo "$command $*" >> "$HISTORY" ;;
  version) echo v0.9.0 ;;
  list|ls) [ $# -eq 0 ] || refuse "unknown command \\"$1\\" for \\"kamal-proxy list\\""; list ;;
  *) echo "Error: unknown command \\"$command\\" for \\"kamal-proxy\\"" >&2; exit 1 ;;
esac
`;

function busyboxSource(): string {
  const found = BUSYBOX_SOURCES.find((path) => existsSync(path));
  if (!found) throw new Error('busybox is not installed (apt-get install busybox-static)');
  return found;
}

function makeBusyboxRoot(root: string): void {
  mkdirSync(join(root, 'bin'), { recursive: true });
  for (const dir of ['tmp', 'etc', 'www', 'state', 'usr/local/bin', 'root']) mkdirSync(join(root, dir), { recursive: true });
  copyFileSync(busyboxSource(), join(root, BUSYBOX));
  chmodSync(join(root, BUSYBOX), 0o755);
  for (const applet of APPLETS) {
    if (!existsSync(join(root, 'bin', applet))) symlinkSync('busybox', join(root, 'bin', applet));
  }
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\n');
}

// The applets the entrypoints and tests use; a fixed list keeps the image identical across machines.
const APPLETS = [
  'sh', 'httpd', 'nc', 'nslookup', 'awk', 'sed', 'cat', 'echo', 'printf', 'head', 'date', 'sleep', 'usleep',
  'mkdir', 'mv', 'rm', 'ls', 'basename', 'kill', 'ps', 'env', 'grep', 'test', '[', 'true', 'false', 'hostname', 'id', 'wc',
];

function writeExecutable(path: string, text: string): void {
  writeFileSync(path, text);
  chmodSync(path, 0o755);
}

interface BuiltImage {
  tag: string;
  rootfsTar: string;
  cmd: string[];
}

function buildRootfsTars(workDir: string, repository: string, images: readonly AppImageSpec[]): Promise<BuiltImage[]> {
  const built: Promise<BuiltImage>[] = images.map(async (spec, index) => {
    const root = join(workDir, `app-${index}`);
    makeBusyboxRoot(root);
    writeExecutable(join(root, 'entrypoint'), APP_ENTRYPOINT);
    writeFileSync(join(root, 'www/version'), `${spec.version}\n`);
    if (!spec.unhealthy) writeFileSync(join(root, 'www/up'), 'ok\n');
    if (spec.exitsImmediately) writeFileSync(join(root, 'exits-immediately'), '');
    if (spec.assets) {
      mkdirSync(join(root, 'rails/public/assets'), { recursive: true });
      for (const [name, content] of Object.entries(spec.assets)) writeFileSync(join(root, 'rails/public/assets', name), content);
      symlinkSync('/rails/public/assets', join(root, 'www/assets'));
    }
    const rootfsTar = join(workDir, `app-${index}.tar`);
    await runOk('tar', ['-C', root, '-cf', rootfsTar, '.']);
    return { tag: `${spec.repository ?? repository}:${spec.version}`, rootfsTar, cmd: ['/entrypoint'] };
  });
  const proxy = (async (): Promise<BuiltImage> => {
    const root = join(workDir, 'proxy');
    makeBusyboxRoot(root);
    writeExecutable(join(root, 'usr/local/bin/kamal-proxy'), KAMAL_PROXY_SCRIPT);
    const rootfsTar = join(workDir, 'proxy.tar');
    await runOk('tar', ['-C', root, '-cf', rootfsTar, '.']);
    return { tag: KAMAL_PROXY_IMAGE, rootfsTar, cmd: ['kamal-proxy', 'run'] };
  })();
  return Promise.all([...built, proxy]);
}

const CACHE_MAX_AGE_MS = 3 * 24 * 3600 * 1000;

/** Archives unused for days belong to image specs no test asks for any more. */
function pruneCache(cacheDir: string, keep: string): void {
  for (const entry of readdirSync(cacheDir)) {
    const file = join(cacheDir, entry);
    try {
      if (file !== keep && entry.endsWith('.tar') && Date.now() - statSync(file).mtimeMs > CACHE_MAX_AGE_MS) rmSync(file, { force: true });
    } catch {
      // removed by a parallel run
    }
  }
}

export function imageArchiveKey(repository: string, images: readonly AppImageSpec[]): string {
  const busybox = statSync(busyboxSource());
  return createHash('sha256')
    .update(JSON.stringify({ repository, images, busybox: [busybox.size, busybox.mtimeMs], APP_ENTRYPOINT, KAMAL_PROXY_SCRIPT, APPLETS }))
    .digest('hex')
    .slice(0, 16);
}

/**
 * Returns a `docker save` archive holding the app images and the proxy stand-in, building it
 * with the given daemon unless an identical archive is already cached.
 */
export async function imageArchive(
  cacheDir: string,
  workDir: string,
  repository: string,
  images: readonly AppImageSpec[],
  docker: (args: string[]) => Promise<string>,
): Promise<{ path: string; builtOnDaemon: boolean; tags: string[] }> {
  mkdirSync(cacheDir, { recursive: true });
  const tags = [...images.map((spec) => `${spec.repository ?? repository}:${spec.version}`), KAMAL_PROXY_IMAGE];
  const path = join(cacheDir, `images-${imageArchiveKey(repository, images)}.tar`);
  pruneCache(cacheDir, path);
  if (existsSync(path)) {
    const now = new Date();
    utimesSync(path, now, now);
    return { path, builtOnDaemon: false, tags };
  }
  mkdirSync(workDir, { recursive: true });
  const built = await buildRootfsTars(workDir, repository, images);
  for (const image of built) {
    await docker(['import', '--change', `CMD ${JSON.stringify(image.cmd)}`, image.rootfsTar, image.tag]);
  }
  const partial = `${path}.${process.pid}.partial`;
  await docker(['save', '-o', partial, ...tags]);
  // rename is atomic, so a concurrent run never loads a half-written archive.
  renameSync(partial, path);
  for (const entry of readdirSync(workDir)) rmSync(join(workDir, entry), { recursive: true, force: true });
  return { path, builtOnDaemon: true, tags };
}
