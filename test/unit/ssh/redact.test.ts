import { strict as assert } from 'node:assert';
import { redactSecrets } from '../../../src/core/ssh/redact';

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
    const lock = 'mkdir .kamal/lock-chat && echo "QXV0aG9yOiBib2IK" > .kamal/lock-chat/details';
    const ls = "docker container ls --all --filter 'name=^chat-web-v2$' --quiet";
    const run = 'docker run --detach --name chat-web-v2 --env-file .kamal/apps/chat/env/roles/web.env --label service=chat app:v2';
    for (const line of [lock, ls, run]) assert.equal(redactSecrets(line), line);
  });
});
