/**
 * Change-data-capture envelopes into row changes (src/core/changes.ts), with tables of example
 * events whose shapes are copied from each tool's own documentation (URL by each table).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Change, CHANGE_FORMATS, type ChangeFormat, decodeChanges } from '../src/core/changes.js';
import { RecordError } from '../src/core/errors.js';

interface Case {
  name: string;
  value: unknown;
  /** The parsed Kafka key; null (no key) when left out. */
  key?: unknown;
  keyColumns?: string[];
  want: Change[];
}

interface Dirty {
  name: string;
  value: unknown;
  key?: unknown;
  keyColumns?: string[];
  reason: string;
  message: RegExp;
}

function run(format: ChangeFormat, c: { value: unknown; key?: unknown; keyColumns?: string[] }): Change[] {
  return decodeChanges(format, { value: c.value, key: () => ('key' in c ? c.key : null), keyColumns: c.keyColumns ?? ['id'] });
}

function table(format: ChangeFormat, cases: Case[]): void {
  for (const c of cases) it(c.name, () => assert.deepEqual(run(format, c), c.want));
}

function dirtyTable(format: ChangeFormat, cases: Dirty[]): void {
  for (const c of cases)
    it(`refuses: ${c.name}`, () => {
      assert.throws(
        () => run(format, c),
        (e: unknown) => {
          assert.ok(e instanceof RecordError, `expected a RecordError, got ${String(e)}`);
          assert.equal(e.reason, c.reason);
          assert.match(e.message, c.message);
          assert.doesNotMatch(e.message, /\n\s+at /); // no stack trace in the message
          return true;
        },
      );
    });
}

const up = (image: Record<string, unknown>, sourcePosition?: bigint): Change =>
  sourcePosition === undefined ? { op: 'upsert', image } : { op: 'upsert', image, sourcePosition };
const del = (image: Record<string, unknown>, sourcePosition?: bigint): Change =>
  sourcePosition === undefined ? { op: 'delete', image } : { op: 'delete', image, sourcePosition };

it('lists the five formats', () => {
  assert.deepEqual([...CHANGE_FORMATS].sort(), ['canal', 'debezium', 'dts', 'keyed', 'maxwell']);
});

