/**
 * A slowloris-style client: sends a request's headers or its body one byte every `everyMs`, the way
 * a client that holds a socket open without ever finishing a request does. Reports what the server
 * did: answered (and with which status) or closed the socket before the request was complete.
 */
import { connect } from 'node:net';

export interface SlowResult {
  /** The status line's code, when the server answered at all. */
  readonly status: number | undefined;
  /** Whether the server answered or closed before the whole request was sent. */
  readonly cutOff: boolean;
}

export function slowRequest(
  url: string,
  o: {
    method: 'GET' | 'POST';
    path: string;
    headers: Record<string, string>;
    body?: string;
    /** Which part goes a byte at a time (the request line always goes at once). */
    slow: 'headers' | 'body';
    everyMs: number;
  },
): Promise<SlowResult> {
  const { hostname, port } = new URL(url);
  const body = o.body ?? '';
  const head = [
    `host: ${hostname}:${port}`,
    ...Object.entries(o.headers).map(([k, v]) => `${k}: ${v}`),
    ...(body === '' ? [] : [`content-length: ${Buffer.byteLength(body)}`]),
    '',
    '',
  ].join('\r\n');
  const line = `${o.method} ${o.path} HTTP/1.1\r\n`;
  const [fast, trickled] = o.slow === 'headers' ? [line, head + body] : [line + head, body];
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    let sent = 0;
    let response = '';
    let timer: NodeJS.Timeout | undefined;
    socket.on('data', (d) => {
      response += d.toString('latin1');
    });
    socket.on('close', () => {
      clearInterval(timer);
      const m = /^HTTP\/1\.1 (\d{3})/.exec(response);
      resolve({ status: m ? Number(m[1]) : undefined, cutOff: sent < trickled.length });
    });
    socket.on('error', () => {});
    socket.on('connect', () => {
      socket.write(fast);
      timer = setInterval(() => {
        // Stop at an answer too: a server that answered early has not waited for the rest.
        if (response !== '' || sent >= trickled.length) {
          clearInterval(timer);
          socket.end();
          return;
        }
        socket.write(trickled[sent] as string);
        sent += 1;
      }, o.everyMs);
    });
  });
}
