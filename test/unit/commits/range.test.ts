import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { changedFiles, codeChangeBetween, codeChangeLines, codeChangeSummary, CommitResolver, ReleaseCodeReader } from '../../../src/core/commits';
import type { RollbackPlan } from '../../../src/core/model';
import { makeAppRepo } from '../../fixtures/app-repo';
import { runGit } from '../../fixtures/gitops';
import { useTempDirs } from '../gitops/helpers';

function plan(from: string, to: string, direction: 'back' | 'forward' = 'back'): RollbackPlan {
  return { source: 'kamal', environment: 'default', app: 'shop', from, to, direction, summary: '', lines: ['Roll back'], detail: {} };
}

describe('commits: what a rollback undoes', () => {
  const tempDir = useTempDirs();

  it('lists the commits a rollback takes out, first-parent, newest first, as git log --first-parent does', async () => {
    const repo = makeAppRepo(path.join(tempDir(), 'shop'));
    const change = await codeChangeBetween(new CommitResolver(), repo.root, repo.sha('r3'), repo.sha('r2'), 'back');
    assert.deepEqual(change.commits.map((commit) => commit.subject), ['Bump rack to 3.1.8', 'Add checkout (#15)', 'Cache product pages']);
    assert.equal(change.total, 3);
    const gitSays = runGit(['log', '--first-parent', '--format=%H', `${repo.sha('r2')}..${repo.sha('r3')}`], repo.root).trim().split('\n');
    assert.deepEqual(change.commits.map((commit) => commit.sha), gitSays);
    assert.equal(change.diverged, undefined);
    assert.equal(codeChangeSummary(change), 'this rollback undoes 3 commits');
  });

  it('shows a merge as its pull request and leaves the merged branch\'s own commits out', async () => {
    const repo = makeAppRepo(path.join(tempDir(), 'shop'));
    const change = await codeChangeBetween(new CommitResolver(), repo.root, repo.sha('r2'), repo.sha('r1'), 'back');
    assert.deepEqual(change.commits.map((commit) => commit.subject), ['Merge pull request #12 from acme/search', 'Fix price rounding in the cart', 'Add product listing']);
    const lines = codeChangeLines(change);
    assert.match(lines[0], /^Code: this rollback undoes 3 commits of shop \(\w{7} → \w{7}, first-parent, newest first\):$/);
    assert.match(lines[1], /^ {2}\w{7} Add product search \(#12\) \(Alice Example, 2026-01-05\)$/);
    assert.ok(!lines.some((line) => /search box|search index/.test(line)), 'the branch commits come in with the merge');
  });

  it('a target newer than the running release is a roll forward: the commits it brings back', async () => {
    const repo = makeAppRepo(path.join(tempDir(), 'shop'));
    const change = await codeChangeBetween(new CommitResolver(), repo.root, repo.sha('r1'), repo.sha('r3'), 'forward');
    assert.equal(change.total, 6);
    assert.deepEqual(change.commits.map((commit) => commit.subject)[0], 'Bump rack to 3.1.8');
    assert.equal(change.commits.at(-1)?.subject, 'Add product listing');
    assert.equal(codeChangeSummary(change), 'this roll forward brings back 6 commits');
  });

  it('says honestly when the target is not an ancestor: both sides of the diverged histories', async () => {
    const repo = makeAppRepo(path.join(tempDir(), 'shop'));
    runGit(['checkout', '-q', '-b', 'hotfix', repo.sha('r2')], repo.root);
    fs.writeFileSync(path.join(repo.root, 'app', 'cart.rb'), 'class Cart\nend\n');
    runGit(['commit', '-q', '-am', 'Hotfix: cart total'], repo.root);
    const hotfix = runGit(['rev-parse', 'HEAD'], repo.root).trim();
    const change = await codeChangeBetween(new CommitResolver(), repo.root, repo.sha('r3'), hotfix, 'back');
    assert.equal(change.total, 3);
    assert.deepEqual(change.diverged?.commits.map((commit) => commit.subject), ['Hotfix: cart total']);
    assert.equal(codeChangeSummary(change), 'this rollback undoes 3 commits and brings in 1 commit (the histories diverged)');
    assert.ok(codeChangeLines(change).some((line) => /not an ancestor of the running release: the rollback also brings in 1 commit/.test(line)));
  });

  it('bounds the list and keeps the total', async () => {
    const repo = makeAppRepo(path.join(tempDir(), 'shop'));
    const change = await codeChangeBetween(new CommitResolver(), repo.root, repo.sha('r4'), repo.sha('r1'), 'back', { limit: 2 });
    assert.equal(change.commits.length, 2);
    assert.equal(change.total, 7);
    assert.match(codeChangeLines(change).at(-1) ?? '', /… and 5 more/);
  });

  it('sets the plan\'s code change and lists every commit in its lines; a version not in the clone says so instead', async () => {
    const repo = makeAppRepo(path.join(tempDir(), 'shop'));
    const reader = new ReleaseCodeReader({ folders: () => [] });
    const config = path.join(repo.root, 'config', 'deploy.yml');
    const known = plan(repo.sha('r3'), repo.sha('r1'));
    await reader.attachKamalCodeChange(config, known);
    assert.equal(known.codeChange?.total, 6);
    assert.equal(known.codeChangeUnknown, undefined);
    assert.equal(known.lines.filter((line) => /^ {2}\w{7} /.test(line)).length, 6, known.lines.join('\n'));
    const unknown = plan(repo.sha('r3'), 'e'.repeat(40));
    await reader.attachKamalCodeChange(config, unknown);
    assert.equal(unknown.codeChange, undefined);
    assert.equal(unknown.codeChangeUnknown, `which commits this changes is not known: ${'e'.repeat(40)} is not in your local clone: fetch to see it`);
    const mixed = plan(`${repo.sha('r3')}, ${repo.sha('r2')}`, repo.sha('r1'));
    await reader.attachKamalCodeChange(config, mixed);
    assert.match(mixed.codeChangeUnknown ?? '', /hosts run different versions/);
  });

  it('reads the code change after the pre-flight through the git process started ahead: the same change, no process started then', async () => {
    const repo = makeAppRepo(path.join(tempDir(), 'shop'));
    const reader = new ReleaseCodeReader({ folders: () => [] });
    const config = path.join(repo.root, 'config', 'deploy.yml');
    const close = reader.kamalCodeAhead(config, repo.sha('r1'));
    // What a rollback does meanwhile (its handshakes, the pre-flight) starts nothing; then the change is read.
    await new Promise((resolve) => setImmediate(resolve));
    const ahead = plan(repo.sha('r3'), repo.sha('r1'));
    await reader.attachKamalCodeChange(config, ahead);
    await close();
    assert.equal(reader.resolver.processes, 1, 'the process started ahead answered every read (versions and listed commits)');
    const fresh = new ReleaseCodeReader({ folders: () => [] });
    const without = plan(repo.sha('r3'), repo.sha('r1'));
    await fresh.attachKamalCodeChange(config, without);
    assert.equal(fresh.resolver.processes, 2, 'without it: one process for the versions, one for the listed commits');
    assert.deepEqual(ahead.lines, without.lines);
    assert.equal(ahead.codeChange?.total, 6);
    // Closed: the next read starts its own process, as before.
    reader.resolver.forget();
    await reader.resolver.resolve(repo.root, [repo.sha('r2')]);
    assert.equal(reader.resolver.processes, 2);
  });

  it('falls back to a process of its own when the one started ahead cannot answer', async () => {
    const repo = makeAppRepo(path.join(tempDir(), 'shop'));
    const resolver = new CommitResolver();
    const heldBroken = resolver.openAhead(repo.root);
    // Its process is ended before it is read from: the read still finds the commit.
    (resolver as unknown as { held: Map<string, { close(): void }> }).held.get(repo.root)?.close();
    const found = await resolver.resolve(repo.root, [repo.sha('r2')]);
    heldBroken();
    assert.equal(found.get(repo.sha('r2'))?.commit?.sha, repo.sha('r2'));
    assert.equal(resolver.processes, 2);
  });

  it('never fails a plan (it may hold the deploy lock already): a cancelled or broken read says why instead', async () => {
    const repo = makeAppRepo(path.join(tempDir(), 'shop'));
    const reader = new ReleaseCodeReader({ folders: () => [] });
    const cancelled = plan(repo.sha('r3'), repo.sha('r1'));
    await reader.attachKamalCodeChange(path.join(repo.root, 'config', 'deploy.yml'), cancelled, AbortSignal.abort());
    assert.equal(cancelled.codeChange, undefined);
    assert.match(cancelled.codeChangeUnknown ?? '', /^which commits this changes/);
    fs.rmSync(path.join(repo.root, '.git', 'objects'), { recursive: true, force: true });
    const broken = plan(repo.sha('r3'), repo.sha('r1'));
    await reader.attachKamalCodeChange(path.join(repo.root, 'config', 'deploy.yml'), broken);
    assert.match(broken.codeChangeUnknown ?? '', /^which commits this changes/);
  });

  it('lists the files changed between two releases, renames included', async () => {
    const repo = makeAppRepo(path.join(tempDir(), 'shop'));
    runGit(['mv', 'app/cart.rb', 'app/basket.rb'], repo.root);
    runGit(['commit', '-q', '-m', 'Rename cart'], repo.root);
    const head = runGit(['rev-parse', 'HEAD'], repo.root).trim();
    const files = await changedFiles(repo.root, repo.sha('r3'), head);
    assert.deepEqual(files, [
      { status: 'renamed', path: 'app/basket.rb', oldPath: 'app/cart.rb' },
      { status: 'modified', path: 'app/search/index.rb' },
    ]);
    const back = await changedFiles(repo.root, repo.sha('r2'), repo.sha('r1'));
    assert.deepEqual(back.map((file) => `${file.status} ${file.path}`).sort(), ['deleted app/cart.rb', 'deleted app/products.rb', 'deleted app/search/index.rb', 'deleted app/views/search.html']);
    await assert.rejects(changedFiles(repo.root, '--output=/tmp/x', head), /Not a commit sha/);
  });
});
