/**
 * `npm run delete-user -- <user_id> [--by <who>]`: the operator's way to what the query service's
 * admin route does (services/query/delete-user.ts, which says what a deletion removes).
 */
import { QUERY_CODES } from '../services/lib/error-codes.ts';
import { PipelineError } from '../services/lib/errors.ts';
import { deleteUser } from '../services/query/delete-user.ts';
import { runCommand } from './command.ts';

runCommand('delete-user', async ({ client, cluster, logger }) => {
  const args = process.argv.slice(2);
  const by = args.indexOf('--by');
  const requestedBy = by === -1 ? (process.env.USER ?? 'cli') : (args[by + 1] ?? 'cli');
  const userId = args.find((a, i) => !a.startsWith('--') && (by === -1 || i !== by + 1));
  if (userId === undefined)
    throw new PipelineError(QUERY_CODES.deleteUserBadId, 'usage: delete-user.ts <user_id> [--by <who>]');
  const report = await deleteUser({ client, userId, requestedBy, logger, ...(cluster ? { cluster } : {}) });
  process.stdout.write(`${JSON.stringify(report)}\n`);
});
