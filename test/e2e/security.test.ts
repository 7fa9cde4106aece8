/**
 * Issue 14: TLS and authentication on every RPC. The four services as real processes under
 * mutual TLS with bearer tokens (certificates made by openssl for this run, test/support/tls.ts):
 * a job created by an admin through the CLI lands rows an operator queries, while a plaintext
 * client, a client trusting another CA, a client without a certificate or with one from
 * another CA, a client without a token or with a wrong one, and an operator or service token
 * calling what only an admin may, are each refused with their code; health answers without a
 * token.
 *
 * Why UNAVAILABLE for TLS failures: a handshake that fails never carries a gRPC call, so there
 * is no status from the server; grpc-js reports the connection it could not establish as
 * UNAVAILABLE (the code a client retries), with the TLS error in the details. Refusals of the
 * credentials of an established connection are the server's statuses: UNAUTHENTICATED for a
 * missing or unknown token, PERMISSION_DENIED for a role below the method's.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { grpcCode, grpcMessage } from '#shared/errors.js';
import {
  AcquireCommitLeaseRequest,
  CatalogServiceService,
  CommitTableRequest,
  DropDatabaseRequest,
  DropTableRequest,
} from '#shared/gen/sluice/v1/catalog.js';
import { CommitServiceService, ReportDataFilesRequest } from '#shared/gen/sluice/v1/commit.js';
import { IngestionServiceService } from '#shared/gen/sluice/v1/ingestion.js';
import { InferSchemaRequest, TransformationServiceService } from '#shared/gen/sluice/v1/transformation.js';
import { type ClientSecurity, createClient } from '#shared/grpc/client.js';
import { checkHealth } from '#shared/grpc/health.js';
import { runSluice, runSluiceJson } from '#test-support/cli.js';
import { printLogsOnFailure, SERVICE_NAMES, startMesh, type TestMesh } from '#test-support/mesh.js';
import { createTestPki, type TestPki } from '#test-support/tls.js';
import { waitFor } from '#test-support/wait.js';

const suffix = randomBytes(4).toString('hex');
const database = `secure_${suffix}`;
const topic = `orders-${suffix}`;
const job = `orders-${suffix}`;
const ref = { database, table: 'orders' };

const SPEC = `name: ${job}
source:
  name: ${topic}
  topic: ${topic}
  format: JSON
  startFrom: earliest
table:
  database: ${database}
  name: orders
  columns:
    - { name: id, type: long, required: true }
    - { name: item, type: string }
commit:
  intervalMs: 1000
`;

let pki: TestPki;
let mesh: TestMesh | undefined;
printLogsOnFailure(() => mesh);

/** The code a call ends with: 'OK' or the status name. */
async function outcome(call: Promise<unknown>): Promise<string> {
  try {
    await call;
    return 'OK';
  } catch (err) {
    const code = grpcCode(err);
    if (code === undefined) throw err;
    return grpc.status[code];
  }
}

/** A catalog client with these settings (no retries: a refusal is final). */
const catalogWith = (security: ClientSecurity | undefined) =>
  createClient(CatalogServiceService, mesh!.addresses.catalog, { retries: 0, deadlineMs: 10_000, security });

