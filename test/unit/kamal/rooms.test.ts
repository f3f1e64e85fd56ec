import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';

const kamal = path.resolve(__dirname, '../../../src/core/kamal');
/** Each room and the rooms it may import from (README, "Architecture"): no import runs back up. */
const ROOMS: Record<string, string[]> = {
  config: ['config'],
  commands: ['config', 'commands'],
  hosts: ['config', 'commands', 'hosts'],
  rollback: ['config', 'commands', 'hosts', 'rollback'],
};

/** Where each relative import of a file lands inside src/core/kamal: a room, a top file ("source.ts"), or outside (undefined). */
function importedPlaces(file: string): { spec: string; place: string | undefined }[] {
  const text = fs.readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:from\s+|import\s*\(?\s*)'(\.{1,2}\/[^']+)'/g)].map((match) => {
    const target = path.relative(kamal, path.resolve(path.dirname(file), match[1]));
    if (target.startsWith('..')) return { spec: match[1], place: undefined };
    const [first, second] = target.split(path.sep);
    return { spec: match[1], place: second === undefined ? `${first}.ts` : first };
  });
}

describe('src/core/kamal rooms', () => {
  it('has the four rooms, and only source.ts and ssh-target.ts on top', () => {
    const entries = fs.readdirSync(kamal, { withFileTypes: true });
    assert.deepEqual(entries.filter((entry) => entry.isDirectory()).map((entry) => entry.name).sort(), Object.keys(ROOMS).sort());
    assert.deepEqual(entries.filter((entry) => entry.isFile()).map((entry) => entry.name).sort(), ['source.ts', 'ssh-target.ts']);
  });

  for (const [room, allowed] of Object.entries(ROOMS)) {
    it(`${room}/ imports only from ${allowed.join(', ')}`, () => {
      const files = fs.readdirSync(path.join(kamal, room)).filter((name) => name.endsWith('.ts'));
      assert.ok(files.length > 0, `${room}/ has its sources`);
      const offenders = files.flatMap((name) =>
        importedPlaces(path.join(kamal, room, name))
          .filter(({ place }) => place !== undefined && !allowed.includes(place))
          .map(({ spec }) => `${room}/${name} imports ${spec}`),
      );
      assert.deepEqual(offenders, []);
    });
  }

  it('keeps every file under 500 lines', () => {
    const lines = (dir: string): [string, number][] =>
      fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry): [string, number][] => {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) return lines(full);
        return entry.name.endsWith('.ts') ? [[path.relative(kamal, full), fs.readFileSync(full, 'utf8').split('\n').length - 1]] : [];
      });
    assert.deepEqual(lines(kamal).filter(([, count]) => count > 500), []);
  });
});
