/**
 * `npm run retention -- [--keep-months 3]`: drops fact months older than that
 * (services/lib/datamodel/retention.ts). Run it daily (cron / k8s CronJob).
 */
import { DEFAULT_KEEP_MONTHS, dropOldFactPartitions } from '../services/lib/datamodel/retention.ts';
import { argValue, runCommand } from './command.ts';

runCommand('retention', async ({ client, cluster, logger }) => {
  const raw = argValue(process.argv, 'keep-months');
  await dropOldFactPartitions({
    client,
    logger,
    ...(cluster ? { cluster } : {}),
    keepMonths: raw === undefined ? DEFAULT_KEEP_MONTHS : Number(raw),
  });
});