// ---------------------------------------------------------------------------------------------
describe('debezium', () => {
  // The customers table of the Debezium docs: id, first_name, last_name, email.
  const customerFields = [
    { type: 'int32', optional: false, field: 'id' },
    { type: 'string', optional: false, field: 'first_name' },
    { type: 'string', optional: false, field: 'last_name' },
    { type: 'string', optional: false, field: 'email' },
  ];
  const envelopeSchema = (server: string) => ({
    type: 'struct',
    fields: [
      { type: 'struct', fields: customerFields, optional: true, name: `${server}.inventory.customers.Value`, field: 'before' },
      { type: 'struct', fields: customerFields, optional: true, name: `${server}.inventory.customers.Value`, field: 'after' },
      { type: 'struct', fields: [], optional: false, name: 'io.debezium.connector.postgresql.Source', field: 'source' },
      { type: 'string', optional: false, field: 'op' },
      { type: 'int64', optional: true, field: 'ts_ms' },
    ],
    optional: false,
    name: `${server}.inventory.customers.Envelope`,
  });
  const pgSource = (snapshot: boolean, txId: number, lsn: number) => ({
    version: '2.7.0.Final',
    connector: 'postgresql',
    name: 'PostgreSQL_server',
    ts_ms: 1559033904863,
    ts_us: 1559033904863123,
    ts_ns: 1559033904863123000n,
    snapshot,
    db: 'postgres',
    schema: 'public',
    table: 'customers',
    txId,
    lsn,
    xmin: null,
  });
  const mysqlSource = (pos: number, query: string) => ({
    version: '2.7.0.Final',
    connector: 'mysql',
    name: 'mysql-server-1',
    ts_ms: 1465581029100,
    snapshot: false,
    db: 'inventory',
    table: 'customers',
    server_id: 223344,
    gtid: null,
    file: 'mysql-bin.000003',
    pos,
    row: 0,
    thread: 7,
    query,
  });
  const anne = { id: 1, first_name: 'Anne', last_name: 'Kretchmar', email: 'annek@noanswer.org' };
  const anneMarie = { ...anne, first_name: 'Anne Marie' };
  const anne1004 = { ...anne, id: 1004 };
  const anneMarie1004 = { ...anneMarie, id: 1004 };

  // PostgreSQL: create, update, delete, tombstone, truncate and message events of
  // https://debezium.io/documentation/reference/stable/connectors/postgresql.html#postgresql-events
  // (source: github.com/debezium/debezium documentation/modules/ROOT/pages/connectors/postgresql.adoc).
  // The update and delete payloads are shown with REPLICA IDENTITY DEFAULT: before holds only the key.
  table('debezium', [
    {
      name: 'postgresql create event, JsonConverter with schemas.enable (lsn is the position)',
      value: {
        schema: envelopeSchema('PostgreSQL_server'),
        payload: { before: null, after: anne, source: pgSource(true, 555, 24023128), op: 'c', ts_ms: 1559033904863 },
      },
      want: [up(anne, 24023128n)],
    },
    {
      name: 'postgresql update event, REPLICA IDENTITY DEFAULT (before has the key only), schemas disabled',
      value: { before: { id: 1 }, after: anneMarie, source: pgSource(false, 556, 24023128), op: 'u', ts_ms: 1465584025523 },
      want: [up(anneMarie, 24023128n)],
    },
    {
      name: 'postgresql delete event: before names the row',
      value: {
        schema: envelopeSchema('PostgreSQL_server'),
        payload: { before: { id: 1 }, after: null, source: pgSource(false, 556, 46523128), op: 'd', ts_ms: 1465581902461 },
      },
      want: [del({ id: 1 }, 46523128n)],
    },
    {
      name: 'postgresql delete under REPLICA IDENTITY NOTHING (no before): the key {schema, payload} names the row',
      value: { before: null, after: null, source: pgSource(false, 557, 46523200), op: 'd', ts_ms: 1465581902461 },
      key: {
        schema: {
          type: 'struct',
          name: 'PostgreSQL_server.public.customers.Key',
          optional: false,
          fields: [{ field: 'id', type: 'int32', optional: false }],
        },
        payload: { id: 1 },
      },
      want: [del({ id: 1 }, 46523200n)],
    },
    { name: 'the tombstone that follows a delete (null value)', value: null, key: { id: 1 }, want: [] },
    {
      name: 'postgresql logical decoding message (op m) holds no row',
      value: {
        schema: {},
        payload: {
          source: { ...pgSource(false, 556, 46523128), schema: '', table: '' },
          op: 'm',
          ts_ms: 1559033904961,
          message: { prefix: 'foo', content: 'Ymfy' },
        },
      },
      want: [],
    },
  ]);

  // MySQL: key, create, update, delete events of
  // https://debezium.io/documentation/reference/stable/connectors/mysql.html#mysql-events
  // (source: github.com/debezium/debezium documentation/modules/ROOT/pages/connectors/mysql.adoc).
  // MySQL's source has a binlog file and pos but no lsn: no position.
  table('debezium', [
    {
      name: 'mysql create event with schema',
      value: {
        schema: envelopeSchema('mysql-server-1'),
        payload: {
          op: 'c',
          ts_ms: 1465491411815,
          before: null,
          after: anne1004,
          source: mysqlSource(
            154,
            "INSERT INTO customers (first_name, last_name, email) VALUES ('Anne', 'Kretchmar', 'annek@noanswer.org')",
          ),
        },
      },
      want: [up(anne1004)],
    },
    {
      name: 'mysql update event: full before image, same key',
      value: {
        schema: envelopeSchema('mysql-server-1'),
        payload: {
          before: anne1004,
          after: anneMarie1004,
          source: mysqlSource(484, "UPDATE customers SET first_name='Anne Marie' WHERE id=1004"),
          op: 'u',
          ts_ms: 1465581029523,
        },
      },
      want: [up(anneMarie1004)],
    },
    {
      name: 'mysql update that changes the key (as an op u event): delete the old key first',
      value: {
        before: anneMarie1004,
        after: { ...anneMarie1004, id: 1005 },
        source: mysqlSource(500, 'UPDATE customers SET id=1005 WHERE id=1004'),
        op: 'u',
        ts_ms: 1465581029600,
      },
      want: [del(anneMarie1004), up({ ...anneMarie1004, id: 1005 })],
    },
    {
      name: 'mysql delete event',
      value: {
        schema: envelopeSchema('mysql-server-1'),
        payload: {
          before: anneMarie1004,
          after: null,
          source: mysqlSource(805, 'DELETE FROM customers WHERE id=1004'),
          op: 'd',
          ts_ms: 1465581902461,
        },
      },
      key: { schema: { type: 'struct', name: 'mysql-server-1.inventory.customers.Key', fields: [] }, payload: { id: 1004 } },
      want: [del(anneMarie1004)],
    },
    {
      name: 'mysql snapshot read (op r)',
      value: { before: null, after: anne1004, source: { ...mysqlSource(154, ''), snapshot: 'true' }, op: 'r', ts_ms: 1465491411815 },
      want: [up(anne1004)],
    },
    {
      name: 'delete whose before lacks the key column, key without schema',
      value: { before: { email: 'annek@noanswer.org' }, after: null, source: mysqlSource(805, ''), op: 'd' },
      key: { id: 1004 },
      want: [del({ id: 1004 })],
    },
    {
      name: 'composite key change: both key columns compared',
      keyColumns: ['region', 'id'],
      value: { before: { region: 'eu', id: 7n, n: 1 }, after: { region: 'us', id: 7, n: 1 }, source: mysqlSource(1, ''), op: 'u' },
      want: [del({ region: 'eu', id: 7n, n: 1 }), up({ region: 'us', id: 7, n: 1 })],
    },
    {
      name: 'an int64 key parsed exactly as bigint equals the same number: no key change',
      value: { before: { id: 1004n, v: 'a' }, after: { id: 1004, v: 'b' }, source: mysqlSource(1, ''), op: 'u' },
      want: [up({ id: 1004, v: 'b' })],
    },
  ]);

  // Kafka Connect logical types in before/after, by the field schema's name, as JsonConverter
  // writes them: Decimal is base64 big-endian two's-complement unscaled bytes with a "scale"
  // parameter (https://cwiki.apache.org/confluence/display/KAFKA/KIP-481%3A+SerDe+Improvements+for+Connect+Decimal+type+in+JSON,
  // whose "D3J5" is the bytes 0f 72 79 = 1012345); Date counts days, Timestamp ms, MicroTimestamp µs,
  // NanoTimestamp ns since the epoch; ZonedTimestamp is ISO text (type mappings in the Debezium
  // PostgreSQL and MySQL docs above: DATETIME 2018-06-20 06:37:03 → 1529476623000, TIMESTAMP
  // 2018-06-20 15:13:16.945104 → 1529507596945104, TIMESTAMP → "2018-06-20T13:37:03Z").
  describe('logical types with schemas.enable', () => {
    const salesFields = [
      { type: 'int64', optional: false, field: 'id' },
      { type: 'int32', optional: true, name: 'io.debezium.time.Date', version: 1, field: 'date' },
      { type: 'string', optional: true, field: 'name' },
      {
        type: 'bytes',
        optional: true,
        name: 'org.apache.kafka.connect.data.Decimal',
        version: 1,
        parameters: { scale: '2', 'connect.decimal.precision': '7' },
        field: 'sales',
      },
      { type: 'struct', optional: true, name: 'io.debezium.data.VariableScaleDecimal', field: 'ratio' },
      { type: 'int64', optional: true, name: 'io.debezium.time.Timestamp', version: 1, field: 'dt' },
      { type: 'int64', optional: true, name: 'io.debezium.time.MicroTimestamp', version: 1, field: 'ts6' },
      { type: 'int64', optional: true, name: 'io.debezium.time.NanoTimestamp', version: 1, field: 'ts9' },
      { type: 'string', optional: true, name: 'io.debezium.time.ZonedTimestamp', version: 1, field: 'tz' },
      { type: 'int32', optional: true, name: 'org.apache.kafka.connect.data.Date', version: 1, field: 'd2' },
      { type: 'int64', optional: true, name: 'org.apache.kafka.connect.data.Timestamp', version: 1, field: 't2' },
    ];
    const schema = {
      type: 'struct',
      fields: [
        { type: 'struct', fields: salesFields, optional: true, name: 'dbserver1.delta_cdc.sales.Value', field: 'before' },
        { type: 'struct', fields: salesFields, optional: true, name: 'dbserver1.delta_cdc.sales.Value', field: 'after' },
        { type: 'string', optional: false, field: 'op' },
      ],
      optional: false,
      name: 'dbserver1.delta_cdc.sales.Envelope',
    };
    const wire = {
      id: 5,
      date: 18214,
      name: 'Robert',
      sales: 'WwQ=',
      ratio: { scale: 5, value: 'D3J5' },
      dt: 1529476623000,
      ts6: 1529507596945104,
      ts9: 1529507596945104123n,
      tz: '2018-06-20T13:37:03Z',
      d2: -1,
      t2: 1573725600000,
    };
    const plain = {
      id: 5,
      date: '2019-11-14',
      name: 'Robert',
      sales: '233.00',
      ratio: '10.12345',
      dt: '2018-06-20T06:37:03.000',
      ts6: '2018-06-20T15:13:16.945104',
      ts9: '2018-06-20T15:13:16.945104123',
      tz: '2018-06-20T13:37:03Z',
      d2: '1969-12-31',
      t2: '2019-11-14T10:00:00.000',
    };

    table('debezium', [
      {
        name: 'every logical type of the after image',
        value: { schema, payload: { before: null, after: wire, op: 'c' } },
        want: [up(plain)],
      },
      {
        name: 'both images converted on an update; sales 500.00 → 175.00',
        value: { schema, payload: { before: { ...wire, id: 2, sales: 'AMNQ' }, after: { ...wire, id: 2, sales: 'RFw=' }, op: 'u' } },
        want: [up({ ...plain, id: 2, sales: '175.00' })],
      },
      {
        name: 'negative decimals, a zero scale, pre-epoch micros and nulls',
        value: {
          schema,
          payload: {
            before: null,
            after: { id: 6, sales: '/w==', ts6: -1, ratio: { scale: 0, value: 'z8c=' }, date: null },
            op: 'c',
          },
        },
        want: [up({ id: 6, sales: '-0.01', ts6: '1969-12-31T23:59:59.999999', ratio: '-12345', date: null })],
      },
      {
        name: 'a decimal written as a number (JsonConverter decimal.format=NUMERIC) stays a number',
        value: { schema, payload: { before: null, after: { id: 7, sales: 175.5 }, op: 'r' } },
        want: [up({ id: 7, sales: 175.5 })],
      },
      {
        name: 'without the schema wrapper values pass through',
        value: { before: null, after: wire, op: 'c' },
        want: [up(wire)],
      },
    ]);

    it('converts a logical-type key column named by the key schema on a delete without before', () => {
      const key = {
        schema: { type: 'struct', fields: [{ field: 'day', type: 'int32', name: 'io.debezium.time.Date' }] },
        payload: { day: 18214 },
      };
      assert.deepEqual(run('debezium', { value: { before: null, after: null, op: 'd' }, key, keyColumns: ['day'] }), [
        del({ day: '2019-11-14' }),
      ]);
    });

    dirtyTable('debezium', [
      {
        name: 'a decimal that is no base64',
        value: { schema, payload: { before: null, after: { id: 1, sales: '12.50' }, op: 'c' } },
        reason: 'type_mismatch',
        message: /column "sales": "12\.50" is not a org\.apache\.kafka\.connect\.data\.Decimal \(expected base64 bytes\)/,
      },
      {
        name: 'a nanosecond timestamp rounded by JSON.parse',
        value: { schema, payload: { before: null, after: { id: 1, ts9: 1529507596945104000 }, op: 'c' } },
        reason: 'out_of_range',
        message: /column "ts9".*beyond ±2\^53/,
      },
    ]);
  });

  dirtyTable('debezium', [
    {
      name: 'an unknown op',
      value: { before: null, after: anne, op: 'x' },
      reason: 'unknown_op',
      message: /debezium op "x" is not one of c, r, u, d/,
    },
    { name: 'an op that is no string', value: { after: anne, op: 7 }, reason: 'unknown_op', message: /debezium op a number is not one of/ },
    {
      name: 'a truncate (op t)',
      value: { schema: {}, payload: { source: pgSource(false, 556, 46523128), op: 't', ts_ms: 1559033904961 } },
      reason: 'unknown_op',
      message: /truncate \(op t\) is not supported for upsert tables/,
    },
    {
      name: 'an update without after image',
      value: { before: anne, after: null, op: 'u' },
      reason: 'no_image',
      message: /^debezium update \(op u\) has no after image$/,
    },
    {
      name: 'a create without after image',
      value: { before: null, op: 'c' },
      reason: 'no_image',
      message: /debezium create \(op c\) has no after image/,
    },
    {
      name: 'a delete without before image and without key',
      value: { before: null, after: null, op: 'd' },
      reason: 'no_image',
      message: /debezium delete \(op d\) has no before image with the key column\(s\) "id", and the record has no key/,
    },
    {
      name: 'a delete whose key lacks the key column',
      value: { before: null, after: null, op: 'd' },
      key: { payload: { uuid: 'x' }, schema: null },
      reason: 'no_image',
      message: /the record key does not name them/,
    },
    { name: 'an array value', value: [anne], reason: 'not_a_change', message: /^debezium value is an array, expected a JSON object$/ },
    { name: 'a string value', value: 'hello', reason: 'not_a_change', message: /debezium value is a string/ },
    {
      name: 'a payload that is a number',
      value: { schema: {}, payload: 3 },
      reason: 'not_a_change',
      message: /debezium payload is a number/,
    },
    {
      name: 'an after image that is a string',
      value: { before: null, after: 'x', op: 'c' },
      reason: 'not_a_change',
      message: /debezium after image is a string/,
    },
    {
      name: 'a row already unwrapped by ExtractNewRecordState (no op)',
      value: anne,
      reason: 'not_a_change',
      message: /debezium payload has no "op" field.*keyed format/,
    },
  ]);

  it('reads the key only when a delete needs it', () => {
    let calls = 0;
    const key = () => {
      calls++;
      return { id: 1 };
    };
    decodeChanges('debezium', { value: { before: anne, after: anneMarie, op: 'u' }, key, keyColumns: ['id'] });
    decodeChanges('debezium', { value: { before: { id: 1 }, after: null, op: 'd' }, key, keyColumns: ['id'] });
    decodeChanges('debezium', { value: null, key, keyColumns: ['id'] });
    assert.equal(calls, 0);
    decodeChanges('debezium', { value: { before: null, after: null, op: 'd' }, key, keyColumns: ['id'] });
    assert.equal(calls, 1);
  });

  it('does not change the record it reads', () => {
    const schema = {
      type: 'struct',
      fields: [{ type: 'struct', field: 'after', fields: [{ field: 'date', type: 'int32', name: 'io.debezium.time.Date' }] }],
    };
    const value = { schema, payload: { before: null, after: { id: 1, date: 18214 }, op: 'c' } };
    const copy = structuredClone(value);
    run('debezium', { value });
    assert.deepEqual(value, copy);
  });
});

