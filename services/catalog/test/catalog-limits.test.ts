/**
 * Limits on what the catalog takes over gRPC (issue 14 item 6): CreateJob refuses what the CLI
 * refuses (one shared validation, the same words), a 64-bit integer beyond 2^53 is named by its
 * field, huge names get a prompt INVALID_ARGUMENT quoting a prefix, and a request over the
 * server's size limit ends RESOURCE_EXHAUSTED; after each, the same client's next call works.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { CreateJobRequest, type DeepPartial, type Job, Source, StartFrom } from '#shared/gen/sluice/v1/catalog.js';
import { ErrorPolicyKind, MappingSpec } from '#shared/gen/sluice/v1/types.js';
import { jobProblems } from '#shared/job-rules.js';
import { field, job as jobOf, source, tableRequest } from '#test-support/builders.js';
import { createTestDatabase } from '#test-support/postgres.js';
import { startCatalog } from '#test-support/services.js';
import { tempDir } from '#test-support/temp.js';
import { failure, startTestCatalog, type TestCatalog } from './harness.js';

const ref = { database: 'limits', table: 'events' };
const job = (name: string, overrides: DeepPartial<Job> = {}) =>
  jobOf(name, 'events_src', ref, { start: { from: StartFrom.START_FROM_EARLIEST }, ...overrides });

/** Sends request bytes as they are (a client of ours could never encode them) and returns the status. */
function rawCall(address: string, path: string, bytes: Uint8Array): Promise<grpc.StatusObject> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      path,
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.from(bytes),
      { deadline: Date.now() + 20_000 },
      (err) => {
        client.close();
        resolve(
          err
            ? { code: err.code, details: err.details, metadata: err.metadata }
            : { code: grpc.status.OK, details: '', metadata: new grpc.Metadata() },
        );
      },
    );
  });
}

/** A message's bytes followed by one more field: a scalar appended last overrides the one encoded before. */
function withField(bytes: Uint8Array, number: number, write: (w: BinaryWriter) => void, wireType = WireType.Varint): Uint8Array {
  const w = new BinaryWriter();
  w.raw(bytes);
  w.tag(number, wireType);
  write(w);
  return w.finish();
}

/** CreateJobRequest bytes for `job`, its mapping replaced by these bytes when given, with extra Job fields appended. */
function createJobBytes(j: Job, mappingBytes?: Uint8Array, extra: (w: BinaryWriter) => void = () => {}): Uint8Array {
  const w = new BinaryWriter();
  const jobWriter = new BinaryWriter();
  jobWriter.raw(encodeJob(mappingBytes ? { ...j, mapping: undefined } : j));
  if (mappingBytes) jobWriter.tag(4, WireType.LengthDelimited).bytes(mappingBytes);
  extra(jobWriter);
  w.tag(1, WireType.LengthDelimited).bytes(jobWriter.finish());
  return w.finish();
}

function encodeJob(j: Job): Uint8Array {
  // The Job's own bytes: CreateJobRequest.encode wraps them in field 1; strip that header.
  const wrapped = CreateJobRequest.encode({ job: j }).finish();
  const reader = new (class {
    pos = 0;
    varint(): number {
      let shift = 0;
      let result = 0;
      for (;;) {
        const b = wrapped[this.pos++];
        result |= (b & 0x7f) << shift;
        if (b < 0x80) return result;
        shift += 7;
      }
    }
  })();
  reader.varint(); // tag
  const length = reader.varint();
  return wrapped.subarray(reader.pos, reader.pos + length);
}

let cat: TestCatalog;
before(async () => {
  cat = await startTestCatalog();
  await cat.client.createDatabase({ name: ref.database, location: '', properties: {} });
  await cat.client.createTable(tableRequest(ref, [field(0, 'v', 'string')]));
  await cat.client.createSource({ source: source('events_src', 'events') });
});
after(async () => {
  await cat?.stop();
});

