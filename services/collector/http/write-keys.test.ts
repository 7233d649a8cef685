import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { keysFileEntries, parseWriteKeys, WriteKeys } from './write-keys.ts';

describe('write keys', () => {
  it('reads key:source with an optional scope; a source named like a scope needs the scope spelled out', () => {
    const keys = parseWriteKeys(['a:web:track', 'b:srv', 'c:x:all', 'd:track', 'e:track:all']);
    expect(keys.get('a')).toEqual({ source: 'web', scope: 'track' });
    expect(keys.get('b')).toEqual({ source: 'srv', scope: 'all' });
    expect(keys.get('c')).toEqual({ source: 'x', scope: 'all' });
    expect(keys.get('d')).toEqual({ source: 'track', scope: 'all' });
    expect(keys.get('e')).toEqual({ source: 'track', scope: 'all' });
    expect(() => parseWriteKeys(['ok:s', 'secret-without-source'])).toThrow(/^entry 2: /);
  });

  it('reads a file of entries, and on reload keeps the keys in use when the new file does not parse', () => {
    const dir = mkdtempSync(join(tmpdir(), 'keys-'));
    const file = join(dir, 'keys');
    writeFileSync(file, '# browser\nbk:web:track\n\nsk:backend # server\n');
    expect(keysFileEntries('a:b, c:d\n# x\ne:f')).toEqual(['a:b', 'c:d', 'e:f']);
    const keys = new WriteKeys({ fromEnv: new Map(), file });
    expect(keys.get('bk')).toEqual({ source: 'web', scope: 'track' });
    expect(keys.get('sk')).toEqual({ source: 'backend', scope: 'all' });
    writeFileSync(file, 'nk:new\n');
    expect(keys.reload()).toEqual({ ok: true, keys: 1 });
    expect(keys.get('bk')).toBeUndefined();
    expect(keys.get('nk')).toEqual({ source: 'new', scope: 'all' });
    writeFileSync(file, 'nk:new\nbroken\n');
    const bad = keys.reload();
    expect(bad.ok).toBe(false);
    expect(JSON.stringify(bad)).not.toContain('nk');
    expect(keys.get('nk')).toEqual({ source: 'new', scope: 'all' });
  });
});
