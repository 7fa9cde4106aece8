/**
 * S3-compatible object storage behind the storage seam: `s3://bucket/key` locations, requests
 * signed with AWS Signature Version 4 over Node's fetch. We sign requests ourselves instead of
 * taking the AWS SDK: the seam needs seven operations, and the SDK would add some 80 packages
 * to every service for them.
 *
 * - Immutability: a write that must not replace checks with HEAD, then sends `If-None-Match: *`,
 *   so S3 refuses a key that appeared in between (412), atomically. A server that ignores the
 *   header leaves a window where two writers race: S3Proxy's filesystem backend, the test
 *   peer, is one. Sluice does not depend on winning such a race. Metadata files have unique
 *   names, PostgreSQL swaps the table's pointer, and data files are named for their worker.
 * - No partial object: a PUT or a completed multipart upload publishes the whole object at
 *   once; a failed multipart upload is aborted. So a location a report or a commit names is
 *   complete or absent.
 * - Large objects (at least `multipartBytes`) go up in parts of `partBytes`.
 * - Retries: 5xx, 429 and network errors are retried with exponential backoff and jitter, up
 *   to `retries` times. A 4xx answer is final.
 */
import { createHash, createHmac } from 'node:crypto';
import { StorageError } from './errors.js';
import type { FileInfo, Storage, WriteOptions } from './storage.js';

export interface S3Options {
  /** `http(s)://host:port` of the S3 API; empty: AWS's regional endpoint. */
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  /** Address buckets as a path (`endpoint/bucket/key`), as S3-compatible servers need, instead of a host name. */
  pathStyle: boolean;
  multipartBytes?: number;
  partBytes?: number;
  retries?: number;
}

const DEFAULT_MULTIPART_BYTES = 64 * 1024 * 1024;
const DEFAULT_PART_BYTES = 16 * 1024 * 1024;
const EMPTY_SHA256 = createHash('sha256').update('').digest('hex');

/** The bucket and key of an `s3://bucket/key` location. */
export function parseS3Location(location: string): { bucket: string; key: string } {
  const match = /^s3a?:\/\/([^/]+)\/?(.*)$/.exec(location);
  if (!match || match[1] === '') throw new StorageError('invalid-location', `not an s3://bucket/key location: ${location}`, location);
  return { bucket: match[1], key: match[2] };
}

/** RFC 3986 encoding as SigV4 wants it: unreserved characters kept, the rest %XX (and '/' kept in paths). */
function uriEncode(text: string, keepSlash: boolean): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const c = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-._~]/.test(c) || (keepSlash && c === '/')) out += c;
    else out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest('hex');
const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data).digest();

export interface SignInput {
  method: string;
  url: URL;
  headers: Record<string, string>;
  payloadHash: string;
  now: Date;
}

/**
 * The SigV4 headers of a request (`authorization`, `x-amz-date`, `x-amz-content-sha256`, and
 * the session token when there is one). Pure, so it is tested against AWS's published example.
 */
export function signV4(
  input: SignInput,
  creds: Pick<S3Options, 'accessKeyId' | 'secretAccessKey' | 'sessionToken' | 'region'>,
  service = 's3',
) {
  const amzDate = input.now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
  const day = amzDate.slice(0, 8);
  const headers: Record<string, string> = {
    ...Object.fromEntries(Object.entries(input.headers).map(([k, v]) => [k.toLowerCase(), v])),
    host: input.url.host,
    'x-amz-date': amzDate,
    'x-amz-content-sha256': input.payloadHash,
  };
  if (creds.sessionToken) headers['x-amz-security-token'] = creds.sessionToken;
  const names = Object.keys(headers).sort();
  const canonicalHeaders = names.map((n) => `${n}:${headers[n].trim().replace(/\s+/g, ' ')}\n`).join('');
  const signedHeaders = names.join(';');
  const query = [...input.url.searchParams.entries()]
    .map(([k, v]) => [uriEncode(k, false), uriEncode(v, false)])
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const path = uriEncode(decodeURIComponent(input.url.pathname), true);
  const canonicalRequest = [input.method, path, query, canonicalHeaders, signedHeaders, input.payloadHash].join('\n');
  const scope = `${day}/${creds.region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonicalRequest)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${creds.secretAccessKey}`, day), creds.region), service), 'aws4_request');
  const signature = createHmac('sha256', key).update(stringToSign).digest('hex');
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${creds.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
  delete headers.host; // fetch sets it from the URL
  return headers;
}

interface Answer {
  status: number;
  headers: Headers;
  body: Buffer;
}