describe('CreateJob refuses what the CLI refuses, naming the field', () => {
  const cases: [string, Job][] = [
    ['flatten level 9', job('flatten9', { mapping: { flattenLevel: 9 } })],
    ['parallelism 0', job('par0', { parallelism: 0 })],
    ['parallelism 10000', job('par10000', { parallelism: 10000 })],
    ['time zone Mars/Olympus', job('mars', { mapping: { timeZone: 'Mars/Olympus' } })],
    [
      'an error-topic policy without a topic',
      job('notopic', { mapping: { errorPolicy: { kind: ErrorPolicyKind.ERROR_POLICY_KIND_ERROR_TOPIC } } }),
    ],
    ['a commit interval of 10 ms', job('fast', { commitIntervalMs: 10 })],
  ];
  for (const [name, input] of cases) {
    it(`refuses ${name}`, async () => {
      const [problem] = jobProblems(input);
      assert.ok(problem, 'the shared rules refuse it (so does the CLI)');
      const refused = await failure(cat.client.createJob({ job: input }));
      assert.equal(refused.code, grpc.status.INVALID_ARGUMENT);
      assert.equal(refused.details, `${problem.field}: ${problem.problem}`);
      assert.equal((await cat.client.listJobs({})).jobs.length, 0, 'nothing was stored');
    });
  }

  it('refuses enum values no enum has (99), which it used to store as UNRECOGNIZED', async () => {
    const valid = job('enum99');
    const enums: [number, string][] = [
      [1, 'job.mapping.format'],
      [2, 'job.mapping.mode'],
      [10, 'job.mapping.schema_evolution'],
    ];
    for (const [number, fieldPath] of enums) {
      const mapping = withField(MappingSpec.encode(MappingSpec.fromPartial({})).finish(), number, (w) => w.int32(99));
      const answer = await rawCall(cat.address, '/sluice.v1.CatalogService/CreateJob', createJobBytes(valid, mapping));
      assert.equal(answer.code, grpc.status.INVALID_ARGUMENT, fieldPath);
      assert.match(answer.details, new RegExp(`^${fieldPath.replace(/\./g, '\\.')}: is not a known value`));
    }
    const offsetReset = await rawCall(
      cat.address,
      '/sluice.v1.CatalogService/CreateJob',
      createJobBytes(valid, undefined, (w) => w.tag(10, WireType.Varint).int32(99)),
    );
    assert.match(offsetReset.details, /^job\.offset_reset: is not a known value/);
    assert.equal((await cat.client.listJobs({})).jobs.length, 0);
  });

  it('CreateSource refuses enum values no enum has, and brokers that are not host:port, as the CLI does', async () => {
    // The source (field 1 of the request) with its format (field 4) given again, as 99: the last wins.
    const sourceBytes = withField(Source.encode(source('src99', 'events')).finish(), 4, (w) => w.int32(99));
    const bytes = new BinaryWriter().tag(1, WireType.LengthDelimited).bytes(sourceBytes).finish();
    const answer = await rawCall(cat.address, '/sluice.v1.CatalogService/CreateSource', bytes);
    assert.equal(answer.code, grpc.status.INVALID_ARGUMENT);
    assert.match(answer.details, /^source\.format: is not a known value/);
    const refused = await failure(cat.client.createSource({ source: source('src2', 'events', { brokers: ['localhost:9092', 'nohost'] }) }));
    assert.equal(refused.details, 'source.brokers.1: "nohost" is not host:port');
    assert.deepEqual(
      (await cat.client.listSources({})).sources.map((s) => s.name),
      ['events_src'],
    );
  });

  it('names the field of a 64-bit integer beyond 2^53 (it used to be "INTERNAL: Error deserializing request")', async () => {
    const bytes = createJobBytes(job('huge'), undefined, (w) => w.tag(7, WireType.Varint).int64(1_000_000_000_000_000_000n));
    const answer = await rawCall(cat.address, '/sluice.v1.CatalogService/CreateJob', bytes);
    assert.equal(answer.code, grpc.status.INVALID_ARGUMENT);
    assert.match(answer.details, /^job\.commit_interval_ms: 1000000000000000000 is out of range/);
    const nested = createJobBytes(job('huge2'), undefined, (w) => {
      const window = new BinaryWriter()
        .tag(2, WireType.Varint)
        .int64(-(10n ** 18n))
        .finish();
      w.tag(6, WireType.LengthDelimited).bytes(window);
    });
    assert.match(
      (await rawCall(cat.address, '/sluice.v1.CatalogService/CreateJob', nested)).details,
      /^job\.window\.end_time_ms: -1000000000000000000 is out of range/,
    );
    assert.equal((await cat.client.listJobs({})).jobs.length, 0);
    await cat.client.createJob({ job: job('fine') });
    await cat.client.deleteJob({ name: 'fine' });
  });
});

