import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { appendKnownHost, checkKnownHosts, fingerprintSha256, keyTypeOfBlob, knownHostsLine } from '../../../src/core/ssh/knownHosts';

// Two real-looking ed25519 blobs and an rsa one; checkKnownHosts compares base64 text, so any base64 works.
const KEY_A = 'AAAAC3NzaC1lZDI1NTE5AAAAIDTYcYEkSRwF1LCkPRsJ0fgxhbqCl+0rTSBTYK2XoP7o';
const KEY_B = 'AAAAC3NzaC1lZDI1NTE5AAAAIHlvZFk7IzPyJoXxI/2Z4c5fUC4cv2k3WtcV0Oxr6Rp9';
const KEY_RSA = 'AAAAB3NzaC1yc2EAAAADAQABAAABAQC7';

describe('known_hosts checks', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'dr-known-hosts-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('matches a plain entry for port 22 by bare host name', () => {
    assert.equal(checkKnownHosts(`web-1 ssh-ed25519 ${KEY_A}\n`, 'web-1', 22, 'ssh-ed25519', KEY_A), 'match');
  });

  it('matches one of several comma-separated names and wildcards', () => {
    const text = `# comment\n\nweb-1,10.0.0.5 ssh-ed25519 ${KEY_A}\n*.example.com ssh-ed25519 ${KEY_B}\n`;
    assert.equal(checkKnownHosts(text, '10.0.0.5', 22, 'ssh-ed25519', KEY_A), 'match');
    assert.equal(checkKnownHosts(text, 'db.example.com', 22, 'ssh-ed25519', KEY_B), 'match');
  });

  it('needs the [host]:port form for a non-22 port', () => {
    assert.equal(checkKnownHosts(`web-1 ssh-ed25519 ${KEY_A}\n`, 'web-1', 2222, 'ssh-ed25519', KEY_A), 'unknown');
    assert.equal(checkKnownHosts(`[web-1]:2222 ssh-ed25519 ${KEY_A}\n`, 'web-1', 2222, 'ssh-ed25519', KEY_A), 'match');
    assert.equal(checkKnownHosts(`[web-1]:2222 ssh-ed25519 ${KEY_A}\n`, 'web-1', 22, 'ssh-ed25519', KEY_A), 'unknown');
  });

  it('says unknown when no line names the host', () => {
    assert.equal(checkKnownHosts(`web-2 ssh-ed25519 ${KEY_A}\n`, 'web-1', 22, 'ssh-ed25519', KEY_A), 'unknown');
    assert.equal(checkKnownHosts('', 'web-1', 22, 'ssh-ed25519', KEY_A), 'unknown');
  });

  it('reports a changed key of the same type with the offending line number', () => {
    const text = `other ssh-ed25519 ${KEY_A}\n\nweb-1 ssh-ed25519 ${KEY_B}\n`;
    assert.deepEqual(checkKnownHosts(text, 'web-1', 22, 'ssh-ed25519', KEY_A), { changed: 3 });
  });

  it('treats a known key of another type as unknown, not changed', () => {
    assert.equal(checkKnownHosts(`web-1 ssh-rsa ${KEY_RSA}\n`, 'web-1', 22, 'ssh-ed25519', KEY_A), 'unknown');
  });

  it('prefers a match over another stale line for the same host', () => {
    const text = `web-1 ssh-ed25519 ${KEY_B}\nweb-1 ssh-ed25519 ${KEY_A}\n`;
    assert.equal(checkKnownHosts(text, 'web-1', 22, 'ssh-ed25519', KEY_A), 'match');
  });

  it('refuses a key marked @revoked even when a plain line also lists it', () => {
    const text = `web-1 ssh-ed25519 ${KEY_A}\n@revoked * ssh-ed25519 ${KEY_A}\n`;
    assert.equal(checkKnownHosts(text, 'web-1', 22, 'ssh-ed25519', KEY_A), 'revoked');
    assert.deepEqual(checkKnownHosts(text, 'web-1', 22, 'ssh-ed25519', KEY_B), { changed: 1 });
  });

  it('lets ? match exactly one character, as OpenSSH does', () => {
    const text = `web-? ssh-ed25519 ${KEY_A}\n`;
    assert.equal(checkKnownHosts(text, 'web-1', 22, 'ssh-ed25519', KEY_A), 'match');
    assert.equal(checkKnownHosts(text, 'web-', 22, 'ssh-ed25519', KEY_A), 'unknown');
    assert.equal(checkKnownHosts(text, 'web-12', 22, 'ssh-ed25519', KEY_A), 'unknown');
  });

  it('ignores @cert-authority lines', () => {
    assert.equal(checkKnownHosts(`@cert-authority * ssh-ed25519 ${KEY_B}\n`, 'web-1', 22, 'ssh-ed25519', KEY_A), 'unknown');
  });

  it('skips a negated pattern', () => {
    assert.equal(checkKnownHosts(`*.example.com,!bad.example.com ssh-ed25519 ${KEY_A}\n`, 'bad.example.com', 22, 'ssh-ed25519', KEY_A), 'unknown');
    assert.equal(checkKnownHosts(`*.example.com,!bad.example.com ssh-ed25519 ${KEY_A}\n`, 'ok.example.com', 22, 'ssh-ed25519', KEY_A), 'match');
  });

  it('matches entries hashed by ssh-keygen -H, for port 22 and [host]:port', () => {
    const file = path.join(dir, 'hashed');
    writeFileSync(file, `web-1 ssh-ed25519 ${KEY_A}\n[web-2]:2222 ssh-ed25519 ${KEY_B}\n`);
    execFileSync('ssh-keygen', ['-H', '-f', file], { stdio: 'ignore' });
    const hashed = readFileSync(file, 'utf8');
    assert.match(hashed, /^\|1\|[^|]+\|[^ ]+ ssh-ed25519 /m);
    assert.doesNotMatch(hashed, /web-1|web-2/);
    assert.equal(checkKnownHosts(hashed, 'web-1', 22, 'ssh-ed25519', KEY_A), 'match');
    assert.equal(checkKnownHosts(hashed, 'web-2', 2222, 'ssh-ed25519', KEY_B), 'match');
    assert.deepEqual(checkKnownHosts(hashed, 'web-2', 2222, 'ssh-ed25519', KEY_A), { changed: 2 });
    assert.equal(checkKnownHosts(hashed, 'web-3', 22, 'ssh-ed25519', KEY_A), 'unknown');
  });

  it('computes the SHA256 fingerprint exactly as ssh-keygen -lf prints it', () => {
    const keyFile = path.join(dir, 'id_fp');
    execFileSync('ssh-keygen', ['-q', '-t', 'ecdsa', '-N', '', '-f', keyFile]);
    const publicLine = readFileSync(`${keyFile}.pub`, 'utf8').trim().split(' ');
    const blob = Buffer.from(publicLine[1], 'base64');
    const printed = execFileSync('ssh-keygen', ['-lf', `${keyFile}.pub`], { encoding: 'utf8' }).split(' ')[1];
    assert.match(printed, /^SHA256:[A-Za-z0-9+/]{43}$/);
    assert.equal(fingerprintSha256(blob), printed);
    assert.equal(keyTypeOfBlob(blob), 'ecdsa-sha2-nistp256');
  });

  it('formats appended lines like OpenSSH, bracketing non-22 ports', () => {
    assert.equal(knownHostsLine('web-1', 22, 'ssh-ed25519', KEY_A), `web-1 ssh-ed25519 ${KEY_A}\n`);
    assert.equal(knownHostsLine('127.0.0.1', 2222, 'ssh-ed25519', KEY_A), `[127.0.0.1]:2222 ssh-ed25519 ${KEY_A}\n`);
  });

  it('creates ~/.ssh 0700 and known_hosts 0600, and keeps lines separate when the file lacks a final newline', async () => {
    const home = path.join(dir, 'home');
    const file = path.join(home, '.ssh', 'known_hosts');
    await appendKnownHost(file, 'web-1', 22, 'ssh-ed25519', KEY_A);
    assert.equal(statSync(path.dirname(file)).mode & 0o777, 0o700);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    writeFileSync(file, `${readFileSync(file, 'utf8').trimEnd()}`);
    await appendKnownHost(file, 'web-2', 2200, 'ssh-ed25519', KEY_B);
    assert.equal(readFileSync(file, 'utf8'), `web-1 ssh-ed25519 ${KEY_A}\n[web-2]:2200 ssh-ed25519 ${KEY_B}\n`);
  });
});
