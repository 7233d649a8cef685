/**
 * The V8 settings every service process starts with, wherever it runs: the image sets them as
 * NODE_OPTIONS (Dockerfile, so docker-compose and deploy/k8s inherit them), deploy/local and the
 * bench's service processes pass the same string (deploy/docker/image.test.ts checks the image).
 *
 * --max-semi-space-size=16: under load V8 grows the young generation to 128 MB (two 64 MB
 * semi-spaces) in the collector and the consumer, most of it garbage between scavenges; at 16 MB
 * it stays at 32 MB. Measured with the same load in one run (docs/SCALING.md "Memory"): about
 * 100 MB less peak RSS in the collector and 80 MB in the consumer, CPU per event unchanged.
 */
export const SERVICE_NODE_OPTIONS = '--max-semi-space-size=16';
