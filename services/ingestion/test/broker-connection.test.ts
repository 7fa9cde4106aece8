/**
 * kafka/broker-connection.ts against a scripted TCP peer: the request header it writes, answers
 * matched by correlation id however the bytes are split, and every way a connection ends
 * (broker closes, no answer in time, a frame no broker sends, close()) rejecting what waits
 * with an error that names the broker.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { BrokerConnection } from '../src/kafka/broker-connection.js';

interface Request {
  readonly apiKey: number;
  readonly version: number;
  readonly correlationId: number;
  readonly clientId: string | null;
  /** Everything after the client id: the v2 header's tagged fields, if any, and the body. */
  readonly rest: Buffer;
  /** The whole frame, size included. */
  readonly raw: Buffer;
}

/** A peer that parses request frames and hands each to `onRequest` with its socket. */
async function peer(onRequest: (socket: Socket, req: Request) => void): Promise<{ server: Server; host: string; port: number }> {
  const server = createServer((socket) => {
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 4 && buffered.length >= 4 + buffered.readInt32BE(0)) {
        const raw = buffered.subarray(0, 4 + buffered.readInt32BE(0));
        buffered = buffered.subarray(raw.length);
        const clientIdLength = raw.readInt16BE(12);
        onRequest(socket, {
          apiKey: raw.readInt16BE(4),
          version: raw.readInt16BE(6),
          correlationId: raw.readInt32BE(8),
          clientId: clientIdLength < 0 ? null : raw.toString('utf8', 14, 14 + clientIdLength),
          rest: raw.subarray(14 + Math.max(0, clientIdLength)),
          raw,
        });
      }
    });
    socket.on('error', () => {});
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  servers.push(server);
  return { server, host: '127.0.0.1', port: (server.address() as AddressInfo).port };
}
const servers: Server[] = [];
after(() => {
  for (const s of servers) s.close();
});

/** A response frame: size, correlation id, body. */
function frame(correlationId: number, body: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeInt32BE(4 + body.length, 0);
  head.writeInt32BE(correlationId, 4);
  return Buffer.concat([head, body]);
}

const connect = (p: { host: string; port: number }) =>
  BrokerConnection.connect(p.host, p.port, { clientId: 'sluice-test', connectTimeoutMs: 5_000 });

