import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import ipaddr from 'ipaddr.js';

const TYPE_A = 1;
const TYPE_AAAA = 28;
const NXDOMAIN = 3;

export interface DnsRecords {
  a?: string[];
  aaaa?: string[];
  /** Seconds; 0 (the default) so that answers are never reused unless a test says so. */
  ttl?: number;
}

/** A real DNS server on 127.0.0.1 (UDP) for the resolver under test: it answers from `records`, or never. */
export interface DnsServer {
  /** `127.0.0.1:<port>`, for `setServers`. */
  address: string;
  records: Map<string, DnsRecords>;
  /** Names it receives queries for and never answers. */
  silent: Set<string>;
  /** Every query received, as `name type` (`hooks.example.test A`). */
  queries: string[];
  close(): Promise<void>;
}

export async function startDnsServer(records: Record<string, DnsRecords> = {}): Promise<DnsServer> {
  const socket = createSocket('udp4');
  const server: DnsServer = {
    address: '',
    records: new Map(Object.entries(records)),
    silent: new Set(),
    queries: [],
    async close() {
      socket.close();
      await once(socket, 'close');
    },
  };
  socket.on('message', (message, peer) => {
    const question = parseQuestion(message);
    if (!question) return;
    server.queries.push(`${question.name} ${question.type === TYPE_AAAA ? 'AAAA' : question.type === TYPE_A ? 'A' : question.type}`);
    if (server.silent.has(question.name)) return;
    socket.send(answer(message, question, server.records.get(question.name)), peer.port, peer.address);
  });
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  server.address = `127.0.0.1:${(socket.address() as AddressInfo).port}`;
  return server;
}

interface Question {
  name: string;
  type: number;
  /** Offset just past the question (QNAME, QTYPE, QCLASS). */
  end: number;
}

function parseQuestion(message: Buffer): Question | undefined {
  const labels: string[] = [];
  let offset = 12;
  while (offset < message.length) {
    const length = message[offset]!;
    offset++;
    if (length === 0) break;
    labels.push(message.toString('latin1', offset, offset + length).toLowerCase());
    offset += length;
  }
  if (offset + 4 > message.length) return undefined;
  return { name: labels.join('.'), type: message.readUInt16BE(offset), end: offset + 4 };
}

/** The query's header and question, then one answer per address of the asked type (pointing back at the question's name). */
function answer(query: Buffer, question: Question, records: DnsRecords | undefined): Buffer {
  const addresses = question.type === TYPE_A ? (records?.a ?? []) : question.type === TYPE_AAAA ? (records?.aaaa ?? []) : [];
  const header = Buffer.alloc(12);
  query.copy(header, 0, 0, 2); // id
  // QR, opcode 0, RD copied, RA; RCODE NXDOMAIN for an unknown name, else NOERROR (empty answer = no data).
  header.writeUInt16BE(0x8180 | (query.readUInt16BE(2) & 0x0100) | (records ? 0 : NXDOMAIN), 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(addresses.length, 6);
  const answers = addresses.map((address) => {
    const rdata = Buffer.from(ipaddr.parse(address).toByteArray());
    const rr = Buffer.alloc(12);
    rr.writeUInt16BE(0xc00c, 0); // name: pointer to the question at offset 12
    rr.writeUInt16BE(question.type, 2);
    rr.writeUInt16BE(1, 4); // class IN
    rr.writeUInt32BE(records?.ttl ?? 0, 6);
    rr.writeUInt16BE(rdata.length, 10);
    return Buffer.concat([rr, rdata]);
  });
  return Buffer.concat([header, query.subarray(12, question.end), ...answers]);
}
