/**
 * Messages framed in place (framing.ts) reach the server as sent, while the client reuses one
 * buffer for every message from each write's callback, as ingestion's request buffers do. If
 * grpc-js framed a frame again, or a write's callback came before the frame was on its way to
 * the socket (grpc-js's retry buffer acknowledges a message that fits at once and sends it
 * later), the server would meet a header in its message or a later message's bytes in an
 * earlier one.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type * as grpc from '@grpc/grpc-js';
import { TransformationServiceService, TransformRequest, type TransformResponse } from '#shared/gen/sluice/v1/transformation.js';
import { createClient } from '#shared/grpc/client.js';
import { createRequire } from 'node:module';
import {
  FRAME_HEADER_BYTES,
  framedInPlace,
  framingPatched,
  POOLED_FRAME_BYTES,
  receiveIntoPool,
  releaseReceived,
} from '#shared/grpc/framing.js';
import type { RunningGrpcServer } from '#shared/grpc/server.js';
import { startTransformationServer } from '#test-support/services.js';
import { seededRandom } from '#test-support/random.js';

/** Smaller than grpc-js's default per-call retry buffer (1 MiB), so it would keep them. */
const MESSAGE_VALUE_BYTES = 200_000;
const MESSAGES = 60;

/** Batch `sequence` carrying one value of MESSAGE_VALUE_BYTES bytes, each the sequence's low byte. */
function batch(sequence: number): TransformRequest {
  return {
    message: {
      $case: 'batch',
      value: {
        sequence,
        covers: [],
        traceparent: '',
        runs: [
          {
            topic: 't',
            partition: 0,
            baseOffset: sequence,
            offsetDeltas: [0],
            timestampsMs: [0],
            values: Buffer.alloc(MESSAGE_VALUE_BYTES, sequence & 0xff),
            valueLengths: [MESSAGE_VALUE_BYTES],
            keys: Buffer.alloc(0),
            keyLengths: [],
            headers: [],
          },
        ],
      },
    },
  };
}

/** What is wrong with a received request, if anything, for the sequence it should carry. */
function problem(request: TransformRequest, expected: number): string | null {
  if (request.message?.$case !== 'batch') return `request ${expected} is ${request.message?.$case ?? 'empty'}, not a batch`;
  const { sequence, runs } = request.message.value;
  if (sequence !== expected) return `request ${expected} carries sequence ${sequence}`;
  const values = runs[0]?.values;
  if (values?.length !== MESSAGE_VALUE_BYTES) return `request ${expected} has ${values?.length ?? 0} value bytes`;
  const wrong = values.findIndex((b) => b !== (expected & 0xff));
  return wrong < 0 ? null : `request ${expected} has byte ${values[wrong]} at ${wrong}`;
}

describe('gRPC messages framed in place', () => {
  let server: RunningGrpcServer;
  const received: TransformRequest[] = [];
  let allReceived: () => void = () => {};
  before(async () => {
    server = await startTransformationServer({
      // The call ends when this settles: once every message has come.
      transform: (call: grpc.ServerDuplexStream<TransformRequest, TransformResponse>) =>
        new Promise<void>((resolve) => {
          call.on('data', (request: TransformRequest) => {
            received.push(request);
            if (received.length === MESSAGES) {
              allReceived();
              resolve();
            }
          });
        }),
    });
  });
  after(() => server.stop(1000));

  it('is in place for this grpc-js', () => {
    assert.equal(framingPatched, true, 'grpc-js moved its identity handler: framing.ts must follow it');
  });

  it('arrive whole and in order while one buffer is reused from each write callback', async () => {
    const client = createClient(TransformationServiceService, `127.0.0.1:${server.port}`);
    const done = new Promise<void>((resolve) => (allReceived = resolve));
    try {
      const call = client.openStream('transform');
      // A stream that ends before every message is through fails the test instead of hanging it.
      const ended = new Promise<never>((_, reject) => {
        call.on('error', (err: Error) => reject(new Error(`the stream failed: ${err.message}`)));
        call.on('status', (status: grpc.StatusObject) => reject(new Error(`the stream ended with code ${status.code}`)));
      });
      ended.catch(() => {});
      const encoded = TransformRequest.encode(batch(0)).finish();
      const buffer = Buffer.alloc(FRAME_HEADER_BYTES + encoded.length + 64);
      for (let sequence = 0; sequence < MESSAGES; sequence++) {
        const message = TransformRequest.encode(batch(sequence)).finish();
        buffer.set(message, FRAME_HEADER_BYTES);
        await Promise.race([
          ended,
          new Promise<void>((resolve, reject) =>
            call.write(framedInPlace(buffer, message.length), (err: Error | null | undefined) => (err ? reject(err) : resolve())),
          ),
        ]);
        // What a reused buffer meets next: garbage where the frame was.
        buffer.fill(0xee);
      }
      await Promise.race([ended, done]);
      assert.equal(received.length, MESSAGES);
      for (let sequence = 0; sequence < MESSAGES; sequence++) assert.equal(problem(received[sequence], sequence), null);
    } finally {
      client.close();
    }
  });

  it('leaves messages that are not frames to be framed by grpc-js', async () => {
    received.length = 0;
    const client = createClient(TransformationServiceService, `127.0.0.1:${server.port}`);
    const done = new Promise<void>((resolve) => (allReceived = resolve));
    try {
      const call = client.openStream('transform');
      call.on('error', () => {});
      for (let sequence = 0; sequence < MESSAGES; sequence++) call.write(batch(sequence));
      await done;
      for (let sequence = 0; sequence < MESSAGES; sequence++) assert.equal(problem(received[sequence], sequence), null);
    } finally {
      client.close();
    }
  });

  it('refuses a frame that does not fit its buffer', () => {
    assert.throws(() => framedInPlace(Buffer.alloc(10), 6), /a frame of 6 message bytes does not fit in a buffer of 10/);
  });
});

