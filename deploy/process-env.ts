/**
 * The process settings every service starts with, wherever it runs: the image sets them as ENV
 * (Dockerfile, so docker-compose and deploy/k8s inherit them), deploy/local and the bench's service
 * processes pass the same values (deploy/docker/image.test.ts checks the image). Measured in
 * docs/SCALING.md "Memory".
 *
 * NODE_OPTIONS=--max-semi-space-size=16: under load V8 grows the young generation to 128 MB (two
 * 64 MB semi-spaces) in the collector and the consumer, most of it garbage between scavenges; at
 * 16 MB it stays at 32 MB: about 100 MB less peak RSS in the collector, 80 MB in the consumer, CPU
 * per event unchanged.
 *
 * MALLOC_MMAP_THRESHOLD_=131072: glibc raises its mmap threshold to the size of each large block
 * freed (up to 32 MB), after which the consumer's multi-MB Kafka fetch buffers and insert bodies
 * come from the main heap, which returns memory only from its top: 82 MB of it stayed resident
 * under load. A fixed threshold keeps blocks above 128 KiB in their own mappings, given back when
 * freed (18 MB left).
 */
export const SERVICE_PROCESS_ENV: Readonly<Record<string, string>> = {
  NODE_OPTIONS: '--max-semi-space-size=16',
  MALLOC_MMAP_THRESHOLD_: '131072',
};
