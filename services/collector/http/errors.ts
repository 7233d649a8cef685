/**
 * HTTP-facing errors with stable codes (fastify style). Thrown from hooks and handlers; the app's
 * error handler turns them, fastify's own errors and Kafka failures into one response shape.
 */
import { PipelineError } from '../../lib/errors.ts';

export class HttpError extends PipelineError {
  readonly statusCode: number;

  constructor(statusCode: number, code: string, message: string, options: { cause?: unknown } = {}) {
    super(code, message, options);
    this.name = 'HttpError';
    this.statusCode = statusCode;
  }
}

export const badRequest = (code: string, message: string): HttpError => new HttpError(400, code, message);

/** The JSON schema of every non-2xx body (plus the intake fields when events were examined). */
export const ERROR_SCHEMA = {
  type: 'object',
  required: ['statusCode', 'code', 'error', 'message'],
  properties: {
    statusCode: { type: 'integer' },
    code: { type: 'string', description: 'Stable error code, e.g. COLLECTOR_BODY_MALFORMED.' },
    error: { type: 'string' },
    message: { type: 'string' },
    accepted: { type: 'integer' },
    rejected: { $ref: 'rejections#' },
    warnings: { $ref: 'warnings#' },
  },
} as const;