// ---------------------------------------------------------------------------------------------
describe('dts', () => {
  // Records as the EMR dts_binlog_parser UDF decodes DTS Avro, from seed 004 (Alibaba Cloud
  // E-MapReduce "Data synchronization", /work/shared/seeds/004_59d9e21d22ae9b56.txt): the four INIT
  // rows are its sample output verbatim; the DELETE/UPDATE/UPDATE/INSERT records are its
  // statements (DELETE id 1; sales 150 then 175 for id 2; INSERT (5, '2019-11-14', 'Robert', 233))
  // in the same shape, the double column written the way the INIT rows write it ("323.0").
  const source = '{"sourceType": "MySQL", "version": "0.0.0.0"}';
  const fields = ['id', 'date', 'name', 'sales'];
  const record = (recordID: number, recordType: string, beforeImages: string, afterImages: string) => ({
    recordID,
    source,
    dbTable: 'delta_cdc.sales',
    recordType,
    recordTimestamp: recordType === 'INIT' ? '1970-01-01 08:00:00' : '2019-11-14 10:00:00',
    extraTags: {},
    fields,
    beforeImages,
    afterImages,
  });
  const sales = [
    record(1, 'INIT', '{}', '{"sales":"323.0","date":"2019-11-11","name":"Robert","id":"1"}'),
    record(2, 'INIT', '{}', '{"sales":"500.0","date":"2019-11-11","name":"Lee","id":"2"}'),
    record(3, 'INIT', '{}', '{"sales":"136.0","date":"2019-11-12","name":"Robert","id":"3"}'),
    record(4, 'INIT', '{}', '{"sales":"211.0","date":"2019-11-13","name":"Lee","id":"4"}'),
    record(5, 'DELETE', '{"sales":"323.0","date":"2019-11-11","name":"Robert","id":"1"}', '{}'),
    record(
      6,
      'UPDATE',
      '{"sales":"500.0","date":"2019-11-11","name":"Lee","id":"2"}',
      '{"sales":"150.0","date":"2019-11-11","name":"Lee","id":"2"}',
    ),
    record(
      7,
      'UPDATE',
      '{"sales":"150.0","date":"2019-11-11","name":"Lee","id":"2"}',
      '{"sales":"175.0","date":"2019-11-11","name":"Lee","id":"2"}',
    ),
    record(8, 'INSERT', '{}', '{"sales":"233.0","date":"2019-11-14","name":"Robert","id":"5"}'),
  ];

  it('applies the seed sales example in order: ids 2, 3, 4, 5 remain, id 2 at sales 175', () => {
    const rows = new Map<string, Record<string, unknown>>();
    const positions: bigint[] = [];
    for (const value of sales)
      for (const c of run('dts', { value })) {
        positions.push(c.sourcePosition as bigint);
        if (c.op === 'delete') rows.delete(String(c.image.id));
        else rows.set(String(c.image.id), c.image);
      }
    assert.deepEqual([...rows.keys()].sort(), ['2', '3', '4', '5']);
    assert.deepEqual(rows.get('2'), { sales: '175.0', date: '2019-11-11', name: 'Lee', id: '2' });
    assert.equal(Number(rows.get('2')?.sales), 175);
    assert.deepEqual(rows.get('5'), { sales: '233.0', date: '2019-11-14', name: 'Robert', id: '5' });
    assert.deepEqual(positions, [1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n]);
  });

  table('dts', [
    { name: 'INIT: the after image', value: sales[0], want: [up({ sales: '323.0', date: '2019-11-11', name: 'Robert', id: '1' }, 1n)] },
    { name: 'DELETE: the before image', value: sales[4], want: [del({ sales: '323.0', date: '2019-11-11', name: 'Robert', id: '1' }, 5n)] },
    {
      name: 'UPDATE, same id: the after image',
      value: sales[6],
      want: [up({ sales: '175.0', date: '2019-11-11', name: 'Lee', id: '2' }, 7n)],
    },
    {
      name: 'UPDATE that changes the id: delete the before id first ("match on beforeImages.id")',
      value: record(
        9,
        'UPDATE',
        '{"sales":"136.0","date":"2019-11-12","name":"Robert","id":"3"}',
        '{"sales":"136.0","date":"2019-11-12","name":"Robert","id":"30"}',
      ),
      want: [
        del({ sales: '136.0', date: '2019-11-12', name: 'Robert', id: '3' }, 9n),
        up({ sales: '136.0', date: '2019-11-12', name: 'Robert', id: '30' }, 9n),
      ],
    },
    {
      name: 'images as objects, UPDATE without before image, recordId spelling',
      value: { recordId: '10', recordType: 'UPDATE', beforeImages: {}, afterImages: { id: '4', sales: '1.0' } },
      want: [up({ id: '4', sales: '1.0' }, 10n)],
    },
    {
      // The seed's sample output shows the columns as Spark names them: recordid, recordtype, ...
      name: 'lower-case field names as the seed sample output shows them',
      value: {
        recordid: 1,
        source,
        dbtable: 'delta_cdc.sales',
        recordtype: 'INIT',
        recordtimestamp: '1970-01-01 08:00:00',
        extratags: '{}',
        fields: '["id","date","name","sales"]',
        beforeimages: '{}',
        afterimages: '{"sales":"323.0","date":"2019-11-11","name":"Robert","id":"1"}',
      },
      want: [up({ sales: '323.0', date: '2019-11-11', name: 'Robert', id: '1' }, 1n)],
    },
  ]);

  dirtyTable('dts', [
    {
      name: 'an unknown recordType',
      value: record(1, 'FOO', '{}', '{"id":"1"}'),
      reason: 'unknown_op',
      message: /^dts recordType "FOO" is not one of INIT, INSERT, UPDATE, DELETE$/,
    },
    {
      name: 'an INSERT with empty afterImages',
      value: record(1, 'INSERT', '{}', '{}'),
      reason: 'no_image',
      message: /dts INSERT has no afterImages/,
    },
    {
      name: 'an UPDATE with empty afterImages',
      value: record(1, 'UPDATE', '{"id":"1"}', ''),
      reason: 'no_image',
      message: /dts UPDATE has no afterImages/,
    },
    {
      name: 'a DELETE with empty beforeImages',
      value: record(1, 'DELETE', '', '{}'),
      reason: 'no_image',
      message: /dts DELETE has no beforeImages/,
    },
    {
      name: 'a DELETE without beforeImages field',
      value: { recordID: 1, recordType: 'DELETE', afterImages: '{}' },
      reason: 'no_image',
      message: /dts DELETE has no beforeImages/,
    },
    {
      name: 'afterImages that are not JSON',
      value: record(1, 'INSERT', '{}', '{"id":'),
      reason: 'invalid_json',
      message: /dts afterImages is not valid JSON/,
    },
    {
      name: 'afterImages that are a JSON array',
      value: record(1, 'INSERT', '{}', '[1]'),
      reason: 'not_a_change',
      message: /dts afterImages is an array/,
    },
    { name: 'a value that is a string', value: 'INIT', reason: 'not_a_change', message: /dts value is a string, expected a JSON object/ },
  ]);
});