describe('BrokerConnection', () => {
  it('writes request header v1, and v2 (v1 and an empty tagged-fields byte) when flexible', async () => {
    const seen: Request[] = [];
    const p = await peer((socket, req) => {
      seen.push(req);
      socket.write(frame(req.correlationId, Buffer.from([req.apiKey])));
    });
    const conn = await connect(p);
    try {
      const body = Buffer.from('body!');
      assert.deepEqual(await conn.request(1, 11, body), Buffer.from([1]));
      assert.deepEqual(await conn.request(3, 12, body, { flexible: true }), Buffer.from([3]));
      assert.deepEqual(
        seen.map((r) => [r.apiKey, r.version, r.clientId, r.rest.toString('latin1')]),
        [
          [1, 11, 'sluice-test', 'body!'],
          [3, 12, 'sluice-test', '\x00body!'],
        ],
      );
      assert.notEqual(seen[0].correlationId, seen[1].correlationId);
      assert.equal(seen[0].raw.readInt32BE(0), seen[0].raw.length - 4, 'the size counts everything after it');
    } finally {
      conn.close();
    }
  });

  it('pipelined requests get their own answers, in whatever order and however split the bytes come', async () => {
    const waiting: Request[] = [];
    let answer: ((socket: Socket, reqs: Request[]) => void) | null = null;
    const p = await peer((socket, req) => {
      waiting.push(req);
      if (waiting.length === 3 && answer) answer(socket, waiting.splice(0));
    });
    const conn = await connect(p);
    try {
      const ask = () => Promise.all([1, 2, 3].map((n) => conn.request(18, 0, Buffer.from([n]))));
      const bodyOf = (r: Request) => Buffer.concat([Buffer.from('answer to '), r.rest]);

      // In reverse order, all three frames in one write.
      answer = (socket, reqs) => socket.write(Buffer.concat(reqs.reverse().map((r) => frame(r.correlationId, bodyOf(r)))));
      assert.deepEqual(
        (await ask()).map((b) => b.toString('latin1')),
        ['answer to \x01', 'answer to \x02', 'answer to \x03'],
      );

      // One byte per write: sizes and frames cut everywhere.
      answer = (socket, reqs) =>
        void (async () => {
          const bytes = Buffer.concat(reqs.map((r) => frame(r.correlationId, bodyOf(r))));
          for (const b of bytes) {
            socket.write(Buffer.from([b]));
            await sleep(1);
          }
        })();
      assert.deepEqual(
        (await ask()).map((b) => b.toString('latin1')),
        ['answer to \x01', 'answer to \x02', 'answer to \x03'],
      );
    } finally {
      conn.close();
    }
  });

  it('a large response arriving in many chunks comes back whole', async () => {
    const big = Buffer.alloc(8 << 20);
    for (let i = 0; i < big.length; i += 4) big.writeUInt32BE(i, i);
    const p = await peer((socket, req) => {
      const bytes = frame(req.correlationId, big);
      for (let at = 0; at < bytes.length; at += 65_521) socket.write(bytes.subarray(at, at + 65_521));
    });
    const conn = await connect(p);
    try {
      assert.ok((await conn.request(1, 11, Buffer.alloc(0))).equals(big));
    } finally {
      conn.close();
    }
  });

  it('answers read into the one receive buffer: whole however their sizes change, and pipelined ones intact until all arrive', async () => {
    /** The answer to a request asking for n bytes: n bytes counting up from the request's own first byte. */
    const answerOf = (req: Request) => {
      const n = req.rest.readInt32BE(0);
      return Buffer.from(Array.from({ length: n }, (_, i) => (req.rest[4] + i) & 0xff));
    };
    const p = await peer((socket, req) => {
      const bytes = frame(req.correlationId, answerOf(req));
      for (let at = 0; at < bytes.length; at += 40_000) socket.write(bytes.subarray(at, at + 40_000));
    });
    const ask = (n: number, seed: number) => {
      const body = Buffer.alloc(5);
      body.writeInt32BE(n, 0);
      body[4] = seed;
      return { want: answerOf({ rest: body } as Request), answer: conn.request(1, 11, body) };
    };
    const conn = await connect(p);
    try {
      // One at a time, small and large in turn: each answer whole when it resolves.
      for (const [i, n] of [10, 200_000, 5, 3 << 20, 100, 70_000].entries()) {
        const { want, answer } = ask(n, i);
        assert.ok((await answer).equals(want), `answer ${i} (${n} bytes)`);
      }
      // Pipelined, a small answer first and larger ones after it (the buffer grows meanwhile):
      // every answer is still whole once the last has arrived.
      const asked = [7, 5 << 20, 64 << 10, 3].map((n, i) => ask(n, 100 + i));
      const answers = await Promise.all(asked.map((a) => a.answer));
      for (const [i, a] of asked.entries()) assert.ok(answers[i].equals(a.want), `pipelined answer ${i}`);
    } finally {
      conn.close();
    }
  });

  for (const [name, size] of [
    ['over 512 MiB', 512 * 1024 * 1024 + 1],
    ['negative', -5],
  ] as const)
    it(`a frame size ${name} is a protocol error: the connection closes and every pending request fails`, async () => {
      const p = await peer((socket, req) => {
        if (req.apiKey !== 1) return; // the second request waits
        const bogus = Buffer.alloc(8);
        bogus.writeInt32BE(size, 0);
        bogus.writeInt32BE(req.correlationId, 4);
        socket.write(bogus);
      });
      const conn = await connect(p);
      const address = `${p.host}:${p.port}`;
      const first = conn.request(1, 11, Buffer.alloc(0));
      const second = conn.request(2, 1, Buffer.alloc(0));
      const names = (err: unknown) => err instanceof Error && err.message.includes(address) && err.message.includes(String(size));
      await assert.rejects(first, names);
      await assert.rejects(second, names);
      assert.equal(conn.closed, true);
      await assert.rejects(conn.request(1, 11, Buffer.alloc(0)), names, 'later requests fail the same way');
    });

  it('the broker closing the connection fails what waits: "connection to host:port closed"', async () => {
    const p = await peer((socket) => socket.end());
    const conn = await connect(p);
    await assert.rejects(conn.request(1, 11, Buffer.alloc(0)), { message: `connection to ${p.host}:${p.port} closed` });
    assert.equal(conn.closed, true);
  });

  it('no answer within timeoutMs: "no answer from host:port within N ms", and the connection closes', async () => {
    const p = await peer(() => {});
    const conn = await connect(p);
    const other = conn.request(1, 11, Buffer.alloc(0));
    await assert.rejects(conn.request(1, 11, Buffer.alloc(0), { timeoutMs: 50 }), {
      message: `no answer from ${p.host}:${p.port} within 50 ms`,
    });
    await assert.rejects(other, { message: `no answer from ${p.host}:${p.port} within 50 ms` }, 'an answer could no longer be matched');
    assert.equal(conn.closed, true);
  });

  it('close() fails what waits and what comes after', async () => {
    const p = await peer(() => {});
    const conn = await connect(p);
    assert.equal(conn.closed, false);
    const pending = conn.request(1, 11, Buffer.alloc(0));
    conn.close();
    await assert.rejects(pending, { message: `connection to ${p.host}:${p.port} closed` });
    await assert.rejects(conn.request(1, 11, Buffer.alloc(0)), { message: `connection to ${p.host}:${p.port} closed` });
  });

  it('an answer to no request closes the connection', async () => {
    const p = await peer((socket, req) => socket.write(frame(req.correlationId + 1000, Buffer.alloc(0))));
    const conn = await connect(p);
    await assert.rejects(conn.request(1, 11, Buffer.alloc(0)), /answered correlation id \d+, which no request has/);
    assert.equal(conn.closed, true);
  });

  it('a broker nobody listens at: the connect error names it', async () => {
    const { server, host, port } = await peer(() => {});
    server.close();
    await once(server, 'close');
    await assert.rejects(connect({ host, port }), (err: unknown) => err instanceof Error && err.message.includes(`${host}:${port}`));
  });
});
