/** The collector's error body: the one every service sends, plus the intake fields when events were examined. */
import { ERROR_BODY_SCHEMA } from '../../lib/errors.ts';

export const ERROR_SCHEMA = {
  ...ERROR_BODY_SCHEMA,
  properties: {
    ...ERROR_BODY_SCHEMA.properties,
    accepted: { type: 'integer' },
    rejected: { $ref: 'rejections#' },
    warnings: { $ref: 'warnings#' },
  },
} as const;
