import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { tlsFailure } from '#cli/output.js';
import { runSluice } from '#test-support/cli.js';
import { freePort } from '#test-support/ports.js';

const sluice = (args: string[], env: Record<string, string> = {}) => runSluice({ TZ: process.env.TZ ?? '', ...env }, ...args);

describe('sluice CLI: failures are one line and an exit code', () => {
  it('--help lists every command', async () => {
    const { code, stdout } = await sluice(['--help']);
    assert.equal(code, 0);
    for (const command of [
      'sluice up',
      'sluice source add',
      'sluice infer',
      'sluice table create',
      'sluice table history',
      'sluice job create',
      'sluice job status',
      'sluice query',
    ]) {
      assert.ok(stdout.includes(command), command);
    }
  });

  it('an unknown flag is a usage error (exit 2)', async () => {
    const { code, stderr } = await sluice(['source', 'list', '--colour']);
    assert.equal(code, 2);
    assert.match(stderr, /^sluice: Unknown option '--colour'.* \(see sluice --help\)\n$/);
  });

  it('an unreachable mesh is exit 3 with a hint, not a stack trace', async () => {
    const port = await freePort();
    const { code, stderr, stdout } = await sluice(['source', 'list', '--json'], {
      CATALOG_ADDRESS: `127.0.0.1:${port}`,
      SLUICE_RPC_DEADLINE_MS: '1500',
    });
    assert.equal(code, 3);
    assert.equal(stdout, '');
    assert.equal(stderr, 'sluice: a Sluice service is unavailable (is the mesh running? try: sluice up)\n');
  });

  it('a bad configuration variable is named', async () => {
    const { code, stderr } = await sluice(['job', 'list'], { CATALOG_ADDRESS: 'nowhere' });
    assert.equal(code, 2);
    assert.equal(
      stderr,
      'sluice: invalid configuration: CATALOG_ADDRESS="nowhere" is not an address of the form host:port, or a comma-separated list of IP:port\n',
    );
  });

  it('an invalid job spec names the file and the key path', async () => {
    const { writeFile, mkdtemp, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(`${tmpdir()}/sluice-cli-`);
    await writeFile(`${dir}/bad.yaml`, 'name: j\nsource: { topic: t, startFrom: yesterday }\ntable: { database: d, name: t }\n');
    const { code, stderr } = await sluice(['job', 'create', '-f', `${dir}/bad.yaml`]);
    await rm(dir, { recursive: true });
    assert.equal(code, 2);
    assert.match(stderr, /^sluice: invalid job spec: source.startFrom: must be earliest, latest/);
    assert.equal(stderr.split('\n').length, 2, 'one line');
  });

  it('a spec file that is not there is one line naming it, exit 2', async () => {
    for (const command of [
      ['job', 'create'],
      ['table', 'create'],
    ]) {
      const { code, stderr } = await sluice([...command, '-f', '/nonexistent/orders.yaml']);
      assert.equal(code, 2, command.join(' '));
      assert.equal(stderr, 'sluice: cannot read the spec file /nonexistent/orders.yaml: no such file\n');
    }
  });

  it('a column type that is not an Iceberg type is a usage error (exit 2), naming it', async () => {
    const { code, stderr } = await sluice(['table', 'create', 'shop.orders', '--columns', 'id lung']);
    assert.equal(code, 2);
    assert.equal(stderr, 'sluice: --columns: column "id": "lung" is not an Iceberg primitive type (see sluice --help)\n');
  });

  it('a query naming no table says how to name one', async () => {
    const port = await freePort();
    const { code, stderr } = await sluice(['query', 'SELECT 1'], { CATALOG_ADDRESS: `127.0.0.1:${port}` });
    assert.equal(code, 1);
    assert.match(stderr, /the query names no Sluice table; write tables as <database>.<table>/);
  });

  const tlsDetails: [string, string | undefined][] = [
    [
      'No connection established. Last error: Error: self-signed certificate in certificate chain. Resolution note: ',
      'self-signed certificate in certificate chain',
    ],
    [
      'No connection established. Last error: 808CA79AC97F0000:error:0A00045C:SSL routines:ssl3_read_bytes:tlsv13 alert certificate required:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:1601:SSL alert number 116\n (2026-12-03T10:30:58.704Z). Resolution note: ',
      'tlsv13 alert certificate required',
    ],
    [
      "No connection established. Last error: Error: Hostname/IP does not match certificate's altnames: IP: 10.0.0.1 is not in the cert's list: 127.0.0.1",
      "Hostname/IP does not match certificate's altnames: IP: 10.0.0.1 is not in the cert's list: 127.0.0.1",
    ],
    ['No connection established. Last error: Failed to connect (2026-12-03T10:30:58.715Z). Resolution note: ', undefined],
    ['No connection established. Last error: connect ECONNREFUSED 127.0.0.1:1 (2026-12-03T10:30:58.715Z)', undefined],
  ];
  for (const [details, expected] of tlsDetails) {
    it(`an UNAVAILABLE call ${expected ? `is a TLS failure: ${expected}` : 'without a TLS error is not a TLS failure'}`, () => {
      assert.equal(tlsFailure(details), expected);
    });
  }
});
