/**
 * One idempotent shutdown per process: readiness off, stop intake, drain, flush, close clients, exit
 * 0 under a hard deadline. A second signal exits at once (the operator means it); an uncaught
 * exception or unhandled rejection logs fatal and exits 1, never 0.
 */
import type { Logger } from './logger.ts';

export interface ShutdownOptions {
  readonly logger: Logger;
  /** Steps run in order; a failing step is logged and the next still runs. */
  readonly steps: ReadonlyArray<{ readonly name: string; readonly run: () => Promise<void> }>;
  readonly deadlineMs: number;
  /** Injected for tests; defaults to process.exit. */
  readonly exit?: (code: number) => void;
}

export interface Shutdown {
  /** Starts the shutdown (once); resolves when every step finished or the deadline passed. */
  readonly run: (reason: string) => Promise<void>;
  readonly isShuttingDown: () => boolean;
}

export function createShutdown(o: ShutdownOptions): Shutdown {
  const exit = o.exit ?? ((code: number) => process.exit(code));
  let running: Promise<void> | undefined;

  const run = (reason: string): Promise<void> => {
    if (running !== undefined) return running;
    o.logger.info({ reason }, 'shutting down');
    const deadline = setTimeout(() => {
      o.logger.error({ deadlineMs: o.deadlineMs }, 'shutdown deadline passed; exiting');
      exit(1);
    }, o.deadlineMs);
    deadline.unref();
    running = (async () => {
      let failed = false;
      for (const step of o.steps) {
        try {
          await step.run();
        } catch (err) {
          failed = true;
          o.logger.error({ err, step: step.name }, 'shutdown step failed');
        }
      }
      clearTimeout(deadline);
      o.logger.info('shutdown complete');
      exit(failed ? 1 : 0);
    })();
    return running;
  };

  return { run, isShuttingDown: () => running !== undefined };
}

/** Wires SIGTERM/SIGINT (second one exits at once) and fatal handlers to a Shutdown. */
export function installSignalHandlers(shutdown: Shutdown, logger: Logger): void {
  const onSignal = (signal: NodeJS.Signals): void => {
    if (shutdown.isShuttingDown()) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(130);
    }
    void shutdown.run(signal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('uncaughtException', (err) => {
    logger.fatal({ err }, 'uncaught exception');
    process.exit(1);
  });
  process.on('unhandledRejection', (err) => {
    logger.fatal({ err }, 'unhandled rejection');
    process.exit(1);
  });
}