interface Decoder {
  write(data: Buffer): Buffer[];
}
type DecoderClass = new (maxReadMessageLength: number) => Decoder;

/** grpc-js's stream decoder, and its own write() taken before receiveIntoPool replaces it. */
const { StreamDecoder } = createRequire(import.meta.url)('@grpc/grpc-js/build/src/stream-decoder.js') as { StreamDecoder: DecoderClass };
const grpcWrite = StreamDecoder.prototype.write;

/** `messages` framed one after another. */
function frames(messages: Buffer[]): Buffer {
  return Buffer.concat(
    messages.flatMap((m) => {
      const header = Buffer.alloc(FRAME_HEADER_BYTES);
      header.writeUInt32BE(m.length, 1);
      return [header, m];
    }),
  );
}

/** The frames a decoder finds in `stream` cut at `cuts`, each copied (a pooled one may be reused). */
function decodeCut(decoder: Decoder, stream: Buffer, cuts: number[]): Buffer[] {
  const out: Buffer[] = [];
  let from = 0;
  for (const to of [...cuts, stream.length]) {
    for (const frame of decoder.write(stream.subarray(from, to))) {
      out.push(Buffer.from(frame));
      releaseReceived(frame);
    }
    from = to;
  }
  return out;
}

describe('gRPC messages received into the pool', () => {
  before(() => receiveIntoPool());

  it('finds the frames grpc-js finds, wherever the HTTP/2 chunks cut them', () => {
    const next = seededRandom(15);
    const random = { int: (n: number) => Math.floor(next() * n), pick: <T>(xs: T[]) => xs[Math.floor(next() * xs.length)] };
    for (let round = 0; round < 100; round++) {
      const sizes = Array.from({ length: 1 + random.int(5) }, () =>
        random.pick([
          0,
          1,
          4,
          5,
          100,
          POOLED_FRAME_BYTES - FRAME_HEADER_BYTES,
          POOLED_FRAME_BYTES,
          3 * POOLED_FRAME_BYTES + random.int(999),
        ]),
      );
      // Each message counts up from a random byte, so a byte out of place shows.
      const messages = sizes.map((n) => {
        const first = random.int(256);
        return Buffer.from(Uint8Array.from({ length: n }, (_, i) => (first + i) & 0xff));
      });
      const stream = frames(messages);
      const cuts = [...new Set(Array.from({ length: random.int(12) }, () => random.int(stream.length)))].sort((a, b) => a - b);
      const ours = decodeCut(new StreamDecoder(-1), stream, cuts);
      const theirs: Buffer[] = [];
      const original = new StreamDecoder(-1);
      let from = 0;
      for (const to of [...cuts, stream.length]) {
        theirs.push(...grpcWrite.call(original, stream.subarray(from, to)).map((f: Buffer) => Buffer.from(f)));
        from = to;
      }
      assert.deepEqual(ours, theirs, `round ${round}: sizes ${sizes.join(', ')}, cut at ${cuts.join(', ')}`);
      assert.deepEqual(
        ours.map((f) => f.subarray(FRAME_HEADER_BYTES)),
        messages,
      );
    }
  });

  it('refuses a message over the limit with grpc-js’s words', () => {
    const stream = frames([Buffer.alloc(11)]);
    assert.throws(() => new StreamDecoder(10).write(stream), { message: 'Received message larger than max (11 vs 10)' });
    assert.equal(new StreamDecoder(11).write(stream).length, 1);
  });

  it('takes a pooled message back once, and nothing else', () => {
    const [pooled] = new StreamDecoder(-1).write(frames([Buffer.alloc(POOLED_FRAME_BYTES)]));
    const [small] = new StreamDecoder(-1).write(frames([Buffer.alloc(10)]));
    const message = pooled.subarray(FRAME_HEADER_BYTES);
    assert.equal(releaseReceived(small), false, 'a message below POOLED_FRAME_BYTES is not the pool’s');
    assert.equal(releaseReceived(message.subarray(7, 9)), true, 'any view of the message gives it back');
    assert.equal(releaseReceived(message), false, 'a second release would give one buffer to two messages');
    // A little smaller, still pooled: it fits the buffer given back.
    const [next] = new StreamDecoder(-1).write(frames([Buffer.alloc(POOLED_FRAME_BYTES - 2)]));
    assert.ok(next.buffer === pooled.buffer, 'the next large message comes in the buffer given back');
    assert.equal(releaseReceived(next), true);
  });
});
