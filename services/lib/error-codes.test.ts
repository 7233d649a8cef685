/**
 * error-codes.ts is the one registry only while no source file names a code by itself: these tests
 * read every source file under services/ and clickhouse/ (not the tests, which assert codes as
 * values) and fail on a literal code, and hold the consumer README's dead-letter list equal to
 * DEAD_LETTER_CODES.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import * as registry from './error-codes.ts';

const ROOT = join(import.meta.dirname, '../..');
const REGISTRY_FILE = 'services/lib/error-codes.ts';

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.test.ts'))
    .map((e) => relative(ROOT, join(e.parentPath, e.name)))
    .filter(
      (f) => f !== REGISTRY_FILE && !f.includes('/dashboard/vendor/') && !f.includes('/dashboard/dist/'),
    );
}

/** Every code the registry holds: the HTTP definitions' and the internal groups' values. */
function registeredCodes(): Set<string> {
  const codes = new Set<string>();
  for (const group of Object.values(registry)) {
    for (const entry of Object.values(group as Record<string, unknown>)) {
      if (typeof entry === 'string') codes.add(entry);
      else if (typeof entry === 'function' && 'code' in entry) codes.add(String(entry.code));
    }
  }
  return codes;
}

/** Classes whose constructor takes the code first. */
const CODE_FIRST = new Set(['PipelineError', 'HttpError']);

const isLiteral = (n: ts.Node | undefined): n is ts.StringLiteral | ts.NoSubstitutionTemplateLiteral =>
  n !== undefined && (ts.isStringLiteral(n) || ts.isNoSubstitutionTemplateLiteral(n));

const extendsCodeFirst = (node: ts.Node): boolean => {
  for (let n: ts.Node | undefined = node; n; n = n.parent) {
    if (ts.isClassLike(n)) {
      return (n.heritageClauses ?? []).some((h) =>
        h.types.some((t) => CODE_FIRST.has(t.expression.getText())),
      );
    }
  }
  return false;
};

/**
 * `file:line text` of each place that gives an error or a dead letter a literal code: a code-first
 * error built (or `super`-called) with one, `poison(reason, 'CODE', ...)`, an object literal
 * `{ kind: 'poison', code: 'CODE' }`, a `defineError` outside the registry, and any string equal
 * to a registered code (a comparison such as `err.code === 'AVRO_UNKNOWN_SCHEMA'` included).
 */
function literalCodes(file: string, text: string, codes: ReadonlySet<string>): string[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  // By line: a construction is reported once, not again for the literal inside it.
  const found = new Map<number, string>();
  const report = (node: ts.Node): void => {
    const line = source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
    if (!found.has(line)) found.set(line, `${file}:${line} ${node.getText(source).split('\n')[0]}`);
  };
  const visit = (node: ts.Node): void => {
    if (ts.isNewExpression(node) && CODE_FIRST.has(node.expression.getText(source))) {
      if (isLiteral(node.arguments?.[0])) report(node);
    } else if (ts.isCallExpression(node)) {
      const callee = node.expression;
      if (
        callee.kind === ts.SyntaxKind.SuperKeyword &&
        extendsCodeFirst(node) &&
        isLiteral(node.arguments[0])
      )
        report(node);
      else if (ts.isIdentifier(callee) && callee.text === 'poison' && isLiteral(node.arguments[1]))
        report(node);
      else if (ts.isIdentifier(callee) && callee.text === 'defineError') report(node);
    } else if (ts.isObjectLiteralExpression(node)) {
      const prop = (name: string) =>
        node.properties.find(
          (p): p is ts.PropertyAssignment =>
            ts.isPropertyAssignment(p) && ts.isIdentifier(p.name) && p.name.text === name,
        )?.initializer;
      const kind = prop('kind');
      if (isLiteral(kind) && kind.text === 'poison' && isLiteral(prop('code'))) report(node);
    } else if (isLiteral(node) && codes.has(node.text)) {
      report(node);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return [...found.values()];
}

describe('the error-code registry', () => {
  const codes = registeredCodes();

  it('is read whole: HTTP definitions and internal groups alike', () => {
    for (const code of [
      'COLLECTOR_BODY_INVALID',
      'CONFIG_INVALID',
      'CONSUMER_EMPTY_VALUE',
      'REBUILD_FACTS_GONE',
    ])
      expect(codes).toContain(code);
  });

  it('catches each way a literal code can be written (the scan can fail)', () => {
    const text = [
      "throw new PipelineError('CONSUMER_SINK_ABORTED', 'stopped');",
      "throw new HttpError(`NEW_CODE`, 500, 'x');",
      "class E extends PipelineError { constructor() { super('E_CODE', 'x'); } }",
      "const p = poison('empty_value', 'CONSUMER_EMPTY_VALUE', 'm');",
      "const q = { kind: 'poison', reason: 'undecodable', code: 'ANY_CODE', message: '' };",
      "const d = defineError('X_NOT_FOUND', 404, 'x');",
      "if (err.code === 'AVRO_UNKNOWN_SCHEMA') {}",
      // Not codes: a registry reference, a computed code, another library's code, a message.
      "throw new PipelineError(CONSUMER_CODES.sinkAborted, 'stopped');",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: source text of a template literal
      'const r = { kind: "poison", code: `CLICKHOUSE_${n}` };',
      "if (err.code === 'ERR_BUFFER_TOO_LARGE') {}",
      "log.info('CONSUMER_SINK_ABORTED is what a shutdown mid-write logs')",
    ].join('\n');
    expect(literalCodes('probe.ts', text, codes).map((f) => Number(f.split(/[: ]/)[1]))).toEqual([
      1, 2, 3, 4, 5, 6, 7,
    ]);
  });

  it('is the only place under services/ and clickhouse/ that names a code', () => {
    const files = [...sourceFiles('services'), ...sourceFiles('clickhouse')];
    expect(files.length).toBeGreaterThan(50);
    const found = files.flatMap((f) => literalCodes(f, readFileSync(join(ROOT, f), 'utf8'), codes));
    expect(found).toEqual([]);
  });

  it("lists the consumer's dead-letter codes in its README, no more and no fewer", () => {
    const readme = readFileSync(join(ROOT, 'services/consumer/README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Poison messages and the DLQ'));
    const listed = [
      ...section.slice(0, section.indexOf('\n## ', 1)).matchAll(/^\| `([A-Z][A-Z0-9_]*(?:<n>)?)` \|/gm),
    ].map((m) => m[1]);
    // Rows ClickHouse refuses carry its error number (pipeline.ts): DeadLetterCode's template half.
    expect(listed.sort()).toEqual(
      [...new Set(Object.values(registry.DEAD_LETTER_CODES)), 'CLICKHOUSE_<n>'].sort(),
    );
  });
});
