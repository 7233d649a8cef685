/**
 * `npm run up | down | status` for the local stack (see stack.ts). Prints what it does on stderr and
 * the endpoints on stdout, so scripts can `eval` or parse them.
 */
import { down, endpoints, stackOptions, status, up } from './stack.ts';

const log = (line: string): void => {
  process.stderr.write(`[local] ${line}\n`);
};

async function main(command: string | undefined): Promise<number> {
  const o = stackOptions(process.env, log);
  switch (command) {
    case 'up': {
      const e = await up(o);
      process.stdout.write(`KAFKA_BROKERS=${e.kafkaBrokers}\nCLICKHOUSE_URL=${e.clickhouseUrl}\n`);
      return 0;
    }
    case 'down':
      await down(o);
      return 0;
    case 'status': {
      const rows = await status(o);
      for (const r of rows) {
        process.stdout.write(
          `${r.name.padEnd(11)} ${r.mode.padEnd(9)} ${(r.pid === undefined ? '-' : String(r.pid)).padEnd(8)} ${r.ready ? 'ready' : 'down '} ${r.endpoint}\n`,
        );
      }
      return rows.every((r) => r.ready) ? 0 : 3;
    }
    case 'endpoints': {
      const e = endpoints(o);
      process.stdout.write(`KAFKA_BROKERS=${e.kafkaBrokers}\nCLICKHOUSE_URL=${e.clickhouseUrl}\n`);
      return 0;
    }
    default:
      process.stderr.write('usage: node deploy/local/cli.ts up|down|status|endpoints\n');
      return 2;
  }
}

main(process.argv[2]).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    log(err instanceof Error ? err.message : String(err));
    process.exitCode = 1;
  },
);
