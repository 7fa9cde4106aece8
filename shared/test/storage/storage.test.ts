import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  StorageError,
  createStorage,
  isWithin,
  joinLocation,
  locationsOverlap,
  normalizeLocation,
  type Storage,
} from '#shared/storage/index.js';

let dir: string;
let storage: Storage;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-storage-'));
  storage = createStorage({ mounts: { 'http://127.0.0.1:9/wh': join(dir, 'mounted') } });
});
after(() => rm(dir, { recursive: true, force: true }));

const bytes = (s: string) => new Uint8Array(Buffer.from(s));
const kind = (k: string) => (e: unknown) => e instanceof StorageError && e.kind === k;

test('write, read, stat, exists and delete a file by path and by file:// URI', async () => {
  const path = join(dir, 'a', 'b', 'f.txt');
  await storage.write(path, bytes('one'));
  assert.equal(Buffer.from(await storage.read(`file://${path}`)).toString(), 'one');
  assert.equal((await storage.stat(path))?.size, 3);
  assert.equal(await storage.exists(`${path}.missing`), false);
  assert.equal(await storage.stat(`${path}.missing`), undefined);
  assert.equal(await storage.delete(path), true);
  assert.equal(await storage.delete(path), false);
  await assert.rejects(storage.read(path), kind('not-found'));
});

test('readRange reads part of a file, fewer bytes at its end, through a mount too', async () => {
  const location = 'http://127.0.0.1:9/wh/range/f.bin';
  await storage.write(location, bytes('0123456789'));
  const text = async (offset: number, length: number) => Buffer.from(await storage.readRange(location, offset, length)).toString();
  assert.equal(await text(0, 4), '0123');
  assert.equal(await text(6, 4), '6789');
  assert.equal(await text(8, 10), '89');
  assert.equal(await text(12, 4), '');
  await assert.rejects(storage.readRange(`${location}.missing`, 0, 4), kind('not-found'));
});

test('files are never overwritten unless asked; no temporary files are left behind', async () => {
  const path = join(dir, 'immutable', 'v1.json');
  await storage.write(path, bytes('first'));
  await assert.rejects(storage.write(path, bytes('second')), kind('already-exists'));
  assert.equal(await readFile(path, 'utf8'), 'first');
  await storage.write(path, bytes('third'), { overwrite: true });
  assert.equal(await readFile(path, 'utf8'), 'third');
  assert.deepEqual(await readdir(join(dir, 'immutable')), ['v1.json']);
});

test('of concurrent exclusive writes to one name exactly one wins', async () => {
  const path = join(dir, 'race', 'x');
  const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => storage.write(path, bytes(String(i)))));
  assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
});

test('list is recursive, sorted, and treats the prefix as a directory', async () => {
  for (const p of ['t/data/2.parquet', 't/data/1.parquet', 't/metadata/v1.json', 'tt/other'])
    await storage.write(join(dir, 'l', p), bytes('x'));
  const listed = (await storage.list(join(dir, 'l', 't'))).map((f) => f.location.slice(join(dir, 'l').length + 1));
  assert.deepEqual(listed, ['t/data/1.parquet', 't/data/2.parquet', 't/metadata/v1.json']);
  assert.deepEqual(await storage.list(join(dir, 'nothing-here')), []);
});

test('mounted URI prefixes map into their directory and cannot escape it', async () => {
  await storage.write('http://127.0.0.1:9/wh/db/t/f', bytes('m'));
  assert.equal(await readFile(join(dir, 'mounted', 'db', 't', 'f'), 'utf8'), 'm');
  assert.deepEqual(
    (await storage.list('http://127.0.0.1:9/wh/db')).map((f) => f.location),
    ['http://127.0.0.1:9/wh/db/t/f'],
  );
  await assert.rejects(storage.read('http://127.0.0.1:9/wh/../../etc/passwd'), kind('invalid-location'));
  await assert.rejects(storage.read('http://127.0.0.1:9/wh/%2e%2e/%2e%2e/etc/passwd'), kind('invalid-location'));
});

test('unsupported schemes are a clear error naming what is supported', async () => {
  await assert.rejects(
    storage.read('s3://bucket/key'),
    (e: unknown) => kind('unsupported-scheme')(e) && /"s3".*supported: file/.test((e as Error).message),
  );
  await assert.rejects(storage.read('relative/path'), kind('invalid-location'));
});

test('location helpers: safe joins, normalization, overlap by whole segments', () => {
  assert.equal(joinLocation('s3://b/wh/', 'db', 'events/metadata'), 's3://b/wh/db/events/metadata');
  for (const bad of ['..', 'a/../b', '', 'a\\b', '.']) assert.throws(() => joinLocation('/wh', bad), kind('invalid-location'), bad);
  assert.equal(normalizeLocation('file:///wh//db/'), '/wh/db');
  assert.throws(() => normalizeLocation('/wh/../etc'), kind('invalid-location'));
  const cases: [string, string, boolean][] = [
    ['/wh/a', '/wh/a', true],
    ['/wh/a', '/wh/a/b', true],
    ['file:///wh/a/', '/wh/a/b', true],
    ['/wh/a', '/wh/ab', false],
    ['s3://b/test/', 's3://b/test/sls1/', true],
    ['s3://b/test', 's3://c/test', false],
  ];
  for (const [a, b, expected] of cases) assert.equal(locationsOverlap(a, b), expected, `${a} vs ${b}`);
  assert.equal(isWithin('/wh/a/b', '/wh/a'), false);
});
