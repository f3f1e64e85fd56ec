import { strict as assert } from 'node:assert';
import { containsUnresolvedMarker, evaluateErbExpression, lineCounter, renderErb } from '../../../src/core/kamal/config/erb';

describe('Kamal ERB rendering', () => {
  const env = { APP: 'chat', EMPTY: '' };

  it('resolves ENV["X"] and ENV[\'X\'] with any spacing', () => {
    const result = renderErb(`a: <%= ENV["APP"] %>\nb: <%=ENV['APP']%>\nc: <%=  ENV [ "APP" ]  %>`, env);
    assert.equal(result.text, 'a: chat\nb: chat\nc: chat');
    assert.deepEqual(result.issues, []);
  });

  it('renders a missing ENV["X"] as an empty string, as Ruby renders nil', () => {
    assert.equal(renderErb('a: "<%= ENV["NOPE"] %>"', env).text, 'a: ""');
  });

  it('resolves ENV.fetch with and without defaults of either quote style', () => {
    const result = renderErb(
      `a: <%= ENV.fetch("APP") %>\nb: <%= ENV.fetch("NOPE", "d1") %>\nc: <%= ENV.fetch( 'NOPE' , 'd2' ) %>\nd: <%= ENV.fetch("NOPE", 3000) %>\ne: <%= ENV.fetch("EMPTY", "x") %>`,
      env,
    );
    assert.equal(result.text, 'a: chat\nb: d1\nc: d2\nd: 3000\ne: ');
    assert.deepEqual(result.issues, []);
  });

  it('reports ENV.fetch without a default for a missing variable as an error at the tag', () => {
    const result = renderErb('a: 1\nuser: <%= ENV.fetch("SSH_USER") %>\n', env);
    assert.equal(result.issues.length, 1);
    assert.deepEqual({ ...result.issues[0], message: undefined }, { line: 2, column: 7, severity: 'error', message: undefined });
    assert.match(result.issues[0].message, /SSH_USER/);
    assert.ok(containsUnresolvedMarker(result.text));
  });

  it('trims the newline after -%>', () => {
    assert.equal(renderErb('a: <%= ENV["APP"] -%>\nb: 1', env).text, 'a: chatb: 1');
  });

  it('drops comments and unescapes <%%', () => {
    assert.equal(renderErb('a: 1<%# note %>\nb: "<%%= x %>"', env).text, 'a: 1\nb: "<%= x %>"');
  });

  it('never evaluates backticks, %x(), method calls or conditionals', () => {
    for (const code of ['`whoami`', '%x(hostname)', 'File.read("x")', 'ENV["A"] || "b"', 'ENV.fetch("A") { "b" }', '"#{ENV["A"]}"']) {
      assert.deepEqual(evaluateErbExpression(code, env), { kind: 'unresolved' }, code);
    }
  });

  it('reports unresolved output tags at line and column and leaves a marker in their place', () => {
    const result = renderErb('image: x\nhost: <%= `hostname` %>\n', env);
    assert.equal(result.issues.length, 1);
    assert.equal(result.issues[0].line, 2);
    assert.equal(result.issues[0].column, 7);
    assert.equal(result.issues[0].severity, 'warning');
    assert.match(result.issues[0].message, /Unresolved ERB "<%= `hostname` %>"/);
    assert.ok(containsUnresolvedMarker(result.text));
  });

  it('reports code tags as unresolved and renders nothing for them', () => {
    const result = renderErb('<% if ENV["X"] %>\na: 1\n<% end %>\n', env);
    assert.equal(result.text, '\na: 1\n\n');
    assert.deepEqual(result.issues.map((issue) => [issue.line, issue.column]), [[1, 1], [3, 1]]);
  });

  it('marks text inside Ruby blocks as conditional, nested blocks included', () => {
    const source = 'a: 1\n<% if x %>\nb: 2\n<% [1].each do |i| %>\nc: 3\n<% end %>\nd: 4\n<% end %>\ne: 5\n<% y = 1 %>\nf: 6\n';
    const result = renderErb(source, env);
    const conditional = ['a', 'b', 'c', 'd', 'e', 'f'].filter((key) => result.isConditional(source.indexOf(`${key}:`)));
    assert.deepEqual(conditional, ['b', 'c', 'd']);
  });

  it('reports an unclosed tag as an error', () => {
    const result = renderErb('a: 1\nb: <%= ENV["APP"]\n', env);
    assert.equal(result.issues[0].severity, 'error');
    assert.equal(result.issues[0].line, 2);
  });

  it('maps rendered offsets back to the original file', () => {
    const source = 'a: <%= ENV["APP"] %> # x\nb: <%= ENV["NOPE"] %>[\n';
    const result = renderErb(source, env);
    const renderedBracket = result.text.indexOf('[');
    const at = lineCounter(source);
    assert.deepEqual(at(result.toSourceOffset(renderedBracket)), { line: 2, column: 22 });
    const renderedChat = result.text.indexOf('chat') + 2;
    assert.deepEqual(at(result.toSourceOffset(renderedChat)), { line: 1, column: 4 });
  });
});
