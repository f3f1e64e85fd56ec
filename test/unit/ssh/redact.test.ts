import { strict as assert } from 'node:assert';
import { redactSecrets } from '../../../src/core/ssh/redact';
import { quoteArgv } from '../../../src/core/shell';
import { containerIdForVersion, containerLogs, currentRunningContainerName, runContainer, stopContainer } from '../../../src/core/kamal/commands/app';
import { renderWords } from '../../../src/core/kamal/commands/kamal-shell';
import { acquireLock, lockStatus, releaseLock } from '../../../src/core/kamal/commands/lock';
import { proxyDeploy } from '../../../src/core/kamal/commands/proxy';
import { lockMessageFor } from '../../../src/core/kamal/rollback/assemble';
import { kamalConfig, role } from '../kamal/rollback-fixtures';

describe('redactSecrets', () => {
  it('masks --env values whose names look secret and keeps the others', () => {
    assert.equal(
      redactSecrets('docker run --env DB_PASSWORD=hunter2 --env RAILS_ENV=production -e API_TOKEN=abc app'),
      'docker run --env DB_PASSWORD=[REDACTED] --env RAILS_ENV=production -e API_TOKEN=[REDACTED] app',
    );
  });

  it('masks a quoted --env value completely, including quoted spaces and quotes', () => {
    assert.equal(redactSecrets(`docker run --env 'SECRET_KEY_BASE=a b'\\''c' app`), `docker run --env 'SECRET_KEY_BASE=[REDACTED]' app`);
    assert.equal(redactSecrets('docker run --env=AWS_SECRET_ACCESS_KEY="x y" app'), 'docker run --env=AWS_SECRET_ACCESS_KEY=[REDACTED] app');
  });

  it('masks --password and -p of a login, but not mkdir -p', () => {
    assert.equal(redactSecrets('docker login registry -u bob -p s3cret'), 'docker login registry -u bob -p [REDACTED]');
    assert.equal(redactSecrets('docker login --password=s3cret registry'), 'docker login --password=[REDACTED] registry');
    assert.equal(redactSecrets('mkdir -p .kamal/apps/chat && docker run -p 80:80 app'), 'mkdir -p .kamal/apps/chat && docker run -p 80:80 app');
  });

  it('masks secret-looking NAME=value assignments and URL passwords', () => {
    assert.equal(redactSecrets('GITHUB_TOKEN=ghp_x git push'), 'GITHUB_TOKEN=[REDACTED] git push');
    assert.equal(redactSecrets('curl https://bob:pa55@example.com/x'), 'curl https://bob:[REDACTED]@example.com/x');
  });

  it('leaves the commands our builders produce untouched', () => {
    const web = role('web', ['web-1'], { env: { clear: { RAILS_ENV: 'production' }, secret: ['DB_PASSWORD'] } });
    const config = kamalConfig({ roles: [web] });
    const details = { holder: 'Ada Lovelace', lockedAt: '2026-11-23T00:17:41Z', version: 'v2', message: lockMessageFor('rollback', 'v2') };
    const lines = [
      acquireLock(config, details),
      lockStatus(config),
      releaseLock(config),
      quoteArgv(containerIdForVersion(config, 'web', 'v2')),
      currentRunningContainerName(config, 'web'),
      renderWords(runContainer(config, web, { host: 'web-1', version: 'v2', hostname: 'web-1-0123456789ab' })),
      stopContainer(config, 'web', 'v3'),
      containerLogs(config, 'web', 'v2'),
      proxyDeploy(config, web, 'c5744c3f08d9', 'v2'),
    ];
    // Secrets live in the env file on the host, never on these lines: nothing here may look like one.
    assert.ok(lines.every((line) => line.length > 0));
    for (const line of lines) assert.equal(redactSecrets(line), line);
  });
});