describe('huge names and requests', () => {
  const huge = 'a'.repeat(1024 * 1024);

  it('a 1 MB name gets a prompt INVALID_ARGUMENT quoting a prefix, and the same client goes on working', async () => {
    const calls: [string, () => Promise<unknown>][] = [
      ['database', () => cat.client.createDatabase({ name: huge, location: '', properties: {} })],
      ['table', () => cat.client.createTable(tableRequest({ database: ref.database, table: huge }, [field(0, 'v', 'string')]))],
      ['source', () => cat.client.createSource({ source: source(huge, 'events') })],
      ['topic', () => cat.client.createSource({ source: source('t1', huge) })],
      ['job', () => cat.client.createJob({ job: job(huge) })],
      ['get job', () => cat.client.getJob({ name: huge })],
    ];
    for (const [what, call] of calls) {
      const refused = await failure(call());
      assert.equal(refused.code, grpc.status.INVALID_ARGUMENT, what);
      assert.ok(refused.details.length < 300, `${what}: ${refused.details.length} characters`);
      assert.match(refused.details, /"a{64}"… \(1048576 characters\)/, what);
      assert.ok(
        (await cat.client.listDatabases({})).databases.some((d) => d.name === ref.database),
        `${what}: the next call works`,
      );
    }
  });

  it('database properties and locations longer than the JDBC catalog holds are INVALID_ARGUMENT, not INTERNAL', async () => {
    const cases: [string, () => Promise<unknown>, RegExp][] = [
      [
        'a 2 MB property value',
        () => cat.client.createDatabase({ name: 'p1', location: '', properties: { blob: 'x'.repeat(2 * 1024 * 1024) } }),
        /^properties\."blob" is 2097152 characters, more than 1000$/,
      ],
      [
        'a 300-character property key',
        () => cat.client.createDatabase({ name: 'p2', location: '', properties: { ['k'.repeat(300)]: 'v' } }),
        /^properties key "k{64}"… \(300 characters\) is longer than 255 characters$/,
      ],
      [
        'a 1 MB location',
        () => cat.client.createDatabase({ name: 'p3', location: `${cat.warehouse}/${'l'.repeat(1024 * 1024)}`, properties: {} }),
        /^location ".{64}"… \(\d+ characters\) is longer than 900 characters$/,
      ],
      [
        'a 1 MB table location',
        () =>
          cat.client.createTable(
            tableRequest({ database: ref.database, table: 'far' }, [field(0, 'v', 'string')], {
              location: `${cat.warehouse}/${'l'.repeat(1024 * 1024)}`,
            }),
          ),
        /^location ".{64}"… \(\d+ characters\) is longer than 900 characters$/,
      ],
    ];
    for (const [what, call, message] of cases) {
      const refused = await failure(call());
      assert.equal(refused.code, grpc.status.INVALID_ARGUMENT, what);
      assert.match(refused.details, message, what);
    }
    assert.deepEqual(
      (await cat.client.listDatabases({})).databases.map((d) => d.name),
      [ref.database],
      'nothing was created',
    );
  });

  it('a request over SLUICE_MAX_MESSAGE_BYTES ends RESOURCE_EXHAUSTED and the connection goes on', async () => {
    const db = await createTestDatabase('sluice_limits');
    const dir = tempDir('catalog-limits');
    const small = await startCatalog({
      databaseUrl: db.url,
      warehouse: join(dir.path, 'warehouse'),
      env: { SLUICE_MAX_MESSAGE_BYTES: String(1024 * 1024) },
      client: { retries: 0, deadlineMs: 20_000 },
    });
    try {
      const big = { name: 'b'.repeat(2 * 1024 * 1024) };
      const refused = await failure(small.client.getDatabase(big));
      assert.equal(refused.code, grpc.status.RESOURCE_EXHAUSTED);
      assert.equal((await small.client.createDatabase({ name: 'small', location: '', properties: {} })).created, true);
      const taken = await failure(cat.client.getDatabase(big));
      assert.equal(taken.code, grpc.status.INVALID_ARGUMENT, 'the default (64 MiB) takes it, and the name is refused');
    } finally {
      await small.stop();
      await db.drop();
      dir.remove();
    }
  });
});
