import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CommitResolver, NOT_IN_CLONE, ReleaseCodeReader, type CodeTarget, parseKamalVersion, gitDateToIso, pullRequestOf, repositoryNameOfUrl, lookupNames } from '../../../src/core/commits';
import type { Reporter } from '../../../src/core/model';
import { makeAppRepo } from '../../fixtures/app-repo';
import { runGit } from '../../fixtures/gitops';
import { useTempDirs } from '../gitops/helpers';

function recordingReporter(): Reporter & { lines: string[] } {
  const lines: string[] = [];
  const push = (level: string) => (message: string) => void lines.push(`${level}: ${message}`);
  return { lines, step: push('step'), info: push('info'), debug: push('debug'), warn: push('warn'), error: push('error') };
}

describe('commits: version → commit', () => {
  const tempDir = useTempDirs();

  it('reads a Kamal version as the commit it names: full sha, short sha, author, dates, parents', async () => {
    const repo = makeAppRepo(path.join(tempDir(), 'shop'));
    const resolver = new CommitResolver();
    const full = repo.sha('c5');
    const short = repo.sha('c3').slice(0, 7);
    const found = await resolver.resolve(repo.root, [full, short]);
    const commit = found.get(full)?.commit;
    assert.ok(commit, `found ${full}`);
    assert.equal(commit.sha, full);
    assert.equal(commit.subject, 'Add checkout (#15)');
    assert.deepEqual(commit.pullRequest, { number: '15', title: 'Add checkout' }, 'a squash merge names its pull request');
    assert.equal(commit.authorName, 'Bob Builder');
    assert.equal(commit.authorEmail, 'bob@example.com');
    // What git itself prints for the same commit, not a format we wrote.
    assert.equal(commit.authorDate, runGit(['log', '-1', '--format=%aI', full], repo.root).trim());
    assert.equal(commit.commitDate, runGit(['log', '-1', '--format=%cI', full], repo.root).trim());
    assert.deepEqual(commit.parents, [repo.sha('c4')]);
    assert.equal(found.get(short)?.commit?.sha, repo.sha('c3'));
    assert.equal(found.get(short)?.commit?.message, 'Fix price rounding in the cart');
    assert.equal(resolver.processes, 1);
  });

  it('strips `_uncommitted_<hex>` and marks the release as built from uncommitted changes', async () => {
    const repo = makeAppRepo(path.join(tempDir(), 'shop'));
    const version = `${repo.sha('c6')}_uncommitted_5ad7c0a9e1b8f23d`;
    assert.deepEqual(parseKamalVersion(version), { ref: repo.sha('c6'), uncommitted: true });
    assert.deepEqual(parseKamalVersion(repo.sha('c6')), { ref: repo.sha('c6'), uncommitted: false });
    const reader = new ReleaseCodeReader({ folders: () => [] });
    fs.mkdirSync(path.join(repo.root, 'config'), { recursive: true });
    const release: CodeTarget = { version };
    await reader.attachKamalCode(path.join(repo.root, 'config', 'deploy.yml'), [release]);
    assert.equal(release.code?.ref, repo.sha('c6'));
    assert.equal(release.code?.uncommitted, true);
    assert.equal(release.code?.commit?.subject, 'Bump rack to 3.1.8');
    assert.equal(release.code?.repository, repo.root);
  });

  it('reads a non-sha version as a tag, peeling annotated tags to their commit', async () => {
    const repo = makeAppRepo(path.join(tempDir(), 'shop'), { tags: true });
    runGit(['tag', 'v2-light', repo.sha('m1')], repo.root);
    // A tag that looks like a short sha (no object has that prefix): found in the second round, same process.
    runGit(['tag', '-a', 'deadbee', '-m', 'hex-looking tag', repo.sha('c2')], repo.root);
    assert.equal(runGit(['cat-file', '-t', 'v2'], repo.root).trim(), 'tag', 'v2 is an annotated tag object');
    const resolver = new CommitResolver();
    const found = await resolver.resolve(repo.root, ['v2', 'v2-light', 'v3', 'deadbee']);
    assert.equal(found.get('deadbee')?.commit?.sha, repo.sha('c2'));
    assert.equal(found.get('v2')?.commit?.sha, repo.sha('m1'));
    assert.equal(found.get('v2-light')?.commit?.sha, repo.sha('m1'));
    assert.equal(found.get('v3')?.commit?.sha, repo.sha('c6'));
    assert.equal(resolver.processes, 1);
  });

  it('reads a merged pull request as GitLens does: its number and the body line as the title', async () => {
    const repo = makeAppRepo(path.join(tempDir(), 'shop'));
    const merge = (await new CommitResolver().commit(repo.root, repo.sha('m1'))).commit;
    assert.equal(merge?.subject, 'Merge pull request #12 from acme/search');
    assert.deepEqual(merge?.pullRequest, { number: '12', title: 'Add product search' });
    assert.equal(merge?.parents.length, 2);
    assert.equal(pullRequestOf('Merge pull request #3 from a/b', 2)?.title, 'Merge pull request #3 from a/b', 'no body: the subject stays the title');
    assert.equal(pullRequestOf('Merge pull request #3 from a/b', 1), undefined, 'not a merge: not read as one');
    assert.equal(pullRequestOf('Plain commit', 1), undefined);
  });

  it('says a version it cannot find is not in the local clone, without an error and without a branch standing in for it', async () => {
    const repo = makeAppRepo(path.join(tempDir(), 'shop'));
    runGit(['branch', 'latest'], repo.root);
    const reporter = recordingReporter();
    const resolver = new CommitResolver(reporter);
    const unknown = 'f'.repeat(40);
    const found = await resolver.resolve(repo.root, [unknown, 'latest', 'HEAD~1', '--output=/tmp/x']);
    assert.deepEqual(found.get(unknown), { missing: NOT_IN_CLONE });
    assert.deepEqual(found.get('latest'), { missing: NOT_IN_CLONE }, 'a branch is not a release version');
    assert.match(found.get('HEAD~1')?.missing ?? '', /not a commit sha or tag name/);
    assert.match(found.get('--output=/tmp/x')?.missing ?? '', /not a commit sha or tag name/);
    assert.deepEqual(lookupNames('HEAD~1'), []);
    assert.equal(reporter.lines.filter((line) => !line.startsWith('debug')).length, 0, 'no error noise');
  });

  it('says once, for all the releases it misses, that they are not in the clone', async () => {
    const repo = makeAppRepo(path.join(tempDir(), 'shop'));
    const reporter = recordingReporter();
    const reader = new ReleaseCodeReader({ folders: () => [], reporter });
    const config = path.join(repo.root, 'config', 'deploy.yml');
    const releases = () => [{ version: 'a'.repeat(40) }, { version: 'b'.repeat(40) }, { version: repo.sha('c1') }];
    await reader.attachKamalCode(config, releases());
    await reader.attachKamalCode(config, releases());
    const said = reporter.lines.filter((line) => line.startsWith('info'));
    assert.equal(said.length, 1, said.join('\n'));
    assert.match(said[0], /2 releases .* are not in your local clone: fetch to see it/);
  });

  it('in a shallow clone, finds what the clone has and says why the rest is missing', async () => {
    const dir = tempDir();
    const repo = makeAppRepo(path.join(dir, 'shop'));
    const clone = path.join(dir, 'clone');
    runGit(['clone', '-q', '--depth', '2', `file://${repo.root}`, clone], dir);
    const resolver = new CommitResolver();
    const found = await resolver.resolve(clone, [repo.sha('c7'), repo.sha('c6'), repo.sha('c1')]);
    assert.equal(found.get(repo.sha('c7'))?.commit?.subject, 'Faster search results (#17)');
    assert.equal(found.get(repo.sha('c6'))?.commit?.subject, 'Bump rack to 3.1.8');
    assert.match(found.get(repo.sha('c1'))?.missing ?? '', /not in your local clone: fetch to see it \(this clone is shallow: git fetch --unshallow/);
  });

  it('caches per repository state: the same refs cost no second process until HEAD moves or a fetch lands', async () => {
    const repo = makeAppRepo(path.join(tempDir(), 'shop'));
    const resolver = new CommitResolver();
    const refs = repo.commits.map((commit) => commit.sha);
    await resolver.resolve(repo.root, refs);
    await resolver.resolve(repo.root, refs);
    assert.equal(resolver.processes, 1);
    fs.writeFileSync(path.join(repo.root, 'NEWS'), 'news\n');
    runGit(['add', 'NEWS'], repo.root);
    runGit(['commit', '-q', '-m', 'News'], repo.root);
    const head = runGit(['rev-parse', 'HEAD'], repo.root).trim();
    const found = await resolver.resolve(repo.root, [...refs, head]);
    assert.equal(resolver.processes, 2, 'HEAD moved: read again');
    assert.equal(found.get(head)?.commit?.subject, 'News');
  });

  it('writes dates as git does and names remotes by owner/name', () => {
    assert.equal(gitDateToIso(1767603600, '+0100'), '2026-01-05T10:00:00+01:00');
    assert.equal(gitDateToIso(1767603600, '-0530'), '2026-01-05T03:30:00-05:30');
    assert.equal(repositoryNameOfUrl('git@github.com:Acme/Shop.git'), 'acme/shop');
    assert.equal(repositoryNameOfUrl('https://github.com/acme/shop'), 'acme/shop');
    assert.equal(repositoryNameOfUrl('ssh://git@gitlab.example.com:2222/group/acme/shop.git/'), 'acme/shop');
    assert.equal(repositoryNameOfUrl('/srv/git/acme/shop.git'), 'acme/shop');
  });
});
