import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FieldMapping } from '#shared/gen/sluice/v1/types.js';
import { primitiveField } from '../src/iceberg-types.js';
import { tableIncompatibility, withFixedColumns } from '../src/table-compat.js';

const table = [
  primitiveField('id', 'long', true),
  primitiveField('amount', 'decimal(10,2)'),
  primitiveField('pt', 'string'),
  primitiveField('topic', 'string'),
  primitiveField('partition', 'long'),
];
const fieldMapping = (column: string, path: string, type = ''): FieldMapping => ({ column, path, type, format: '' });

describe('a job writing into an existing table (table.ifExists: use)', () => {
  const cases: [string, Parameters<typeof tableIncompatibility>[2], Parameters<typeof tableIncompatibility>[3], string | undefined][] = [
    ['no declared columns: the table decides', {}, { includeFixedColumns: false, fields: [] }, undefined],
    [
      'the same columns and types (spacing aside)',
      { columns: [primitiveField('id', 'long'), primitiveField('amount', 'decimal(10, 2)')] },
      { includeFixedColumns: false, fields: [] },
      undefined,
    ],
    [
      'a column of another type, naming both',
      { columns: [primitiveField('id', 'string')] },
      { includeFixedColumns: false, fields: [] },
      'column "id" is long in table shop.orders, but the spec declares it string',
    ],
    [
      'a column the table lacks',
      { columns: [primitiveField('note', 'string')] },
      { includeFixedColumns: false, fields: [] },
      'table shop.orders has no column "note", which the spec declares string',
    ],
    [
      'fixed columns the table lacks',
      {},
      { includeFixedColumns: true, fields: [] },
      'mapping.includeFixedColumns fills columns topic, partition and offset, but table shop.orders has no offset',
    ],
    ['a partition column it has', { partitionColumn: 'pt' }, { includeFixedColumns: false, fields: [] }, undefined],
    [
      'a partition column it lacks',
      { partitionColumn: 'hour' },
      { includeFixedColumns: false, fields: [] },
      'table.partitionBy fills column "hour", which table shop.orders does not have',
    ],
    [
      'a field mapping into a missing column',
      {},
      { includeFixedColumns: false, fields: [fieldMapping('ts', '__timestamp__')] },
      'mapping.fields maps __timestamp__ to column "ts", which table shop.orders does not have',
    ],
    [
      'a field mapping of another type',
      {},
      { includeFixedColumns: false, fields: [fieldMapping('amount', 'a.b', 'double')] },
      'column "amount" is decimal(10,2) in table shop.orders, but mapping.fields declares it double',
    ],
  ];
  for (const [what, spec, mapping, expected] of cases) {
    it(what, () => assert.equal(tableIncompatibility('shop.orders', table, spec, mapping), expected));
  }

  it('creating a table: the fixed columns come first when the mapping fills them and the list lacks them', () => {
    const names = (fields: ReturnType<typeof withFixedColumns>) => fields.map((f) => `${f.name} ${f.type?.kind?.value}`);
    assert.deepEqual(names(withFixedColumns([primitiveField('id', 'long')], false)), ['id long']);
    assert.deepEqual(names(withFixedColumns([primitiveField('id', 'long'), primitiveField('topic', 'string')], true)), [
      'partition long',
      'offset long',
      'id long',
      'topic string',
    ]);
  });
});