const xmlValues = (xml: string, tag: string) => [...xml.matchAll(new RegExp(`<${tag}>([^<]*)</${tag}>`, 'g'))].map((m) => decodeXml(m[1]));
const decodeXml = (text: string) =>
  text.replace(/&(lt|gt|amp|quot|apos);/g, (_, e: string) => ({ lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" })[e] ?? '');

export class S3Storage implements Storage {
  private readonly multipartBytes: number;
  private readonly partBytes: number;
  private readonly retries: number;

  constructor(private readonly options: S3Options) {
    this.multipartBytes = options.multipartBytes ?? DEFAULT_MULTIPART_BYTES;
    this.partBytes = options.partBytes ?? DEFAULT_PART_BYTES;
    this.retries = options.retries ?? 4;
  }

  async write(location: string, data: Uint8Array, options: WriteOptions = {}): Promise<void> {
    const { bucket, key } = parseS3Location(location);
    if (!options.overwrite && (await this.exists(location)))
      throw new StorageError('already-exists', `${location} already exists and objects are never replaced`, location);
    const guard: Record<string, string> = options.overwrite ? {} : { 'if-none-match': '*' };
    if (data.length >= this.multipartBytes) return this.writeInParts(location, bucket, key, data, guard);
    const answer = await this.request('PUT', bucket, key, {}, data, guard, location);
    if (answer.status === 412)
      throw new StorageError('already-exists', `${location} already exists and objects are never replaced`, location);
    this.expectOk(answer, 'PUT', location);
  }

  private async writeInParts(
    location: string,
    bucket: string,
    key: string,
    data: Uint8Array,
    guard: Record<string, string>,
  ): Promise<void> {
    const created = await this.request('POST', bucket, key, { uploads: '' }, undefined, {}, location);
    this.expectOk(created, 'CreateMultipartUpload', location);
    const [uploadId] = xmlValues(created.body.toString('utf8'), 'UploadId');
    if (!uploadId) throw new StorageError('io', `CreateMultipartUpload of ${location} answered no UploadId`, location);
    try {
      const etags: string[] = [];
      for (let at = 0, part = 1; at < data.length; at += this.partBytes, part++) {
        const body = data.subarray(at, Math.min(data.length, at + this.partBytes));
        const answer = await this.request('PUT', bucket, key, { partNumber: String(part), uploadId }, body, {}, location);
        this.expectOk(answer, `UploadPart ${part}`, location);
        etags.push(answer.headers.get('etag') ?? '');
      }
      const xml = `<CompleteMultipartUpload>${etags
        .map((etag, i) => `<Part><PartNumber>${i + 1}</PartNumber><ETag>${etag}</ETag></Part>`)
        .join('')}</CompleteMultipartUpload>`;
      const done = await this.request('POST', bucket, key, { uploadId }, Buffer.from(xml), guard, location);
      if (done.status === 412)
        throw new StorageError('already-exists', `${location} already exists and objects are never replaced`, location);
      this.expectOk(done, 'CompleteMultipartUpload', location);
      // S3 may answer 200 with an error in the body.
      if (done.body.includes('<Error>'))
        throw new StorageError(
          'io',
          `CompleteMultipartUpload of ${location} failed: ${done.body.toString('utf8').slice(0, 200)}`,
          location,
        );
    } catch (err) {
      await this.request('DELETE', bucket, key, { uploadId }, undefined, {}, location).catch(() => undefined);
      throw err;
    }
  }

  async read(location: string): Promise<Uint8Array> {
    const { bucket, key } = parseS3Location(location);
    const answer = await this.request('GET', bucket, key, {}, undefined, {}, location);
    if (answer.status === 404) throw new StorageError('not-found', `${location} does not exist`, location);
    this.expectOk(answer, 'GET', location);
    return new Uint8Array(answer.body);
  }

  async readRange(location: string, offset: number, length: number): Promise<Uint8Array> {
    if (length <= 0) return new Uint8Array(0);
    const { bucket, key } = parseS3Location(location);
    const answer = await this.request('GET', bucket, key, {}, undefined, { range: `bytes=${offset}-${offset + length - 1}` }, location);
    if (answer.status === 404) throw new StorageError('not-found', `${location} does not exist`, location);
    if (answer.status === 416) return new Uint8Array(0); // the range starts past the end
    this.expectOk(answer, 'GET', location);
    // A server that ignores Range answers 200 with the whole object.
    return new Uint8Array(answer.status === 206 ? answer.body : answer.body.subarray(offset, offset + length));
  }

  async exists(location: string): Promise<boolean> {
    return (await this.stat(location)) !== undefined;
  }

  async stat(location: string): Promise<FileInfo | undefined> {
    const { bucket, key } = parseS3Location(location);
    const answer = await this.request('HEAD', bucket, key, {}, undefined, {}, location);
    if (answer.status === 404) return undefined;
    this.expectOk(answer, 'HEAD', location);
    return {
      location,
      size: Number(answer.headers.get('content-length') ?? 0),
      modifiedMs: Date.parse(answer.headers.get('last-modified') ?? '') || 0,
    };
  }

  async list(prefix: string): Promise<FileInfo[]> {
    const { bucket, key } = parseS3Location(prefix);
    const dir = key === '' || key.endsWith('/') ? key : `${key}/`;
    const out: FileInfo[] = [];
    let token: string | undefined;
    do {
      const query: Record<string, string> = { 'list-type': '2', prefix: dir };
      if (token) query['continuation-token'] = token;
      const answer = await this.request('GET', bucket, '', query, undefined, {}, prefix);
      this.expectOk(answer, 'ListObjectsV2', prefix);
      const xml = answer.body.toString('utf8');
      for (const entry of xml.split('<Contents>').slice(1)) {
        const [objectKey] = xmlValues(entry, 'Key');
        const [size] = xmlValues(entry, 'Size');
        const [modified] = xmlValues(entry, 'LastModified');
        out.push({ location: `s3://${bucket}/${objectKey}`, size: Number(size), modifiedMs: Date.parse(modified) || 0 });
      }
      token = xmlValues(xml, 'IsTruncated')[0] === 'true' ? xmlValues(xml, 'NextContinuationToken')[0] : undefined;
    } while (token);
    return out.sort((a, b) => (a.location < b.location ? -1 : a.location > b.location ? 1 : 0));
  }

  async delete(location: string): Promise<boolean> {
    if (!(await this.exists(location))) return false;
    const { bucket, key } = parseS3Location(location);
    const answer = await this.request('DELETE', bucket, key, {}, undefined, {}, location);
    if (answer.status === 404) return false;
    this.expectOk(answer, 'DELETE', location);
    return true;
  }

  /** Creates a bucket (tests and first-time setup); an existing one of ours is fine. */
  async createBucket(bucket: string): Promise<void> {
    const answer = await this.request('PUT', bucket, '', {}, undefined, {}, `s3://${bucket}`);
    if (answer.status === 409 && answer.body.includes('BucketAlreadyOwnedByYou')) return;
    this.expectOk(answer, 'CreateBucket', `s3://${bucket}`);
  }

  private url(bucket: string, key: string, query: Record<string, string>): URL {
    const { endpoint, region, pathStyle } = this.options;
    const base = endpoint || `https://s3.${region}.amazonaws.com`;
    const url = new URL(base);
    const path = key === '' ? '' : `/${uriEncode(key, true)}`;
    if (pathStyle) url.pathname = `/${uriEncode(bucket, false)}${path}`;
    else {
      url.hostname = `${bucket}.${url.hostname}`;
      url.pathname = path || '/';
    }
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
    return url;
  }

  private async request(
    method: string,
    bucket: string,
    key: string,
    query: Record<string, string>,
    body: Uint8Array | undefined,
    headers: Record<string, string>,
    location: string,
  ): Promise<Answer> {
    const url = this.url(bucket, key, query);
    for (let attempt = 0; ; attempt++) {
      let answer: Answer | undefined;
      let failure: unknown;
      try {
        const signed = signV4({ method, url, headers, payloadHash: body ? sha256(body) : EMPTY_SHA256, now: new Date() }, this.options);
        const response = await fetch(url, {
          method,
          headers: signed,
          body: body && body.length > 0 ? (body as unknown as BodyInit) : undefined,
        });
        answer = { status: response.status, headers: response.headers, body: Buffer.from(await response.arrayBuffer()) };
      } catch (err) {
        failure = err;
      }
      const retryable = answer === undefined || answer.status >= 500 || answer.status === 429;
      if (!retryable || attempt >= this.retries) {
        if (answer) return answer;
        throw new StorageError('io', `${method} ${location}: ${(failure as Error)?.message ?? 'no answer'}`, location, { cause: failure });
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 100 * 2 ** attempt) * (0.5 + Math.random() / 2)));
    }
  }

  private expectOk(answer: Answer, what: string, location: string): void {
    if (answer.status >= 200 && answer.status < 300) return;
    const code = xmlValues(answer.body.toString('utf8'), 'Code')[0] ?? '';
    const message = xmlValues(answer.body.toString('utf8'), 'Message')[0] ?? '';
    const kind = answer.status === 404 ? 'not-found' : 'io';
    throw new StorageError(
      kind,
      `${what} ${location}: HTTP ${answer.status}${code ? ` ${code}` : ''}${message ? `: ${message}` : ''}`,
      location,
    );
  }
}

/** S3 settings from the standard AWS environment variables, or null when no S3 is configured. */
export function s3OptionsFromEnv(env: NodeJS.ProcessEnv = process.env): S3Options | null {
  const accessKeyId = env.AWS_ACCESS_KEY_ID ?? '';
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY ?? '';
  if (!accessKeyId || !secretAccessKey) return null;
  const endpoint = env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL ?? '';
  return {
    endpoint,
    region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
    accessKeyId,
    secretAccessKey,
    sessionToken: env.AWS_SESSION_TOKEN || undefined,
    // S3-compatible servers at an endpoint of their own are addressed by path unless told otherwise.
    pathStyle: (env.SLUICE_S3_PATH_STYLE ?? (endpoint ? 'true' : 'false')) === 'true',
  };
}
