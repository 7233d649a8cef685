/**
 * A real browser: headless Chromium loads a page from another origin that sends events with
 * navigator.sendBeacon (text/plain, write key in the body, no preflight) and with fetch + a Bearer
 * header (CORS preflight); both events arrive on the topic.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type LaunchedBrowser, launchChromium } from '../harness/chromium.ts';
import { kafkaBrokers } from '../harness/services.ts';
import {
  readTopic,
  startCollector,
  type TestCollector,
  type TopicReader,
  WRITE_KEY,
} from './collector-harness.ts';

let c: TestCollector;
let reader: TopicReader;
let site: Server;
let siteUrl: string;
let chromium: LaunchedBrowser;

beforeAll(async () => {
  c = await startCollector(kafkaBrokers(), {}, { geo: false });
  reader = await readTopic(c.kafka, c.topic);
  site = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>app</title><p>app</p>');
  });
  await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
  const address = site.address();
  // "localhost" vs the collector's 127.0.0.1: a different origin, as for a real site.
  siteUrl = `http://localhost:${typeof address === 'object' && address ? address.port : 0}/`;
  chromium = await launchChromium((line) => process.stderr.write(`[chromium] ${line}\n`));
}, 600_000);
afterAll(async () => {
  await chromium?.close();
  await new Promise((resolve) => site?.close(resolve));
  await reader?.stop();
  await c?.close();
});

it('receives events sent by navigator.sendBeacon and by fetch with CORS', async () => {
  const page = await chromium.context.newPage();
  await page.goto(siteUrl);
  const beaconId = randomUUID();
  const fetchId = randomUUID();
  const queued = await page.evaluate(
    ({ url, key, id }) =>
      navigator.sendBeacon(
        `${url}/v1/events`,
        JSON.stringify({
          writeKey: key,
          event_id: id,
          anonymous_id: 'browser-anon',
          activity: 'page_view',
          feature: 'landing',
        }),
      ),
    { url: c.url, key: WRITE_KEY, id: beaconId },
  );
  expect(queued).toBe(true);
  const status = await page.evaluate(
    async ({ url, key, id }) => {
      const res = await fetch(`${url}/v1/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: JSON.stringify({ event_id: id, anonymous_id: 'browser-anon', activity: 'click' }),
      });
      return res.status;
    },
    { url: c.url, key: WRITE_KEY, id: fetchId },
  );
  expect(status).toBe(200);

  const all = await reader.waitFor((m) =>
    [beaconId, fetchId].every((id) => m.some((x) => x.value.event_id === id)),
  );
  const beacon = all.find((m) => m.value.event_id === beaconId);
  expect(beacon?.value).toMatchObject({
    anonymous_id: 'browser-anon',
    activity_name: 'page_view',
    feature_name: 'landing',
    device_type: 'desktop',
    platform: 'web',
    activity_metadata: '{}',
  });
  expect(beacon?.value.browser_name).toEqual(expect.stringMatching(/Chrom/));
  await page.close();
});