describe('a mesh under mutual TLS with bearer tokens', () => {
  before(async () => {
    pki = createTestPki();
    mesh = await startMesh({ env: pki.serviceEnv('mutual'), clientEnv: pki.clientEnv('admin') });
    mesh.broker.createTopic(topic, 1);
    await writeFile(join(mesh.dir, 'orders.yaml'), SPEC);
  });
  after(async () => {
    await mesh?.stop();
    pki?.remove();
  });

  it('an admin creates and starts a job with the CLI, and an operator (--token) queries the rows it landed', async () => {
    const started = await runSluiceJson<{ state: string }>(
      mesh!.clientEnv,
      'job',
      'create',
      '-f',
      join(mesh!.dir, 'orders.yaml'),
      '--start',
    );
    assert.equal(started.state, 'JOB_STATE_RUNNING');
    mesh!.broker.append(topic, 0, [
      { value: Buffer.from('{"id":1,"item":"apple"}') },
      { value: Buffer.from('{"id":2,"item":"pear"}') },
      { value: Buffer.from('{"id":3,"item":"plum"}') },
    ]);
    // The operator's token by flag wins over the admin's SLUICE_TOKEN of clientEnv.
    const operator = ['--token', pki.tokens.operator];
    const result = await waitFor(
      'the three rows in sluice query',
      async () => {
        mesh!.assertNoCrash();
        const rows = await runSluiceJson<{ rows: { id: number; item: string }[] }>(
          mesh!.clientEnv,
          'query',
          `SELECT id, item FROM ${database}.orders ORDER BY id`,
          ...operator,
        );
        return rows.rows.length === 3 && rows;
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );
    assert.deepEqual(result.rows, [
      { id: 1, item: 'apple' },
      { id: 2, item: 'pear' },
      { id: 3, item: 'plum' },
    ]);
    const status = await runSluiceJson<{ rowsOut: number }>(mesh!.clientEnv, 'job', 'status', job, ...operator);
    assert.equal(status.rowsOut, 3);
  });

  it('health answers SERVING without a token, over TLS; a plaintext probe cannot connect', async () => {
    const tlsOnly = pki.clientSecurity({ ...pki.clientEnv('admin'), SLUICE_TOKEN: '' });
    assert.equal(tlsOnly.token, undefined);
    for (const name of SERVICE_NAMES) {
      assert.equal(await checkHealth(mesh!.addresses[name], '', 5000, tlsOnly.credentials), 'SERVING', name);
      assert.equal(await checkHealth(mesh!.addresses[name], '', 2000), 'UNAVAILABLE', `${name} over plaintext`);
    }
  });

  it('a plaintext client is refused: UNAVAILABLE (no TLS handshake, no call)', async () => {
    const client = catalogWith(undefined);
    try {
      assert.equal(await outcome(client.listDatabases({})), 'UNAVAILABLE');
    } finally {
      client.close();
    }
  });

  it('a client that trusts another CA is refused: UNAVAILABLE, the server certificate not verified', async () => {
    const client = catalogWith(pki.clientSecurity({ ...pki.clientEnv('admin'), SLUICE_TLS_CA: pki.otherCa }));
    try {
      const err = await client.listDatabases({}).then(
        () => assert.fail('the call went through'),
        (e: unknown) => e,
      );
      assert.equal(grpcCode(err), grpc.status.UNAVAILABLE);
      assert.match(grpcMessage(err), /certificate/i, 'the details name the certificate problem');
    } finally {
      client.close();
    }
  });

  it('under mutual TLS, a client without a certificate, or with one from another CA, is refused: UNAVAILABLE', async () => {
    const withoutCert = { SLUICE_TLS: 'on', SLUICE_TLS_CA: pki.ca, SLUICE_TOKEN: pki.tokens.admin };
    const foreignCert = { ...pki.clientEnv('admin'), SLUICE_TLS_CERT: pki.otherCert, SLUICE_TLS_KEY: pki.otherKey };
    for (const env of [withoutCert, foreignCert]) {
      const client = catalogWith(pki.clientSecurity(env));
      try {
        assert.equal(await outcome(client.listDatabases({})), 'UNAVAILABLE', JSON.stringify(env));
      } finally {
        client.close();
      }
    }
  });

  it('a client without a token, or with a wrong one, is refused by every service: UNAUTHENTICATED', async () => {
    for (const token of ['', 'not-a-token-of-this-mesh']) {
      const security = pki.clientSecurity({ ...pki.clientEnv('admin'), SLUICE_TOKEN: token });
      const options = { retries: 0, deadlineMs: 10_000, security };
      const catalog = createClient(CatalogServiceService, mesh!.addresses.catalog, options);
      const ingestion = createClient(IngestionServiceService, mesh!.addresses.ingestion, options);
      const commit = createClient(CommitServiceService, mesh!.addresses.commit, options);
      const transformation = createClient(TransformationServiceService, mesh!.addresses.transformation, options);
      try {
        const err = await catalog.getTable({ ref }).then(
          () => assert.fail('the call went through'),
          (e: unknown) => e,
        );
        assert.equal(grpcCode(err), grpc.status.UNAUTHENTICATED, `token ${JSON.stringify(token)}`);
        assert.match(grpcMessage(err), token === '' ? /GetTable needs a bearer token/ : /the bearer token is not valid/);
        assert.equal(await outcome(ingestion.listJobStatuses({})), 'UNAUTHENTICATED');
        assert.equal(await outcome(commit.getCommitStatus({ table: ref })), 'UNAUTHENTICATED');
        assert.equal(await outcome(transformation.inferSchema(InferSchemaRequest.fromPartial({}))), 'UNAUTHENTICATED');
      } finally {
        for (const c of [catalog, ingestion, commit, transformation]) c.close();
      }
    }
  });

  it('an operator calling DropTable is refused: PERMISSION_DENIED, and the table stays', async () => {
    const operator = catalogWith(pki.clientSecurity(pki.clientEnv('operator')));
    try {
      const err = await operator.dropTable(DropTableRequest.fromPartial({ ref, purge: true })).then(
        () => assert.fail('the operator dropped the table'),
        (e: unknown) => e,
      );
      assert.equal(grpcCode(err), grpc.status.PERMISSION_DENIED);
      assert.equal(grpcMessage(err), "sluice.v1.CatalogService/DropTable needs the admin role; the token's role is operator");
      const { table } = await operator.getTable({ ref });
      assert.equal(table?.ref?.table, 'orders', 'the operator may read the table, which is still there');
    } finally {
      operator.close();
    }
  });

  it('the calls services make to each other (the Transform stream included) are refused to operators, and drops to services: PERMISSION_DENIED', async () => {
    const operator = pki.clientSecurity(pki.clientEnv('operator'));
    const service = pki.clientSecurity(pki.clientEnv('service'));
    const catalogOperator = catalogWith(operator);
    const catalogService = catalogWith(service);
    const commitOperator = createClient(CommitServiceService, mesh!.addresses.commit, { retries: 0, security: operator });
    const transformationOperator = createClient(TransformationServiceService, mesh!.addresses.transformation, {
      retries: 0,
      security: operator,
    });
    try {
      // The Transform stream too: refused as it opens, before any batch is read.
      const stream = transformationOperator.openStream('transform');
      const [streamError] = await once(stream, 'error');
      assert.equal(grpcCode(streamError), grpc.status.PERMISSION_DENIED);
      assert.equal(await outcome(catalogOperator.commitTable(CommitTableRequest.fromPartial({ ref, job }))), 'PERMISSION_DENIED');
      assert.equal(
        await outcome(catalogOperator.acquireCommitLease(AcquireCommitLeaseRequest.fromPartial({ ref, owner: 'intruder', ttlMs: 60_000 }))),
        'PERMISSION_DENIED',
      );
      assert.equal(
        await outcome(commitOperator.reportDataFiles(ReportDataFilesRequest.fromPartial({ table: ref, job }))),
        'PERMISSION_DENIED',
      );
      assert.equal(
        await outcome(catalogService.dropDatabase(DropDatabaseRequest.fromPartial({ name: database, cascade: true, purge: true }))),
        'PERMISSION_DENIED',
      );
      assert.equal(await outcome(catalogService.dropTable(DropTableRequest.fromPartial({ ref, purge: true }))), 'PERMISSION_DENIED');
      const { table } = await catalogOperator.getTable({ ref });
      assert.ok(table, 'the table is still there');
    } finally {
      for (const c of [catalogOperator, catalogService, commitOperator, transformationOperator]) c.close();
    }
  });

  it('the CLI says why it was refused: the role, the missing token, the certificate', async () => {
    const asOperator = await runSluice(
      mesh!.clientEnv,
      'table',
      'create',
      `${database}.more`,
      '--columns',
      'id long',
      '--token',
      pki.tokens.operator,
    );
    assert.equal(asOperator.code, 1, asOperator.stderr);
    assert.equal(asOperator.stderr, "sluice: sluice.v1.CatalogService/CreateDatabase needs the admin role; the token's role is operator\n");

    const noToken = await runSluice({ ...mesh!.clientEnv, SLUICE_TOKEN: '' }, 'job', 'list');
    assert.equal(noToken.code, 1, noToken.stderr);
    assert.match(noToken.stderr, /^sluice: sluice\.v1\.CatalogService\/ListJobs needs a bearer token \(set SLUICE_TOKEN\)\n$/);

    const wrongCa = await runSluice(mesh!.clientEnv, 'job', 'list', '--tls-ca', pki.otherCa);
    assert.equal(wrongCa.code, 3, wrongCa.stderr);
    assert.match(wrongCa.stderr, /^sluice: the TLS handshake with a Sluice service failed: .*certificate.* \(check SLUICE_TLS_CA/);

    // The probe deploy/k8s runs: health over mutual TLS, without a token; a bad CA cannot see it.
    const health = await runSluice({ ...mesh!.clientEnv, SLUICE_TOKEN: '' }, 'health', mesh!.addresses.commit);
    assert.equal(health.code, 0, health.stderr);
    assert.equal(health.stdout, `${mesh!.addresses.commit} SERVING\n`);
    const unseen = await runSluice(mesh!.clientEnv, 'health', mesh!.addresses.commit, '--tls-ca', pki.otherCa);
    assert.equal(unseen.code, 1, unseen.stderr);
    assert.equal(unseen.stdout, `${mesh!.addresses.commit} UNAVAILABLE\n`);

    const missingCa = await runSluice(mesh!.clientEnv, 'job', 'list', '--tls-ca', join(pki.dir, 'nope.pem'));
    assert.equal(missingCa.code, 2, missingCa.stderr);
    assert.match(missingCa.stderr, /^sluice: invalid configuration: SLUICE_TLS_CA=".*nope\.pem" is not a readable file \(ENOENT\)\n$/);
  });
});
