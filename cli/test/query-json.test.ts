import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { jsonCell } from '../src/query.js';

/** What `sluice query --json` prints for each kind of DuckDB value, nested ones included (real DuckDB). */
test('query --json: blobs as base64, integers exact at any depth, lists, structs and maps as JSON', async () => {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    const reader = await connection.runAndReadAll(`SELECT
      '\\x00\\xFFab'::BLOB AS blob,
      [1, 9007199254740993]::BIGINT[] AS ids,
      42::BIGINT AS small,
      9007199254740993::BIGINT AS big,
      12.50::DECIMAL(9, 2) AS price,
      12345678901234567.89::DECIMAL(38, 2) AS wide,
      {'id': 9007199254740993::BIGINT, 'raw': '\\x01'::BLOB} AS nested,
      MAP {'a': 1::BIGINT} AS counts,
      NULL::BLOB AS missing,
      DATE '2024-05-01' AS day`);
    assert.deepEqual(reader.convertRowObjects(jsonCell), [
      {
        blob: Buffer.from([0, 0xff, 0x61, 0x62]).toString('base64'),
        ids: [1, '9007199254740993'],
        small: 42,
        big: '9007199254740993',
        price: 12.5,
        wide: '12345678901234567.89',
        nested: { id: '9007199254740993', raw: 'AQ==' },
        counts: [{ key: 'a', value: 1 }],
        missing: null,
        day: '2024-05-01',
      },
    ]);
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
});
