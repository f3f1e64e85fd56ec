import { strict as assert } from 'node:assert';
import { quote, quoteArgv, shellLine } from '../../src/core/shell';

describe('shell quoting', () => {
  it('leaves plain words alone', () => {
    assert.equal(quoteArgv(['docker', 'container', 'ls', '--all', 'label=service=chat']), 'docker container ls --all label=service=chat');
  });
  it('single-quotes anything a shell would interpret', () => {
    assert.equal(quote('a b'), "'a b'");
    assert.equal(quote('$(rm -rf /)'), "'$(rm -rf /)'");
    assert.equal(quote('`id`'), "'`id`'");
    assert.equal(quote('x;y'), "'x;y'");
    assert.equal(quote(''), "''");
  });
  it('escapes single quotes inside', () => {
    assert.equal(quote("it's"), "'it'\\''s'");
  });
  it('joins argv parts with operators', () => {
    assert.equal(shellLine(['mkdir', '-p', '.kamal'], '&&', ['echo', 'a b'], '>>', ['.kamal/x.log']), "mkdir -p .kamal && echo 'a b' >> .kamal/x.log");
  });
});
