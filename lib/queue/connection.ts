/**
 * The Redis connection of the job queue: `redis://[[user]:password@]host[:port][/db]`, or
 * `rediss://...` for TLS, optionally with job options `?attempts=N&backoff_ms=MS`. The password (from the URL, or from LVDM_REDIS_PASSWORD when the URL
 * has none) is kept out of everything the toolkit prints or writes: `display` is the redacted
 * URL and `redact` scrubs it from any text (log lines, error messages).
 */
import type { RedisOptions } from 'bullmq';
import IORedis from 'ioredis';

export const PASSWORD_ENV = 'LVDM_REDIS_PASSWORD';
const MASK = '***';

export interface QueueConnection {
  /** Options for BullMQ / ioredis (holds the password: never print or serialise this). */
  options: RedisOptions;
  /** The URL with the password masked: safe for logs. */
  display: string;
  /** Replaces every occurrence of the password (plain or URL-encoded) in `text`. */
  redact(text: string): string;
  /** Job options from the URL's query (`?attempts=3&backoff_ms=5000`), used when submitting. */
  jobs: { attempts?: number; backoffMs?: number };
}

const QUERY: Record<string, 'attempts' | 'backoffMs'> = { attempts: 'attempts', backoff_ms: 'backoffMs' };

/** Parses a queue URL; errors never contain the password. */
export function parseQueueUrl(url: string, env: NodeJS.ProcessEnv = process.env): QueueConnection {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`--queue: expected redis://[:password@]host:port[/db] or rediss://..., got '${maskUrlText(url)}'`);
  }
  const rawPassword = u.password;
  const password = rawPassword ? decodeURIComponent(rawPassword) : env[PASSWORD_ENV] || undefined;
  const secrets = [password, rawPassword].filter((s): s is string => !!s);
  const redact = (text: string): string => secrets.reduce((t, s) => t.split(s).join(MASK), text);
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw new Error(`--queue: expected a redis:// or rediss:// URL, got '${redact(maskUrlText(url))}'`);
  }
  if (!u.hostname) throw new Error(`--queue: no host in '${redact(maskUrlText(url))}'`);
  const port = u.port ? Number(u.port) : 6379;
  const dbText = u.pathname.replace(/^\//, '');
  const db = dbText === '' ? 0 : Number(dbText);
  if (!Number.isInteger(db) || db < 0) throw new Error(`--queue: database must be a non-negative integer, got '/${redact(dbText)}'`);
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  const username = u.username ? decodeURIComponent(u.username) : undefined;
  const tls = u.protocol === 'rediss:';
  const options: RedisOptions = {
    host,
    port,
    db,
    ...(username ? { username } : {}),
    ...(password ? { password } : {}),
    ...(tls ? { tls: { servername: host } } : {}),
    // BullMQ needs these for its blocking commands; reconnect forever with a capped delay.
    maxRetriesPerRequest: null,
    retryStrategy: (times: number) => Math.min(200 * times, 2000),
  };
  const jobs: QueueConnection['jobs'] = {};
  for (const [k, v] of u.searchParams) {
    const field = QUERY[k];
    const n = Number(v);
    if (!field) throw new Error(`--queue: unknown URL parameter '${k}' (known: ${Object.keys(QUERY).join(', ')})`);
    if (!Number.isInteger(n) || n < (field === 'attempts' ? 1 : 0)) throw new Error(`--queue: URL parameter '${k}': expected a ${field === 'attempts' ? 'positive' : 'non-negative'} integer, got '${redact(v)}'`);
    jobs[field] = n;
  }
  const auth = username || password ? `${username ?? ''}${password ? `:${MASK}` : ''}@` : '';
  const display = `${u.protocol}//${auth}${u.hostname}:${port}/${db}`;
  return { options, display, redact, jobs };
}

/** Masks the `user:password@` part of something that may not even parse as a URL. */
function maskUrlText(text: string): string {
  return text.replace(/\/\/([^/@]*):([^/@]*)@/, `//$1:${MASK}@`);
}

/**
 * Connects once, without retries, and pings: a wrong password or an unreachable host is a clear
 * error at once (the long-lived connections reconnect forever, which would just hang).
 */
export async function checkConnection(conn: QueueConnection, timeoutMs = 5000): Promise<void> {
  const client = new IORedis({ ...conn.options, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: timeoutMs });
  let last: string | undefined;
  client.on('error', (e: Error) => (last = e.message));
  try {
    await client.connect();
    await client.ping();
  } catch (e) {
    throw new Error(conn.redact(`cannot connect to ${conn.display}: ${last ?? (e as Error).message}`));
  } finally {
    client.disconnect();
  }
}

/**
 * Logs a connection's errors (message only: an error object's details can hold the AUTH
 * arguments), redacted, each distinct message at most once per `everyMs`.
 */
export function logErrors(emitter: { on(event: 'error', listener: (e: Error) => void): unknown }, conn: QueueConnection, log: (m: string) => void, everyMs = 10_000): void {
  const seen = new Map<string, number>();
  emitter.on('error', (e: Error) => {
    const msg = conn.redact(e.message);
    const now = Date.now();
    if (now - (seen.get(msg) ?? -Infinity) < everyMs) return;
    seen.set(msg, now);
    log(`redis ${conn.display}: ${msg}`);
  });
}
