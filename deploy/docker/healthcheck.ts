/**
 * The image's HEALTHCHECK. One image runs any of the services, and the check cannot tell which
 * from outside, so it asks each service's /healthz on the port that service would listen on (its
 * variable, else its default): only the one running here answers. Exit 0 when one says 200.
 * Services bind 127.0.0.1 or 0.0.0.0, both reachable on loopback from inside the container.
 */
type Env = Readonly<Record<string, string | undefined>>;

/** Port variable and default of each service (image.test.ts checks them against the configs). */
export const SERVICE_PORTS = [
  { service: 'collector', variable: 'PORT', fallback: 8080 },
  { service: 'query', variable: 'PORT', fallback: 8081 },
  { service: 'consumer', variable: 'CONSUMER_HTTP_PORT', fallback: 9464 },
  { service: 'refresher', variable: 'REFRESHER_HTTP_PORT', fallback: 9465 },
] as const;

export const HEALTH_PATH = '/healthz';

export function healthUrls(env: Env): string[] {
  const ports = SERVICE_PORTS.map((s) => Number(env[s.variable] || s.fallback));
  return [...new Set(ports)].map((p) => `http://127.0.0.1:${p}${HEALTH_PATH}`);
}

async function answers(url: string): Promise<boolean> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(3_000) })).ok;
  } catch {
    return false;
  }
}

if (import.meta.main) {
  const results = await Promise.all(healthUrls(process.env).map(answers));
  process.exit(results.some(Boolean) ? 0 : 1);
}
