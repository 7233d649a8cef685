import { CONFIG_CODES } from './error-codes.ts';
import { PipelineError } from './errors.ts';
import { IDENTIFIER_RE } from './sql.ts';

/**
 * Config is read once, in a service's main.ts, from an env-like record and validated against one
 * spec. Every bad value is reported at once (one line each), so an operator fixes them in one go.
 * `process.env` is read nowhere else.
 */
type Env = Readonly<Record<string, string | undefined>>;

/** Every bad setting of one read, one line each (configOrExit prints them and exits 2). */
export class ConfigError extends PipelineError {
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super(CONFIG_CODES.invalid, `invalid configuration:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

interface Field<T> {
  readonly parse: (raw: string) => T;
  readonly fallback?: T;
  readonly doc: string;
  /** A secret's value is never repeated in a problem (the message goes to stderr and logs). */
  readonly secret?: boolean;
  /** Required, but its fallback applies when this other variable is set instead. */
  readonly requiredUnless?: string;
}

type Spec = Record<string, Field<unknown>>;
export type ConfigOf<S extends Spec> = { readonly [K in keyof S]: S[K] extends Field<infer T> ? T : never };

export function readConfig<S extends Spec>(spec: S, env: Env): ConfigOf<S> {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [name, field] of Object.entries(spec)) {
    const raw = env[name];
    if (raw === undefined || raw === '') {
      const instead = field.requiredUnless;
      if (instead !== undefined && (env[instead] ?? '') === '') {
        problems.push(`${name}: required unless ${instead} is set (${field.doc})`);
      } else if (field.fallback === undefined) problems.push(`${name}: required (${field.doc})`);
      else out[name] = field.fallback;
      continue;
    }
    try {
      out[name] = field.parse(raw);
    } catch (err) {
      const got = field.secret ? 'value not shown: a secret' : `got ${JSON.stringify(raw)}`;
      problems.push(`${name}: ${(err as Error).message} (${got}; ${field.doc})`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return out as ConfigOf<S>;
}

function field<T>(parse: (raw: string) => T, doc: string, fallback?: T): Field<T> {
  return fallback === undefined ? { parse, doc } : { parse, doc, fallback };
}

export const str = (doc: string, fallback?: string): Field<string> => field((raw) => raw, doc, fallback);

/** A name that statements are built with unquoted (a ClickHouse cluster, a database). */
export const identifier = (doc: string, fallback?: string): Field<string> =>
  field(
    (raw) => {
      if (!IDENTIFIER_RE.test(raw)) throw new Error('not a plain name ([A-Za-z_][A-Za-z0-9_]*)');
      return raw;
    },
    doc,
    fallback,
  );

/**
 * Whether a listen address is reachable from this machine only. The services refuse unsafe
 * settings (the documented dev write key, an open query API) on any other address unless
 * INSECURE_DEV=1 says the exposure is meant.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase();
  return h === 'localhost' || h === '::1' || h === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/** `f`, its value never repeated in a problem. */
export const secret = <T>(f: Field<T>): Field<T> => ({ ...f, secret: true });

export const int = (doc: string, fallback?: number, min = 0, max = Number.MAX_SAFE_INTEGER): Field<number> =>
  field(
    (raw) => {
      if (!/^-?\d+$/.test(raw.trim())) throw new Error('not an integer');
      const n = Number(raw);
      if (n < min || n > max) throw new Error(`out of range [${min}, ${max}]`);
      return n;
    },
    doc,
    fallback,
  );

export const bool = (doc: string, fallback?: boolean): Field<boolean> =>
  field(
    (raw) => {
      const v = raw.trim().toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(v)) return true;
      if (['0', 'false', 'no', 'off'].includes(v)) return false;
      throw new Error('not a boolean (true/false)');
    },
    doc,
    fallback,
  );

export const url = (doc: string, fallback?: string): Field<string> =>
  field(
    (raw) => {
      const u = new URL(raw);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not an http(s) URL');
      return raw.replace(/\/+$/, '');
    },
    doc,
    fallback,
  );

export const list = (doc: string, fallback?: readonly string[]): Field<readonly string[]> =>
  field(
    (raw) => {
      const items = raw
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');
      if (items.length === 0) throw new Error('empty list');
      return items;
    },
    doc,
    fallback,
  );

export const oneOf = <T extends string>(values: readonly T[], doc: string, fallback?: T): Field<T> =>
  field(
    (raw) => {
      if (!(values as readonly string[]).includes(raw)) throw new Error(`not one of ${values.join(', ')}`);
      return raw as T;
    },
    doc,
    fallback,
  );

/** The exit code of a service that refused its configuration (1 is a crash, 0 a clean stop). */
export const CONFIG_EXIT_CODE = 2;

/**
 * Config failure handling, the same in every service: `read` throws ConfigError, and the service
 * writes `<service>: invalid configuration:` and one line per bad value to stderr, before any
 * logger exists (this is the operator's whole fix list), then exits 2. Other errors propagate.
 */
export function configOrExit<T>(
  service: string,
  read: () => T,
  o: { write?: (s: string) => void; exit?: (code: number) => never } = {},
): T {
  try {
    return read();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    (o.write ?? ((s) => process.stderr.write(s)))(`${service}: ${err.message}\n`);
    return (o.exit ?? process.exit)(CONFIG_EXIT_CODE);
  }
}
