/**
 * The S3 backend of the storage seam against a real S3-compatible server (S3Proxy over a
 * directory, test/support/s3.ts): the behaviour the local backend has, through createStorage
 * with the standard AWS variables, plus multipart uploads and paged listings.
 */
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { StorageError, createStorage, type Storage } from '#shared/storage/index.js';
import { S3Storage } from '#shared/storage/s3.js';
import { startS3, type TestS3 } from '#test-support/s3.js';

let s3: TestS3;
let storage: Storage;
const bucket = 'lake';
before(async () => {
  s3 = await startS3();
  await s3.createBucket(bucket);
  storage = createStorage({}, s3.env);
});
after(() => s3?.stop());

const bytes = (s: string) => new Uint8Array(Buffer.from(s));
const kind = (k: string) => (e: unknown) => e instanceof StorageError && e.kind === k;
const at = (key: string) => `s3://${bucket}/${key}`;

test('write, read, stat, exists and delete an object', async () => {
  const location = at('a/b/f.txt');
  await storage.write(location, bytes('one'));
  assert.equal(Buffer.from(await storage.read(location)).toString(), 'one');
  assert.equal((await storage.stat(location))?.size, 3);
  assert.equal(await storage.exists(`${location}.missing`), false);
  assert.equal(await storage.stat(`${location}.missing`), undefined);
  assert.equal(await storage.delete(location), true);
  assert.equal(await storage.delete(location), false);
  await assert.rejects(storage.read(location), kind('not-found'));
});

test('keys with spaces, unicode and escapes are signed and stored as given', async () => {
  const location = at('data/name=a b/zażółć %2F+x=1.parquet');
  await storage.write(location, bytes('κ'));
  assert.equal(Buffer.from(await storage.read(location)).toString(), 'κ');
  assert.deepEqual(
    (await storage.list(at('data/name=a b'))).map((f) => f.location),
    [location],
  );
});

test('readRange reads part of an object, fewer bytes at its end, none past it', async () => {
  const location = at('range/f.bin');
  await storage.write(location, bytes('0123456789'));
  const text = async (offset: number, length: number) => Buffer.from(await storage.readRange(location, offset, length)).toString();
  assert.equal(await text(0, 4), '0123');
  assert.equal(await text(6, 4), '6789');
  assert.equal(await text(8, 10), '89');
  assert.equal(await text(12, 4), '');
  await assert.rejects(storage.readRange(`${location}.missing`, 0, 4), kind('not-found'));
});

test('objects are never replaced unless asked', async () => {
  const location = at('immutable/v1.json');
  await storage.write(location, bytes('first'));
  await assert.rejects(storage.write(location, bytes('second')), kind('already-exists'));
  assert.equal(Buffer.from(await storage.read(location)).toString(), 'first');
  await storage.write(location, bytes('third'), { overwrite: true });
  assert.equal(Buffer.from(await storage.read(location)).toString(), 'third');
});

// Concurrent exclusive writes are not tested here: S3 decides If-None-Match atomically, but
// S3Proxy's filesystem backend checks and writes in two steps, so several racing writers win.
// Sluice does not rely on it: metadata files have unique names and PostgreSQL swaps the pointer.

test('list: every object below a prefix, as a directory, in lexical order, across pages', async () => {
  const keys = Array.from({ length: 1005 }, (_, i) => `many/dir/${String(i).padStart(4, '0')}.parquet`);
  for (let i = 0; i < keys.length; i += 50) await Promise.all(keys.slice(i, i + 50).map((k) => storage.write(at(k), bytes('x'))));
  await storage.write(at('many/directory-not-below.txt'), bytes('y'));
  const listed = await storage.list(at('many/dir'));
  assert.deepEqual(
    listed.map((f) => f.location),
    keys.map(at),
  );
  assert.ok(listed.every((f) => f.size === 1 && f.modifiedMs > 0));
});

test('a large object goes up in parts and is stored whole; nothing of a refused one is left', async () => {
  const parted = new S3Storage({ ...s3.options, multipartBytes: 6 * 1024 * 1024, partBytes: 5 * 1024 * 1024 });
  const data = new Uint8Array(13 * 1024 * 1024).map((_, i) => (i * 31) % 251);
  const location = at('big/file.parquet');
  await parted.write(location, data);
  assert.deepEqual(Buffer.from(await parted.read(location)), Buffer.from(data));
  assert.deepEqual(await readFile(join(s3.dir, bucket, 'big', 'file.parquet')), Buffer.from(data), 'one whole file on the server');
  await assert.rejects(parted.write(location, data), kind('already-exists'));
  assert.deepEqual(await readdir(join(s3.dir, bucket, 'big')), ['file.parquet'], 'no leftover of the refused upload');
});

test('wrong credentials are an error that names the location and the answer', async () => {
  const stranger = new S3Storage({ ...s3.options, secretAccessKey: 'wrong', retries: 0 });
  await assert.rejects(
    stranger.read(at('a/b/f.txt')),
    (e: unknown) => e instanceof StorageError && /s3:\/\/lake\/a\/b\/f\.txt: HTTP 403/.test(e.message),
  );
});
