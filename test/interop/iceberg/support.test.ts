/**
 * The Iceberg interop suite's own helpers, table-driven: turning the mesh's database URL into
 * the JDBC catalog's flags, the canonical values both readers are compared in, and the clear
 * error when the peers were not built.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  catalogArgs,
  IcebergPeerError,
  IcebergPeerMissingError,
  jdbcOf,
  peerClasspath,
  readIcebergTable,
} from '#test-support/iceberg-reader.js';
import { createTestDatabase } from '#test-support/postgres.js';
import { canonicalTime, canonicalTimestamp, canonicalValue } from './helpers.js';

describe('jdbcOf and catalogArgs', () => {
  const cases: [string, ReturnType<typeof jdbcOf>][] = [
    ['postgres://postgres@127.0.0.1:5432/sluice_e2e_ab', { jdbcUrl: 'jdbc:postgresql://127.0.0.1:5432/sluice_e2e_ab', user: 'postgres' }],
    ['postgresql://me:s%40cret@db.local/lake', { jdbcUrl: 'jdbc:postgresql://db.local:5432/lake', user: 'me', password: 's@cret' }],
    ['postgres://127.0.0.1:5433/x', { jdbcUrl: 'jdbc:postgresql://127.0.0.1:5433/x', user: 'postgres' }],
  ];
  for (const [url, expected] of cases) it(url, () => assert.deepEqual(jdbcOf(url), expected));

  it('refuses a URL that is not PostgreSQL', () => assert.throws(() => jdbcOf('mysql://root@localhost/x'), /not a postgres:\/\/ URL/));

  it('gives the catalog name sluice unless told otherwise, and a password only when there is one', () => {
    assert.deepEqual(catalogArgs({ databaseUrl: 'postgres://postgres@127.0.0.1:5432/d', warehouse: '/w' }), [
      '--jdbc-url',
      'jdbc:postgresql://127.0.0.1:5432/d',
      '--user',
      'postgres',
      '--warehouse',
      '/w',
      '--catalog',
      'sluice',
    ]);
    assert.deepEqual(catalogArgs({ databaseUrl: 'postgres://u:p@h/d', warehouse: 'file:///w', catalog: 'other' }).slice(4, 6), [
      '--password',
      'p',
    ]);
  });
});

describe('canonical values', () => {
  const timestamps: [string, boolean, string][] = [
    ['2024-05-01 09:30:00.123+00', true, '2024-05-01T09:30:00.123000Z'],
    ['2024-05-01T09:30:00.123000Z', true, '2024-05-01T09:30:00.123000Z'],
    ['2024-05-01 23:59:59+02', true, '2024-05-01T21:59:59.000000Z'],
    ['2024-05-01 00:00:00-05:30', true, '2024-05-01T05:30:00.000000Z'],
    ['2024-05-01 08:00:00', false, '2024-05-01T08:00:00.000000'],
    ['2024-05-01T08:00:00.123456789', false, '2024-05-01T08:00:00.123456'],
  ];
  for (const [text, zoned, expected] of timestamps)
    it(`${text} → ${expected}`, () => assert.equal(canonicalTimestamp(text, zoned), expected));

  it('times pad their fraction', () => {
    assert.equal(canonicalTime('08:00:00'), '08:00:00.000000');
    assert.equal(canonicalTime('23:59:59.5'), '23:59:59.500000');
  });

  it('binary is base64 from both readers and compared as given', () => {
    assert.equal(canonicalValue('binary', 'QQD/eg=='), 'QQD/eg==');
  });

  const values: [string, unknown, unknown][] = [
    ['decimal(12, 2)', '7.01', 7.01],
    ['decimal(12, 2)', 7.01, 7.01],
    ['long', '9007199254740991', 9007199254740991],
    ['int', 3, 3],
    ['string', 'x', 'x'],
    ['double', null, null],
    ['date', '2024-05-01', '2024-05-01'],
  ];
  for (const [type, value, expected] of values)
    it(`${type} ${JSON.stringify(value)}`, () => assert.equal(canonicalValue(type, value), expected));
});

describe('the peers', () => {
  it('a module that was never built is named, with what to run', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'iceberg-peer-'));
    try {
      assert.throws(
        () => peerClasspath(dir),
        (err: Error) => err instanceof IcebergPeerMissingError && /run `npm run peers`/.test(err.message),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a table the JDBC catalog does not have: Iceberg says so, exit 1', async () => {
    const db = await createTestDatabase('iceberg_peer');
    try {
      await assert.rejects(
        readIcebergTable({ databaseUrl: db.url, warehouse: join(tmpdir(), 'no-warehouse'), table: 'shop.missing' }),
        (err: Error) =>
          err instanceof IcebergPeerError && err.code === 1 && /NoSuchTableException: Table does not exist: shop.missing/.test(err.message),
      );
    } finally {
      await db.drop();
    }
  });
});