// ---------------------------------------------------------------------------------------------
describe('canal', () => {
  // Flat messages (canal.mq.flatMessage=true). Shape: FlatMessage in
  // https://github.com/alibaba/canal/blob/master/protocol/src/main/java/com/alibaba/otter/canal/protocol/FlatMessage.java
  // (id, database, table, pkNames, isDdl, type, es, ts, sql, sqlType, mysqlType, data, old; old holds
  // only the updated columns). The products UPDATE is the example of the Flink Canal format docs
  // (github.com/apache/flink docs/dev/table/connectors/formats/canal.zh.md; English copy of the 1.11
  // page: https://bookstack.cn/read/flink-1.11.1-en/40950c2936d3f2c0.md); the test.asd messages
  // (CREATE, INSERT, UPDATE of the key 2223 → 222, multi-row UPDATE and DELETE) follow a public
  // canal notes page of real FlatMessage JSON; the QUERY DDL is Tencent CKafka's canal format
  // (https://www.tencentcloud.com/document/product/597/52603).
  const asd = (id: number, type: string, data: unknown, old: unknown, extra: Record<string, unknown> = {}) => ({
    data,
    database: 'test',
    es: 1554044748000,
    id,
    isDdl: false,
    mysqlType: { ID: 'int(11)', TEST_NAME: 'varchar(255)' },
    old,
    pkNames: ['ID'],
    sql: '',
    sqlType: { ID: 4, TEST_NAME: 12 },
    table: 'asd',
    ts: 1554044748117,
    type,
    ...extra,
  });

  table('canal', [
    {
      name: 'flink docs: UPDATE of products id 111, weight 5.15 → 5.18 (old holds weight only)',
      value: {
        data: [{ id: '111', name: 'scooter', description: 'Big 2-wheel scooter', weight: '5.18' }],
        database: 'inventory',
        es: 1589373560000,
        id: 9,
        isDdl: false,
        mysqlType: { id: 'INTEGER', name: 'VARCHAR(255)', description: 'VARCHAR(512)', weight: 'FLOAT' },
        old: [{ weight: '5.15' }],
        pkNames: ['id'],
        sql: '',
        sqlType: { id: 4, name: 12, description: 12, weight: 7 },
        table: 'products',
        ts: 1589373560798,
        type: 'UPDATE',
      },
      want: [up({ id: '111', name: 'scooter', description: 'Big 2-wheel scooter', weight: '5.18' }, 9n)],
    },
    { name: 'INSERT', keyColumns: ['ID'], value: asd(6, 'INSERT', [{ ID: '2223' }], null), want: [up({ ID: '2223' }, 6n)] },
    {
      name: 'UPDATE of the key ID 2223 → 222: delete the old key, then upsert',
      keyColumns: ['ID'],
      value: asd(7, 'UPDATE', [{ ID: '222' }], [{ ID: '2223' }]),
      want: [del({ ID: '2223' }, 7n), up({ ID: '222' }, 7n)],
    },
    { name: 'DELETE', keyColumns: ['ID'], value: asd(8, 'DELETE', [{ ID: '222' }], null), want: [del({ ID: '222' }, 8n)] },
    {
      name: 'UPDATE of two rows (TEST_NAME null → "123"): one upsert per row, in order',
      keyColumns: ['ID'],
      value: asd(
        15,
        'UPDATE',
        [
          { ID: '22', TEST_NAME: '123' },
          { ID: '2223', TEST_NAME: '123' },
        ],
        [{ TEST_NAME: null }, { TEST_NAME: null }],
        { pkNames: ['ID', 'ID'] },
      ),
      want: [up({ ID: '22', TEST_NAME: '123' }, 15n), up({ ID: '2223', TEST_NAME: '123' }, 15n)],
    },
    {
      name: 'DELETE of two rows',
      keyColumns: ['ID'],
      value: asd(
        16,
        'DELETE',
        [
          { ID: '22', TEST_NAME: '123' },
          { ID: '2223', TEST_NAME: '123' },
        ],
        null,
      ),
      want: [del({ ID: '22', TEST_NAME: '123' }, 16n), del({ ID: '2223', TEST_NAME: '123' }, 16n)],
    },
    {
      name: 'CREATE TABLE (isDdl) holds no row',
      value: asd(6, 'CREATE', null, null, {
        isDdl: true,
        mysqlType: null,
        pkNames: null,
        sqlType: null,
        sql: 'CREATE TABLE `test`.`asd_copy` (`ID` int(11) NOT NULL, PRIMARY KEY (`ID`)) ENGINE=InnoDB DEFAULT CHARSET=utf8',
      }),
      want: [],
    },
    {
      name: 'ALTER without isDdl field holds no row',
      value: {
        database: 'test',
        es: 1554045155000,
        id: 11,
        sql: 'ALTER TABLE `test`.`asd` ADD COLUMN `TEST_NAME` varchar(255) AFTER `ID`',
        table: 'asd',
        ts: 1554045155706,
        type: 'ALTER',
      },
      want: [],
    },
    {
      name: 'ckafka QUERY (create database) holds no row',
      value: {
        data: null,
        database: 'dip_test',
        es: 1655812326,
        id: 0,
        isDdl: true,
        mysqlType: null,
        old: null,
        pkNames: null,
        sql: 'CREATE DATABASE `dip_test` CHARSET utf8mb4 COLLATE utf8mb4_0900_ai_ci',
        sqlType: null,
        table: '',
        ts: 1655812326,
        type: 'QUERY',
      },
      want: [],
    },
    { name: 'an empty data array', value: asd(3, 'INSERT', [], null), want: [] },
  ]);

  dirtyTable('canal', [
    {
      name: 'an unknown type',
      value: asd(1, 'UPSERT', [{ ID: '1' }], null),
      reason: 'unknown_op',
      message: /canal type "UPSERT" is not one of INSERT, UPDATE, DELETE/,
    },
    { name: 'no data array', value: asd(1, 'INSERT', null, null), reason: 'not_a_change', message: /canal message has no "data" array/ },
    {
      name: 'data that is an object',
      value: asd(1, 'INSERT', { ID: '1' }, null),
      reason: 'not_a_change',
      message: /canal message has no "data" array \(found an object\)/,
    },
    {
      name: 'a row that is a string',
      value: asd(1, 'DELETE', [{ ID: '1' }, 'x'], null),
      reason: 'not_a_change',
      message: /canal data\[1\] is a string/,
    },
    {
      name: 'old not paired with data',
      value: asd(1, 'UPDATE', [{ ID: '1' }, { ID: '2' }], [{ TEST_NAME: null }]),
      reason: 'not_a_change',
      message: /canal UPDATE has 2 row\(s\) in "data" but "old" is 1 long/,
    },
    {
      name: 'no type',
      value: { data: [{ ID: '1' }], isDdl: false },
      reason: 'not_a_change',
      message: /canal message has no "type" string \(found missing\)/,
    },
    {
      name: 'an array value (a batch of messages)',
      value: [asd(1, 'INSERT', [{ ID: '1' }], null)],
      reason: 'not_a_change',
      message: /canal value is an array/,
    },
  ]);
});

