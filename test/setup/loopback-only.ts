/**
 * Tests talk to real receivers on 127.0.0.1 and never to another host: fake DNS in some tests
 * maps names to real public addresses, and a bug there must not reach the internet. Every
 * socket to a non-loopback address fails here like a refused connection, and fails the file.
 */
import { afterAll } from 'vitest';
import type { LookupAddress, LookupOptions } from 'node:dns';
import net from 'node:net';

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|::ffff:127\.\d+\.\d+\.\d+|localhost)$/i;
type ConnectArgs = Parameters<net.Socket['connect']>;
type LookupCallback = (error: Error | null, address: string | LookupAddress[], family?: number) => void;
type Lookup = (hostname: string, options: LookupOptions, callback: LookupCallback) => void;

const violations: string[] = [];
afterAll(() => {
  if (violations.length > 0) throw new Error(`tests tried to reach other hosts: ${violations.join(', ')}`);
});

const refusal = (host: string) => {
  violations.push(host);
  return new Error(`test tried to connect to ${host}: tests may only reach 127.0.0.1`);
};

/** A connection by name through a custom lookup (the webhook sender pins vetted addresses so): check what it resolves to. */
function loopbackOnlyLookup(lookup: Lookup): Lookup {
  return (hostname, options, callback) =>
    lookup(hostname, options, (error, address, family) => {
      const addresses = typeof address === 'string' ? [address] : (address ?? []).map((entry) => entry.address);
      const outside = addresses.find((candidate) => !LOOPBACK.test(candidate));
      if (!error && outside !== undefined) return callback(refusal(`${hostname} (${outside})`), address, family);
      callback(error, address, family);
    });
}

const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function connectLoopbackOnly(this: net.Socket, ...args: unknown[]) {
  const [first, second] = args;
  let host: string | undefined;
  if (typeof first === 'object' && first !== null) {
    const options = first as { host?: string; path?: string; lookup?: Lookup };
    if (options.lookup) {
      args[0] = { ...options, lookup: loopbackOnlyLookup(options.lookup) };
    } else if (!options.path) {
      host = options.host ?? 'localhost';
    }
  } else if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    host = typeof second === 'string' ? second : 'localhost';
  }
  if (host !== undefined && !LOOPBACK.test(host)) {
    const error = refusal(host);
    process.nextTick(() => this.destroy(error));
    return this;
  }
  return connect.apply(this, args as ConnectArgs);
} as net.Socket['connect'];
