/**
 * A request that cannot be decoded is INVALID_ARGUMENT naming its field, on unary calls and
 * streams alike, and never reaches a handler (it was "INTERNAL: Error deserializing request").
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { CatalogServiceService, Job } from '#shared/gen/sluice/v1/catalog.js';
import { TransformationServiceService, TransformRequest } from '#shared/gen/sluice/v1/transformation.js';
import { createClient } from '#shared/grpc/client.js';
import { outOfRangeInteger } from '#shared/grpc/decode.js';
import { bindService, PROTO_DIR, startGrpcServer, type RunningGrpcServer } from '#shared/grpc/server.js';
import { createLogger } from '#shared/logger.js';

const types = protoLoader.loadSync(['sluice/v1/catalog.proto', 'sluice/v1/transformation.proto'], {
  includeDirs: [PROTO_DIR],
  keepCase: true,
});

const bytes = (build: (w: BinaryWriter) => void) => {
  const w = new BinaryWriter();
  build(w);
  return w.finish();
};
const message = (number: number, inner: Uint8Array) => (w: BinaryWriter) => w.tag(number, WireType.LengthDelimited).bytes(inner);
const HUGE = 1_000_000_000_000_000_000n;

describe('the field of an out-of-range 64-bit integer', () => {
  const validJob = Job.encode(Job.fromPartial({ name: 'j', commitIntervalMs: 5000, parallelism: 1 })).finish();
  const cases: [string, string, Uint8Array, string | undefined][] = [
    ['a valid job', 'sluice.v1.CreateJobRequest', bytes(message(1, validJob)), undefined],
    ['2^53 - 1 is in range', 'sluice.v1.Job', bytes((w) => w.tag(7, WireType.Varint).int64(BigInt(Number.MAX_SAFE_INTEGER))), undefined],
    ['a top-level field', 'sluice.v1.Job', bytes((w) => w.tag(7, WireType.Varint).int64(HUGE)), 'commit_interval_ms'],
    [
      'the last of a field given twice (it is the value decoded)',
      'sluice.v1.Job',
      bytes((w) => w.raw(validJob).tag(8, WireType.Varint).int64(-HUGE)),
      'buffer_bytes',
    ],
    [
      'nested messages',
      'sluice.v1.CreateJobRequest',
      bytes(
        message(
          1,
          bytes(
            message(
              6,
              bytes((w) => w.tag(2, WireType.Varint).int64(HUGE)),
            ),
          ),
        ),
      ),
      'job.window.end_time_ms',
    ],
    [
      'the element of a repeated message',
      'sluice.v1.StartPosition',
      bytes((w) => {
        message(
          3,
          bytes((x) => x.tag(2, WireType.Varint).int64(5n)),
        )(w);
        message(
          3,
          bytes((x) => x.tag(2, WireType.Varint).int64(HUGE)),
        )(w);
      }),
      'offsets.1.offset',
    ],
    [
      'a refused record in a batch acknowledgement (types.proto from transformation.proto)',
      'sluice.v1.TransformResponse',
      bytes(
        message(
          1,
          bytes(
            message(
              6,
              bytes((w) => w.tag(3, WireType.Varint).int64(HUGE)),
            ),
          ),
        ),
      ),
      'ack.error_records.0.offset',
    ],
    [
      'the base offset of a record run in a Transform batch',
      'sluice.v1.TransformRequest',
      bytes(
        message(
          2,
          bytes(
            message(
              4,
              bytes((w) => w.tag(3, WireType.Varint).int64(HUGE)),
            ),
          ),
        ),
      ),
      'batch.runs.0.base_offset',
    ],
  ];
  for (const [name, type, input, path] of cases) it(name, () => assert.equal(outOfRangeInteger(input, type, types, '')?.path, path));
});

describe('the server answers INVALID_ARGUMENT before any handler', () => {
  let server: RunningGrpcServer;
  let address: string;
  const created: string[] = [];
  const batches: number[] = [];
  before(async () => {
    server = await startGrpcServer({
      host: '127.0.0.1',
      port: 0,
      protoFiles: ['sluice/v1/catalog.proto', 'sluice/v1/transformation.proto'],
      logger: createLogger('test', 'silent'),
      services: [
        bindService('sluice.v1.CatalogService', CatalogServiceService, {
          async createJob(request) {
            created.push(request.job?.name ?? '');
            return { job: request.job };
          },
        }),
        bindService('sluice.v1.TransformationService', TransformationServiceService, {
          async transform(call) {
            for await (const request of call as AsyncIterable<TransformRequest>) {
              if (request.message?.$case === 'batch') batches.push(request.message.value.sequence);
            }
          },
        }),
      ],
    });
    address = `127.0.0.1:${server.port}`;
  });
  after(() => server.stop(1000));

  it('a unary call: the field named, the handler never called, the next call served', async () => {
    const raw = new grpc.Client(address, grpc.credentials.createInsecure());
    const request = bytes(
      message(
        1,
        bytes((w) =>
          w
            .raw(Job.encode(Job.fromPartial({ name: 'j' })).finish())
            .tag(7, WireType.Varint)
            .int64(HUGE),
        ),
      ),
    );
    const answer = await new Promise<grpc.ServiceError | null>((resolve) =>
      raw.makeUnaryRequest(
        '/sluice.v1.CatalogService/CreateJob',
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.from(request),
        (err) => resolve(err),
      ),
    );
    raw.close();
    assert.equal(answer?.code, grpc.status.INVALID_ARGUMENT);
    assert.equal(
      answer?.details,
      'job.commit_interval_ms: 1000000000000000000 is out of range (a whole number from -9007199254740991 to 9007199254740991)',
    );
    assert.deepEqual(created, []);
    const client = createClient(CatalogServiceService, address, { retries: 0 });
    await client.createJob({ job: Job.fromPartial({ name: 'fine' }) });
    client.close();
    assert.deepEqual(created, ['fine']);
  });

  it('a stream: the call ends INVALID_ARGUMENT at the bad message, after the good ones were handled', async () => {
    const raw = new grpc.Client(address, grpc.credentials.createInsecure());
    const call = raw.makeBidiStreamRequest(
      '/sluice.v1.TransformationService/Transform',
      (b: Buffer) => b,
      (b: Buffer) => b,
    );
    const ended = new Promise<grpc.StatusObject>((resolve) => {
      call.on('status', resolve);
      call.on('error', () => {});
      call.on('data', () => {});
    });
    call.write(
      Buffer.from(
        TransformRequest.encode({ message: { $case: 'batch', value: { sequence: 1, runs: [], covers: [], traceparent: '' } } }).finish(),
      ),
    );
    call.write(
      Buffer.from(
        bytes(
          message(
            2,
            bytes(
              message(
                4,
                bytes((w) => w.tag(3, WireType.Varint).int64(HUGE)),
              ),
            ),
          ),
        ),
      ),
    );
    const status = await ended;
    raw.close();
    assert.equal(status.code, grpc.status.INVALID_ARGUMENT);
    assert.match(status.details, /^batch\.runs\.0\.base_?[oO]ffset: 1000000000000000000 is out of range/);
    assert.deepEqual(batches, [1]);
  });
});
