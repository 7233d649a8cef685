/**
 * User-Agent -> device type, platform, OS and browser (ua-parser-js 1.x, MIT; 2.x is AGPL) and the
 * bot flag (isbot). Used when an event carries no device of its own.
 */
import { isbot } from 'isbot';
import { UAParser } from 'ua-parser-js';

export interface UserAgentInfo {
  readonly device_type: string;
  readonly platform: string | undefined;
  readonly os_version: string | undefined;
  readonly browser_name: string | undefined;
  readonly browser_version: string | undefined;
  readonly is_bot: boolean;
}

// ua-parser-js device types -> the contract's (schemas/user_activity.v1.avsc device_type).
const DEVICE_TYPES: Readonly<Record<string, string>> = {
  mobile: 'mobile',
  tablet: 'tablet',
  smarttv: 'tv',
  console: 'console',
  wearable: 'wearable',
  embedded: 'embedded',
  xr: 'wearable',
};

const OS_PLATFORMS: ReadonlyArray<[RegExp, string]> = [
  [/^ios$/i, 'ios'],
  [/^android/i, 'android'],
  [/^windows/i, 'windows'],
  [/^mac ?os/i, 'macos'],
  [/linux|ubuntu|debian|fedora|chrom/i, 'linux'],
];

// Server-side HTTP clients and SDKs: the request comes from a server relaying its users' events,
// so the User-Agent describes that server, not a person's device, and says nothing about bots.
const SERVER_CLIENT_RE =
  /^(node|undici|axios|got|python-requests|curl|wget|go-http-client|okhttp|java|analytics-[a-z]+|posthog-[a-z]+)\b/i;

export function parseUserAgent(ua: string): UserAgentInfo {
  const r = new UAParser(ua).getResult();
  const server = SERVER_CLIENT_RE.test(ua);
  const osPlatform = OS_PLATFORMS.find(([re]) => re.test(r.os.name ?? ''))?.[1];
  return {
    device_type: server
      ? 'server'
      : (DEVICE_TYPES[r.device.type ?? ''] ?? (r.browser.name || r.os.name ? 'desktop' : 'unknown')),
    // A browser is the web platform whatever OS it runs on; native apps set device.platform.
    platform: server ? 'server' : r.browser.name ? 'web' : osPlatform,
    os_version: r.os.name ? [r.os.name, r.os.version].filter(Boolean).join(' ') : undefined,
    browser_name: r.browser.name || undefined,
    browser_version: r.browser.version || undefined,
    is_bot: !server && isbot(ua),
  };
}
