/**
 * SIGTERM on a real transformation process: open streams end promptly with UNAVAILABLE (so
 * ingestion reopens elsewhere), their unreported files are deleted, and the process exits 0
 * without waiting for the server's shutdown timeout.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { TransformationServiceService } from '#shared/gen/sluice/v1/transformation.js';
import { MessageFormat, MessageMode } from '#shared/gen/sluice/v1/types.js';
import { createClient } from '#shared/grpc/client.js';
import { freePort } from '#test-support/ports.js';
import { createTable, filesUnder, startTransformationStack, TestStream, type TransformationStack } from './stream-support.js';
import { field } from '#test-support/builders.js';
import { NATS_URL } from '#test-support/nats.js';
import { programArgs, waitUntilServing } from '#cli/launch.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));

describe('transformation process shutdown', () => {
  let h: TransformationStack;
  before(async () => {
    h = await startTransformationStack();
  });
  after(async () => {
    await h.stop();
  });

  it('SIGTERM ends open streams with UNAVAILABLE, deletes their unreported files and exits 0 well before the shutdown timeout', async () => {
    const { ref, location } = await createTable(h, 'sigterm', [field(1, 'id', 'long'), field(2, 'pad', 'string')]);
    const port = await freePort();
    const child = spawn(process.execPath, programArgs('transformation'), {
      cwd: root,
      env: {
        ...process.env,
        LOG_LEVEL: 'silent',
        TRANSFORMATION_PORT: String(port),
        CATALOG_ADDRESS: h.catalogAddress,
        COMMIT_ADDRESS: h.commitAddress,
        NATS_URL,
        TRANSFORMATION_TARGET_FILE_BYTES: '1024',
        SLUICE_SHUTDOWN_TIMEOUT_MS: '60000',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const client = createClient(TransformationServiceService, `127.0.0.1:${port}`, { retries: 0 });
    try {
      await waitUntilServing('transformation', `127.0.0.1:${port}`, 60_000);
      const s = new TestStream(
        { ...h, client },
        {
          job: 'sj',
          table: ref,
          mapping: {
            format: MessageFormat.MESSAGE_FORMAT_FLATTEN,
            mode: MessageMode.MESSAGE_MODE_VALUE,
            flattenLevel: 1,
            fields: [],
            timeZone: 'UTC',
            includeFixedColumns: false,
          },
          workerId: 'sigterm-worker',
          flushBufferBytes: 0,
        },
      );
      await s.sendRange(
        't',
        0,
        0,
        Array.from({ length: 20 }, (_, i) => JSON.stringify({ id: i, pad: 'y'.repeat(300) })),
      );
      assert.ok((await filesUnder(join(location, 'data'))).length > 0, 'rolled files were written');
      const started = Date.now();
      child.kill('SIGTERM');
      const end = await s.ended;
      assert.equal(end?.code, status.UNAVAILABLE);
      const [code] = (await once(child, 'exit')) as [number | null];
      assert.equal(code, 0, stderr);
      assert.ok(Date.now() - started < 30_000, 'exited without waiting for the 60 s shutdown timeout');
      assert.deepEqual(await filesUnder(join(location, 'data')), []);
    } finally {
      client.close();
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
