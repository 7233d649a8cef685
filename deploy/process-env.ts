/**
 * The process settings every service starts with, wherever it runs: the image sets them as ENV
 * (Dockerfile, so docker-compose and deploy/k8s inherit them), deploy/local and the bench's service
 * processes pass the same values (deploy/docker/image.test.ts checks the image).
 *
 * NODE_OPTIONS=--max-semi-space-size=16: under load V8 grows the young generation to 128 MB (two
 * 64 MB semi-spaces) in the collector and the consumer, most of it garbage between scavenges; at
 * 16 MB it stays at 32 MB: about 65-100 MB less peak RSS in each, CPU per event within the noise
 * (docs/SCALING.md "Memory", `node bench/measure-memory.ts`).
 */
export const SERVICE_PROCESS_ENV: Readonly<Record<string, string>> = {
  NODE_OPTIONS: '--max-semi-space-size=16',
};