// ---------------------------------------------------------------------------------------------
describe('maxwell', () => {
  // INSERT, UPDATE, DELETE and DDL of https://maxwells-daemon.io/dataformat/ and the bootstrap stream
  // of https://maxwells-daemon.io/bootstrapping/ (github.com/zendesk/maxwell docs/docs/dataformat.md,
  // docs/docs/bootstrapping.md). Maxwell gives no orderable position: none.
  const row1 = { id: 1, m: 4.2341, c: '2016-10-21 05:33:37.523000', comment: 'I am a creature of light.' };
  const row1b = { id: 1, m: 5.444, c: '2016-10-21 05:33:54.631000', comment: 'I am a creature of light.' };
  const head = { database: 'test', table: 'e' };
  table('maxwell', [
    {
      name: 'insert',
      value: {
        ...head,
        type: 'insert',
        ts: 1477053217,
        xid: 23396,
        commit: true,
        position: 'master.000006:800911',
        server_id: 23042,
        thread_id: 108,
        data: row1,
      },
      want: [up(row1)],
    },
    {
      name: 'update (old holds the changed columns)',
      value: { ...head, type: 'update', ts: 1477053234, data: row1b, old: { m: 4.2341, c: '2016-10-21 05:33:37.523000' } },
      want: [up(row1b)],
    },
    {
      name: 'update that changes the key: delete data merged with old, then upsert',
      value: { ...head, type: 'update', ts: 1477053240, data: { ...row1b, id: 2 }, old: { id: 1 } },
      want: [del(row1b), up({ ...row1b, id: 2 })],
    },
    { name: 'delete', value: { ...head, type: 'delete', ts: 1477053250, data: row1b }, want: [del(row1b)] },
    {
      name: 'bootstrap-start',
      value: { database: 'fooDB', table: 'barTable', type: 'bootstrap-start', ts: 1450557744, data: {} },
      want: [],
    },
    {
      name: 'bootstrap-insert',
      value: { database: 'fooDB', table: 'barTable', type: 'bootstrap-insert', ts: 1450557744, data: { txt: 'hello' } },
      keyColumns: ['txt'],
      want: [up({ txt: 'hello' })],
    },
    {
      name: 'bootstrap-complete',
      value: { database: 'fooDB', table: 'barTable', type: 'bootstrap-complete', ts: 1450557744, data: {} },
      want: [],
    },
    {
      name: 'table-create (--output_ddl)',
      value: {
        type: 'table-create',
        ...head,
        def: {
          database: 'test',
          charset: 'utf8mb4',
          table: 'e',
          columns: [{ type: 'int', name: 'id', signed: true }],
          'primary-key': ['id'],
        },
        ts: 1477053126000,
        sql: 'create table test.e ( id int(10) not null primary key auto_increment, m double, c timestamp(6), comment varchar(255) charset latin1 )',
        position: 'master.000006:800050',
      },
      want: [],
    },
    {
      name: 'table-alter',
      value: {
        type: 'table-alter',
        ...head,
        old: {},
        def: {},
        ts: 1477053308000,
        sql: 'alter table test.e add column torvalds bigint unsigned after m',
      },
      want: [],
    },
  ]);

  dirtyTable('maxwell', [
    {
      name: 'an unknown type',
      value: { ...head, type: 'upsert', data: row1 },
      reason: 'unknown_op',
      message: /maxwell type "upsert" is not one of insert, update, delete/,
    },
    {
      name: 'an insert without data',
      value: { ...head, type: 'insert' },
      reason: 'no_image',
      message: /maxwell insert has no "data" object/,
    },
    {
      name: 'data that is an array',
      value: { ...head, type: 'delete', data: [row1] },
      reason: 'not_a_change',
      message: /maxwell delete data is an array/,
    },
    { name: 'no type', value: { ...head, data: row1 }, reason: 'not_a_change', message: /maxwell message has no "type" string/ },
    { name: 'a number value', value: 42, reason: 'not_a_change', message: /maxwell value is a number/ },
  ]);
});

