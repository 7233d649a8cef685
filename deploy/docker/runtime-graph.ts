/**
 * What a service needs at run time, read from its source: the files and npm packages its entry
 * point reaches through imports that survive type stripping, the GET routes those files register,
 * the environment variables their config specs name, and which of those files a build context
 * keeps after .dockerignore. Used by the image, compose and Kubernetes tests, so all three agree
 * on what "the service" is.
 */
import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

export const ROOT = resolve(import.meta.dirname, '../..');

/** Entry points the image runs: the four services, the demo and the migrations job. */
export const ENTRY_POINTS = [
  'services/collector/main.ts',
  'services/consumer/main.ts',
  'services/query/main.ts',
  'services/refresher/main.ts',
  'services/demo/main.ts',
  'clickhouse/migrate.ts',
  'deploy/docker/healthcheck.ts',
] as const;

export interface RuntimeGraph {
  /** Repository-relative paths of every source file the entry loads. */
  readonly files: readonly string[];
  /** npm package name -> the first file that imports it. */
  readonly packages: ReadonlyMap<string, string>;
}

/** Module specifiers a file loads at run time: `import type` / `export type` are erased. */
function runtimeSpecifiers(file: string, text: string): string[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const out: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      if (!node.importClause?.isTypeOnly) out.push(node.moduleSpecifier.text);
    } else if (
      ts.isExportDeclaration(node) &&
      node.moduleSpecifier &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      if (!node.isTypeOnly) out.push(node.moduleSpecifier.text);
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] !== undefined &&
      ts.isStringLiteral(node.arguments[0])
    ) {
      out.push(node.arguments[0].text);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

/** `@scope/name/sub` -> `@scope/name`, `name/sub` -> `name`. */
function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return (specifier.startsWith('@') ? parts.slice(0, 2) : parts.slice(0, 1)).join('/');
}

const BUILTINS = new Set(builtinModules);

export function runtimeGraph(entry: string): RuntimeGraph {
  const files: string[] = [];
  const packages = new Map<string, string>();
  const pending = [entry];
  while (pending.length > 0) {
    const file = pending.pop() as string;
    if (files.includes(file)) continue;
    files.push(file);
    for (const spec of runtimeSpecifiers(file, readFileSync(join(ROOT, file), 'utf8'))) {
      if (spec.startsWith('.')) {
        const target = relative(ROOT, resolve(ROOT, dirname(file), spec));
        if (!existsSync(join(ROOT, target))) throw new Error(`${file} imports ${spec}, which does not exist`);
        if (/\.[cm]?[jt]s$/.test(target)) pending.push(target);
      } else if (!spec.startsWith('node:') && !BUILTINS.has(spec)) {
        const name = packageName(spec);
        if (!packages.has(name)) packages.set(name, file);
      }
    }
  }
  return { files: files.sort(), packages };
}

/** Repository paths a file names as `new URL('<relative>', import.meta.url)`: data it reads or writes. */
export function fileUrls(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  return [...text.matchAll(/new URL\(\s*'([^']+)',\s*import\.meta\.url\s*\)/g)].map((m) =>
    relative(ROOT, resolve(ROOT, dirname(file), m[1] ?? '')),
  );
}

/** Paths of GET routes registered in `files` (`app.get('/healthz', ...)`). */
export function getRoutes(files: readonly string[]): Set<string> {
  const routes = new Set<string>();
  for (const f of files) {
    for (const m of readFileSync(join(ROOT, f), 'utf8').matchAll(/\.get\(\s*'(\/[^']*)'/g))
      routes.add(m[1] ?? '');
  }
  return routes;
}

/** Keys of config specs (`NAME: int(...)`, upper snake case) in `files`: what the process reads. */
export function configVariables(files: readonly string[]): Set<string> {
  const names = new Set<string>();
  for (const f of files) {
    for (const m of readFileSync(join(ROOT, f), 'utf8').matchAll(/^\s*([A-Z][A-Z0-9_]+):\s/gm)) {
      names.add(m[1] ?? '');
    }
  }
  return names;
}

/** Docker's pattern syntax: `**` any folders, `*` and `?` within one name (dot files included). */
function globRegExp(glob: string): RegExp {
  const body = glob
    .split(/(\*\*\/?|\*|\?)/)
    .map((part) => {
      if (part.startsWith('**')) return '(?:.*/)?';
      if (part === '*') return '[^/]*';
      if (part === '?') return '[^/]';
      return part.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    })
    .join('');
  return new RegExp(`^${body}$`);
}

/**
 * Whether a build context keeps `path` under these .dockerignore lines: the last pattern that
 * matches the path or one of its parent folders decides, `!` re-includes (Docker's rule).
 */
export function keptInContext(path: string, dockerignore: string): boolean {
  const patterns = dockerignore
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const prefixes = path.split('/').map((_, i, parts) => parts.slice(0, i + 1).join('/'));
  let kept = true;
  for (const p of patterns) {
    const negated = p.startsWith('!');
    const glob = globRegExp((negated ? p.slice(1) : p).replace(/\/$/, ''));
    if (prefixes.some((prefix) => glob.test(prefix))) kept = negated;
  }
  return kept;
}
