import { strict as assert } from 'node:assert';
import { parseKamalConfig } from '../../../src/core/kamal/config/read';
import { psychScalar, rubyFloatToS } from '../../../src/core/kamal/config/psych';

/**
 * Plain scalars and what Psych 5 (Ruby 3.x, Psych::ScalarScanner#tokenize) makes of them, as
 * Ruby's `to_s` prints them (null stays null). Read from ruby/psych lib/psych/scalar_scanner.rb.
 */
const PSYCH_READINGS: [string, unknown][] = [
  // null
  ['~', null], ['null', null], ['Null', null], ['NULL', null], ['nUlL', null], ['', null],
  // booleans: yes/true/on and no/false/off in any case; y and n stay strings
  ['yes', true], ['Yes', true], ['YES', true], ['true', true], ['True', true], ['TRUE', true], ['on', true], ['On', true], ['ON', true],
  ['no', false], ['No', false], ['NO', false], ['false', false], ['False', false], ['FALSE', false], ['off', false], ['Off', false], ['OFF', false],
  ['y', 'y'], ['Y', 'y'.toUpperCase()], ['n', 'n'], ['N', 'N'], ['tru', 'tru'], ['nil', 'nil'], ['yess', 'yess'],
  // words and names
  ['E1', 'E1'], ['x', 'x'], ['from-key-N', 'from-key-N'], ['web', 'web'], ['1.2.3.4', '1.2.3.4'], ['8080:80', '8080:80'],
  // integers: decimal, underscores and commas, octal with a leading 0, 0x, 0b; 0o and 08 are strings
  ['0', 0], ['42', 42], ['-42', -42], ['+7', 7], ['1_000', 1000], ['1,000', 1000], ['40_000_000', 40000000],
  ['017', 15], ['0x1F', 31], ['0x1f', 31], ['-0x10', -16], ['0b101', 5], ['0o17', '0o17'], ['08', '08'], ['09', '09'],
  ['12345678901234567890', 12345678901234567890n],
  // sexagesimal, weighed by 60^|i-2| as Psych does
  ['1:30', 5400], ['1:02:03', 3723], ['190:20:30', 685230],
  // floats need a point; an exponent needs a sign; to_s as Ruby prints floats
  ['1.0', '1.0'], ['1.5', '1.5'], ['0.1', '0.1'], ['-2.50', '-2.5'], ['1.', '1.0'], ['.5', '0.5'], ['1_000.5', '1000.5'],
  ['1.5e+3', '1500.0'], ['1.0e-5', '1.0e-05'], ['1.0e+16', '1.0e+16'], ['1.0e+15', '1000000000000000.0'], ['0.0001', '0.0001'],
  ['1e3', '1e3'], ['1E3', '1E3'], ['1.5e3', '1.5e3'], ['6.8523015e+5', '685230.15'], ['.', '.'],
  ['.inf', 'Infinity'], ['-.Inf', '-Infinity'], ['.NaN', 'NaN'], ['+.inf', 'Infinity'],
  // dates and times: to_s of Date and Time
  ['2024-01-02', '2024-01-02'], ['2024-1-2', '2024-01-02'], ['2024-02-30', '2024-02-30'],
  ['2001-12-14t21:59:43.10-05:00', '2001-12-14 21:59:43 -0500'], ['2001-12-15T02:59:43.1Z', '2001-12-15 02:59:43 UTC'],
  // symbols print without the colon
  [':sym', 'sym'], [':"quoted sym"', 'quoted sym'],
];

describe('Psych scalars', () => {
  for (const [text, expected] of PSYCH_READINGS) {
    it(`${JSON.stringify(text)} → ${typeof expected === 'bigint' ? `${expected}n` : JSON.stringify(expected)}`, () => {
      assert.deepEqual(psychScalar(text), expected);
    });
  }

  it('prints floats as Ruby Float#to_s does', () => {
    assert.deepEqual(
      [1, 100, 1.5, 0.1 + 0.2, 1e16, 1e15, 1e-4, 1e-5, -0, 123456789.125, 1e100].map(rubyFloatToS),
      ['1.0', '100.0', '1.5', '0.30000000000000004', '1.0e+16', '1000000000000000.0', '0.0001', '1.0e-05', '-0.0', '123456789.125', '1.0e+100'],
    );
  });

  it('passes env keys and values on as Kamal would (issue 11): an ON key is the boolean true', () => {
    const config = parseKamalConfig({
      baseText: 'service: chat\nimage: a/b\nservers: [w]\nenv:\n  clear: {E1: x, N: from-key-N, SAMPLE_RATE: 1.0, FLAG: n, BIG: 1e3, ON: on, Q: "on"}\n',
      baseFile: '/app/config/deploy.yml',
    });
    assert.deepEqual(config.problems, []);
    assert.deepEqual(config.env.clear, { E1: 'x', N: 'from-key-N', SAMPLE_RATE: '1.0', FLAG: 'n', BIG: '1e3', true: 'true', Q: 'on' });
  });

  it('reads quoted, block and !!str scalars as strings, and merges << as Psych does', () => {
    const config = parseKamalConfig({
      baseText: "service: chat\nimage: a/b\nservers: [w]\nx-base: &base {A: yes, B: 1}\nenv:\n  <<: *base\n  B: '017'\n  C: !!str 017\n  D: 017\n  E: |\n    0x1F\n",
      baseFile: '/app/config/deploy.yml',
    });
    assert.deepEqual(config.env.clear, { A: 'true', B: '017', C: '017', D: '15', E: '0x1F\n' });
  });
});