// ---------------------------------------------------------------------------------------------
describe('keyed', () => {
  // Plain messages on a compacted topic: the value is the row, a null value (tombstone) deletes
  // the row the key names (https://kafka.apache.org/documentation/#compaction).
  table('keyed', [
    { name: 'a row', value: { id: 7, name: 'Lee' }, key: 7, want: [up({ id: 7, name: 'Lee' })] },
    { name: 'a tombstone with a JSON object key', value: null, key: { id: 7 }, want: [del({ id: 7 })] },
    { name: 'a tombstone with a number key', value: null, key: 7, want: [del({ id: 7 })] },
    { name: 'a tombstone with a text key', value: null, key: 'order-7', keyColumns: ['order_id'], want: [del({ order_id: 'order-7' })] },
    { name: 'a tombstone with a bigint key', value: null, key: 9007199254740993n, want: [del({ id: 9007199254740993n })] },
    {
      name: 'a tombstone with a composite object key',
      value: null,
      key: { a: 1, b: 'x' },
      keyColumns: ['a', 'b'],
      want: [del({ a: 1, b: 'x' })],
    },
  ]);

  dirtyTable('keyed', [
    { name: 'a tombstone without key', value: null, reason: 'no_image', message: /a tombstone without a key names no row/ },
    {
      name: 'a tombstone with a single-value key and two key columns',
      value: null,
      key: 7,
      keyColumns: ['a', 'b'],
      reason: 'no_image',
      message: /keyed tombstone key is a single value, but the table has 2 key columns \("a", "b"\)/,
    },
    { name: 'a tombstone with an array key', value: null, key: [1, 2], reason: 'no_image', message: /keyed tombstone key is an array/ },
    { name: 'a string value', value: 'hello', reason: 'not_a_change', message: /^keyed value is a string, expected a JSON object or null/ },
    { name: 'an array value', value: [1], reason: 'not_a_change', message: /keyed value is an array/ },
  ]);

  it('reads the key only for a tombstone', () => {
    let calls = 0;
    const key = () => {
      calls++;
      return 1;
    };
    decodeChanges('keyed', { value: { id: 1 }, key, keyColumns: ['id'] });
    assert.equal(calls, 0);
    decodeChanges('keyed', { value: null, key, keyColumns: ['id'] });
    assert.equal(calls, 1);
  });
});
