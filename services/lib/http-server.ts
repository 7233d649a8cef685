/**
 * Socket and request timeouts for the services' HTTP servers. Fastify's defaults (requestTimeout
 * and connectionTimeout 0) leave a client that sends its headers or body a byte at a time, or
 * opens connections and says nothing, holding a socket and its buffers forever: a few thousand
 * such connections exhaust a server without any request ever completing.
 */
import type { FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify';
import type { BaseErrors } from './error-codes.ts';
import { errorBody } from './errors.ts';

export const KEEP_ALIVE_TIMEOUT_MS = 72_000;

export function serverTimeouts(o: {
  /** The whole request (headers and body) must arrive within this; else 408 and the socket closes. */
  readonly requestTimeoutMs: number;
  /** The longest a handler may take to answer (e.g. waiting for Kafka acks or ClickHouse). */
  readonly longestHandlingMs: number;
}): Pick<FastifyServerOptions, 'requestTimeout' | 'connectionTimeout' | 'keepAliveTimeout'> & {
  http: { connectionsCheckingInterval: number };
} {
  return {
    // Enforced by Node for the headers; bodies by bodyDeadline below.
    requestTimeout: o.requestTimeoutMs,
    // Idle keep-alive sockets close after this, and the server says so (Keep-Alive: timeout=72), so
    // clients stop reusing a socket before it closes. Longer than the 60 s idle timeout of common
    // load balancers in front (Fastify's default, kept explicit because of the next line).
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    // Socket inactivity, a backstop: longer than receiving and handling a request can take, and
    // longer than keepAliveTimeout. Shorter, it cut idle keep-alive sockets the server had just
    // advertised as open for 72 s, and clients reusing one got ECONNRESET (3 in the 30-minute soak
    // of 2026-11-30 04:50, bench/soak.ts).
    connectionTimeout: Math.max(o.requestTimeoutMs + o.longestHandlingMs, KEEP_ALIVE_TIMEOUT_MS + 5_000),
    // Node checks requestTimeout on this interval (default 30 s): a timeout is enforced within it.
    http: { connectionsCheckingInterval: Math.max(100, Math.min(5_000, Math.floor(o.requestTimeoutMs / 2))) },
  };
}

/**
 * onRequest: a request whose body has not fully arrived `ms` after its headers gets 408 and its
 * socket closed.
 * Node's requestTimeout covers this for a plain http server, but not once Fastify is reading the
 * body (the collector's slowloris test in test/integration/collector.test.ts fails without this
 * hook: the whole trickled body is read despite a 1 s requestTimeout), so the deadline is kept here.
 */
export function bodyDeadline(ms: number, timeout: BaseErrors['requestTimeout']) {
  const body = JSON.stringify(errorBody(timeout(ms)));
  const response = `HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  const arm = (req: FastifyRequest, reply: FastifyReply): void => {
    // Answered already (refused before its body was read): its 'close' would never clear the timer.
    if (req.raw.complete || reply.raw.writableEnded) return;
    const timer = setTimeout(() => {
      if (req.raw.complete) return;
      const socket = req.raw.socket;
      if (!reply.raw.headersSent && socket.writable) socket.write(response);
      socket.destroy();
    }, ms);
    timer.unref();
    const clear = () => clearTimeout(timer);
    req.raw.once('end', clear);
    reply.raw.once('close', clear);
  };
  // onRequest runs when the headers are parsed, before the body that came right behind them is
  // read: checked there, every request armed a timer and two listeners (measured under load: one per
  // request, for bodies of a few hundred bytes). Checked once the loop has read its pending input
  // (one setImmediate for all requests that arrived meanwhile), such a body is complete and costs
  // nothing more; the deadline starts that much later.
  const reqs: FastifyRequest[] = [];
  const replies: FastifyReply[] = [];
  const armWaiting = (): void => {
    for (let i = 0; i < reqs.length; i++) arm(reqs[i] as FastifyRequest, replies[i] as FastifyReply);
    reqs.length = 0;
    replies.length = 0;
  };
  return (req: FastifyRequest, reply: FastifyReply, done: () => void): void => {
    if (!req.raw.complete) {
      if (reqs.length === 0) setImmediate(armWaiting);
      reqs.push(req);
      replies.push(reply);
    }
    done();
  };
}
