/**
 * Write keys: key -> the source name its events carry and what it may send. Browser keys are public
 * by design (they ship in page bundles), so a key can be limited to activity events (`track`
 * scope): no identify or alias (which rewrite profiles and identity links), no marking users as test
 * accounts (which hides them from every metric), and a relayed client IP (Segment's context.ip) is
 * not trusted for geo. Server keys (`all`, the default) may do all of it.
 *
 * Format, in WRITE_KEYS or one entry per line (or comma) in WRITE_KEYS_FILE (`#` starts a comment):
 * `key:source` or `key:source:track` / `key:source:all`. The file is read again on SIGHUP and when
 * it changes, so keys rotate without a restart; a file that does not parse keeps the keys in use.
 * Key values never appear in errors or logs: problems name the entry's position only.
 */
import { readFileSync } from 'node:fs';

export type KeyScope = 'all' | 'track';

/** The local stack's write key, printed in the README: anyone may know it. */
export const DEV_WRITE_KEY = 'local-dev-key';

export interface WriteKey {
  readonly source: string;
  readonly scope: KeyScope;
}

const SCOPES: readonly string[] = ['all', 'track'] satisfies KeyScope[];

/** Entries -> Map(key -> WriteKey); throws naming the entry's position, never its content. */
export function parseWriteKeys(items: readonly string[]): ReadonlyMap<string, WriteKey> {
  if (items.length === 0) throw new Error('empty list');
  const keys = new Map<string, WriteKey>();
  for (const [n, item] of items.entries()) {
    let rest = item;
    let scope: KeyScope = 'all';
    const last = item.lastIndexOf(':');
    const tail = item.slice(last + 1);
    // `key:source:track`: a known scope after a second colon (a source may not be named like one).
    if (last > 0 && SCOPES.includes(tail) && item.slice(0, last).includes(':')) {
      scope = tail as KeyScope;
      rest = item.slice(0, last);
    }
    const i = rest.lastIndexOf(':');
    const key = rest.slice(0, i);
    const source = rest.slice(i + 1);
    if (i <= 0 || source === '') throw new Error(`entry ${n + 1}: must be key:source or key:source:scope`);
    keys.set(key, { source, scope });
  }
  return keys;
}

/** A keys file's entries: one per line or comma; blank lines and `#` comments skipped. */
export function keysFileEntries(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.replace(/#.*$/, ''))
    .flatMap((line) => line.split(','))
    .map((x) => x.trim())
    .filter((x) => x !== '');
}

/** The keys in use: from the environment, replaced by the file's whenever it is (re)read. */
export class WriteKeys {
  private keys: ReadonlyMap<string, WriteKey>;
  private readonly file: string | undefined;

  constructor(o: { fromEnv: ReadonlyMap<string, WriteKey>; file?: string | undefined }) {
    this.keys = o.fromEnv;
    this.file = o.file === '' ? undefined : o.file;
    // At start a bad file is fatal, like any bad config (thrown to main.ts); later it is not.
    if (this.file !== undefined) this.keys = parseWriteKeys(keysFileEntries(readFileSync(this.file, 'utf8')));
  }

  get(key: string): WriteKey | undefined {
    return this.keys.get(key);
  }

  get size(): number {
    return this.keys.size;
  }

  /** Whether the documented dev key is among them (refused off loopback: config.ts). */
  hasDevKey(): boolean {
    return this.keys.has(DEV_WRITE_KEY);
  }

  /** The file read again: the new keys' count, or why the keys in use were kept. */
  reload(): { ok: true; keys: number } | { ok: false; error: string } {
    if (this.file === undefined) return { ok: false, error: 'no WRITE_KEYS_FILE' };
    try {
      this.keys = parseWriteKeys(keysFileEntries(readFileSync(this.file, 'utf8')));
      return { ok: true, keys: this.keys.size };
    } catch (err) {
      return { ok: false, error: (err as Error).message };
    }
  }
}
