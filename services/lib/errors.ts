/**
 * Typed errors in the fastify style: a stable `code` a caller can switch on, a `retriable` flag that
 * says whether trying the same thing again can succeed, and the underlying `cause`. Every error a
 * service answers over HTTP is defined once, with its status and message template, in
 * error-codes.ts (the shape of @fastify/error's createError), and every service sends it in one
 * body (errorBody).
 */
import { STATUS_CODES } from 'node:http';
import { format } from 'node:util';

export interface ErrorOptions {
  readonly retriable?: boolean;
  readonly cause?: unknown;
}

export class PipelineError extends Error {
  readonly code: string;
  readonly retriable: boolean;

  constructor(code: string, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PipelineError';
    this.code = code;
    this.retriable = options.retriable ?? false;
  }
}

export interface HttpErrorOptions extends ErrorOptions {
  /** Fields added to the error body beside the four every body has (e.g. the query's `problems`). */
  readonly detail?: Readonly<Record<string, unknown>>;
}

/** An error that is also an HTTP answer. Arguments in the registry's order: code, status, message. */
export class HttpError extends PipelineError {
  readonly statusCode: number;
  readonly detail: Readonly<Record<string, unknown>>;

  constructor(code: string, statusCode: number, message: string, options: HttpErrorOptions = {}) {
    super(code, message, options);
    this.name = 'HttpError';
    this.statusCode = statusCode;
    this.detail = options.detail ?? {};
  }
}

/** One argument per `%s` of the template, then optional options. */
type TemplateArgs<T extends string> = T extends `${string}%s${infer Rest}`
  ? [string | number, ...TemplateArgs<Rest>]
  : [];

export interface ErrorDef<T extends string = string> {
  readonly code: string;
  readonly statusCode: number;
  (...args: TemplateArgs<T> | [...TemplateArgs<T>, HttpErrorOptions]): HttpError;
  /** Whether `err` is one of these (by code: a def is not a class). */
  readonly is: (err: unknown) => err is HttpError;
}

/**
 * createError(code, status, template): a factory of HttpErrors with that code and status, the
 * message formatted from the template's `%s` with the arguments (node's util.format, as
 * @fastify/error does).
 */
export function defineError<const T extends string>(
  code: string,
  statusCode: number,
  template: T,
  defaults: { readonly retriable?: boolean } = {},
): ErrorDef<T> {
  const make = (...args: unknown[]): HttpError => {
    const last = args.at(-1);
    const options = typeof last === 'object' && last !== null ? (args.pop() as HttpErrorOptions) : {};
    return new HttpError(code, statusCode, format(template, ...args), { ...defaults, ...options });
  };
  const is = (err: unknown): err is HttpError => err instanceof HttpError && err.code === code;
  return Object.assign(make, { code, statusCode, is }) as unknown as ErrorDef<T>;
}

/** The body of every non-2xx answer of every service. */
export interface ErrorBody {
  readonly statusCode: number;
  readonly code: string;
  /** The status text (`Bad Request`), as fastify's own error bodies have it. */
  readonly error: string;
  readonly message: string;
  readonly [detail: string]: unknown;
}

export function errorBody(err: HttpError): ErrorBody {
  return {
    ...err.detail,
    statusCode: err.statusCode,
    code: err.code,
    error: STATUS_CODES[err.statusCode] ?? 'Error',
    message: err.message,
  };
}

/** JSON schema of ErrorBody, for the OpenAPI documents. */
export const ERROR_BODY_SCHEMA = {
  type: 'object',
  required: ['statusCode', 'code', 'error', 'message'],
  additionalProperties: true,
  properties: {
    statusCode: { type: 'integer' },
    code: { type: 'string', description: 'Stable error code (services/lib/error-codes.ts).' },
    error: { type: 'string', description: 'The HTTP status text.' },
    message: { type: 'string' },
  },
} as const;
