/**
 * `npm run rollups:rebuild -- --from YYYY-MM-DD --to YYYY-MM-DD`: recomputes the rollups of those
 * months from the facts (services/lib/datamodel/rebuild.ts says how, and what it refuses).
 */
import { rebuildRollups } from '../services/lib/datamodel/rebuild.ts';
import { DATAMODEL_CODES } from '../services/lib/error-codes.ts';
import { PipelineError } from '../services/lib/errors.ts';
import { argValue, runCommand } from './command.ts';

runCommand('rebuild', async ({ client, cluster, logger }) => {
  const from = argValue(process.argv, 'from');
  const to = argValue(process.argv, 'to');
  if (!from || !to)
    throw new PipelineError(
      DATAMODEL_CODES.rebuildBadRange,
      'usage: rebuild.ts --from YYYY-MM-DD --to YYYY-MM-DD',
    );
  await rebuildRollups({ client, from, to, logger, ...(cluster ? { cluster } : {}) });
});
