import { strict as assert } from 'node:assert';
import { fullShaProblem } from '../../../src/core/gitops/git';
import { isPushRace } from '../../../src/core/gitops/rollback';

const SHA = '0123456789abcdef0123456789abcdef01234567';

describe('gitops --to messages', () => {
  it('accepts exactly 40 lowercase hex characters', () => {
    assert.equal(fullShaProblem(SHA), undefined);
  });

  it('says exactly what is wrong with each kind of value', () => {
    assert.equal(fullShaProblem(SHA.toUpperCase()), `"${SHA.toUpperCase()}" has uppercase letters; git shas are lowercase: use ${SHA}`);
    assert.equal(fullShaProblem(`${SHA}8`), `"${SHA}8" is 41 characters long; a full sha has exactly 40 (a character too many was copied?)`);
    assert.equal(fullShaProblem(` ${SHA}\n`), `" ${SHA}\\n" has spaces around it: give the sha alone (${SHA})`);
    assert.equal(fullShaProblem('HEAD~1'), `"HEAD~1" is a revision expression, not a sha: give the release's full 40-hex sha (git rev-parse HEAD~1 prints one, but check it is a release)`);
    assert.equal(fullShaProblem('v2.0.0'), `"v2.0.0" is not a sha (it contains "v"; a tag, branch or version?): give the release's full 40-hex gitops sha, as "releases --json" lists in "id"`);
    assert.equal(fullShaProblem(SHA.slice(0, 7)), `"${SHA.slice(0, 7)}" is a short sha (7 characters): give the full 40-hex sha, a short one could name another commit`);
    assert.equal(fullShaProblem(''), 'it is empty: give the full 40-hex gitops sha of the release');
  });
});

describe('gitops push races', () => {
  // git's own porcelain output for each kind of lost race, and for refusals that are not races.
  const races = {
    'fetch first': 'To /r.git\n!\trefs/heads/main:refs/heads/main\t[rejected] (fetch first)\nDone',
    'non-fast-forward': 'To /r.git\n!\tabc:refs/heads/main\t[rejected] (non-fast-forward)\nDone',
    'stale info': 'To /r.git\n!\trefs/heads/main:refs/heads/main\t[rejected] (stale info)\nDone',
    'cannot lock ref': "To /r.git\n!\tabc:refs/heads/main\t[remote rejected] (cannot lock ref 'refs/heads/main': is at 1111111111111111111111111111111111111111 but expected 2222222222222222222222222222222222222222)\nDone",
    'lock file': "remote: error: cannot lock ref 'refs/heads/main': Unable to create '/r.git/refs/heads/main.lock': File exists.\nTo /r.git\n!\tabc:refs/heads/main\t[remote rejected] (failed to update ref)\nDone",
  };
  for (const [name, output] of Object.entries(races)) {
    it(`retries on ${name}`, () => assert.equal(isPushRace(output), true));
  }

  it('does not retry a hook refusal, a permission error or a connection failure', () => {
    assert.equal(isPushRace('remote: pushes are frozen\nTo /r.git\n!\tabc:refs/heads/main\t[remote rejected] (pre-receive hook declined)\nDone'), false);
    assert.equal(isPushRace("ERROR: Permission to acme/gitops.git denied to bot.\nfatal: Could not read from remote repository."), false);
    assert.equal(isPushRace('fatal: unable to access: Could not resolve host: example.invalid'), false);
  });
});
