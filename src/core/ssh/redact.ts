/**
 * The one place remote command lines are made safe to log. Our command builders pass secrets
 * through env files, never argv, so this is a second line of defence for anything else.
 */

const SECRET_NAME = /(PASSWORD|PASSWD|PASS|SECRET|TOKEN|KEY|CREDENTIAL|PRIVATE|AUTH|API_?KEY|SESSION|COOKIE|SALT|CERT)/i;
const MASK = '[REDACTED]';

// A shell word: single-quoted, double-quoted or bare (with backslash escapes).
const WORD = String.raw`(?:'[^']*'|"(?:[^"\\]|\\.)*"|(?:[^\s'"\\]|\\.)+)+`;

// `--env 'NAME=a b'` as src/core/shell.ts quotes it (an inner ' becomes '\'').
const QUOTED_ENV_FLAG = /(^|\s)(-e|--env)(\s+|=)'([A-Za-z_][A-Za-z0-9_]*)=(?:[^']|'\\'')*'/g;
const ENV_FLAG = new RegExp(String.raw`(^|\s)(-e|--env)(\s+|=)([A-Za-z_][A-Za-z0-9_]*)=(${WORD})`, 'g');
const PASSWORD_FLAG = new RegExp(String.raw`(^|\s)(--password|--passphrase|--token)(\s+|=)(${WORD})`, 'g');
// `-p` means a password only to `login` commands; elsewhere it is `mkdir -p`, `--publish`...
const LOGIN_PASSWORD_FLAG = new RegExp(String.raw`(\blogin\b[^;&|]*?\s)(-p)(\s+|=)(${WORD})`, 'g');
const ASSIGNMENT = new RegExp(String.raw`(^|\s)([A-Za-z_][A-Za-z0-9_]*)=(${WORD})`, 'g');
const URL_CREDENTIALS = /(\b[a-z][a-z0-9+.-]*:\/\/[^\s:/@]+:)[^\s@/]+@/gi;

/** Masks secret-looking values: `--env KEY=…`, `--password` args (and `-p` after `login`), `NAME=…` assignments, URL passwords. */
export function redactSecrets(line: string): string {
  return line
    .replace(QUOTED_ENV_FLAG, (whole, lead: string, flag: string, sep: string, name: string) =>
      SECRET_NAME.test(name) ? `${lead}${flag}${sep}'${name}=${MASK}'` : whole,
    )
    .replace(ENV_FLAG, (whole, lead: string, flag: string, sep: string, name: string) =>
      SECRET_NAME.test(name) ? `${lead}${flag}${sep}${name}=${MASK}` : whole,
    )
    .replace(PASSWORD_FLAG, (_whole, lead: string, flag: string, sep: string) => `${lead}${flag}${sep}${MASK}`)
    .replace(LOGIN_PASSWORD_FLAG, (_whole, lead: string, flag: string, sep: string) => `${lead}${flag}${sep}${MASK}`)
    .replace(ASSIGNMENT, (whole, lead: string, name: string) => (SECRET_NAME.test(name) ? `${lead}${name}=${MASK}` : whole))
    .replace(URL_CREDENTIALS, `$1${MASK}@`);
}
