import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseS3Location, s3OptionsFromEnv, signV4 } from '#shared/storage/s3.js';

test("signV4 reproduces AWS's published example (GET Object with a range)", () => {
  const headers = signV4(
    {
      method: 'GET',
      url: new URL('https://examplebucket.s3.amazonaws.com/test.txt'),
      headers: { range: 'bytes=0-9' },
      payloadHash: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      now: new Date('2013-05-24T00:00:00Z'),
    },
    { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', region: 'us-east-1' },
  );
  assert.equal(
    headers.authorization,
    'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
  );
  assert.equal(headers['x-amz-date'], '20130524T000000Z');
});

test('parseS3Location: bucket and key, or a clear refusal', () => {
  assert.deepEqual(parseS3Location('s3://lake/wh/db/t/data/f.parquet'), { bucket: 'lake', key: 'wh/db/t/data/f.parquet' });
  assert.deepEqual(parseS3Location('s3a://lake'), { bucket: 'lake', key: '' });
  assert.throws(() => parseS3Location('s3:///key'), /not an s3:\/\/bucket\/key location/);
  assert.throws(() => parseS3Location('/local/path'), /not an s3:\/\/bucket\/key location/);
});

test('s3OptionsFromEnv: the standard AWS variables; no credentials, no S3', () => {
  assert.equal(s3OptionsFromEnv({}), null);
  const cases: [NodeJS.ProcessEnv, Partial<ReturnType<typeof s3OptionsFromEnv>>][] = [
    [
      { AWS_ACCESS_KEY_ID: 'k', AWS_SECRET_ACCESS_KEY: 's' },
      { endpoint: '', region: 'us-east-1', pathStyle: false },
    ],
    [
      { AWS_ACCESS_KEY_ID: 'k', AWS_SECRET_ACCESS_KEY: 's', AWS_ENDPOINT_URL: 'http://127.0.0.1:9000', AWS_DEFAULT_REGION: 'eu-central-1' },
      { endpoint: 'http://127.0.0.1:9000', region: 'eu-central-1', pathStyle: true },
    ],
    [
      {
        AWS_ACCESS_KEY_ID: 'k',
        AWS_SECRET_ACCESS_KEY: 's',
        AWS_ENDPOINT_URL: 'http://a',
        AWS_ENDPOINT_URL_S3: 'http://b',
        SLUICE_S3_PATH_STYLE: 'false',
      },
      { endpoint: 'http://b', pathStyle: false },
    ],
  ];
  for (const [env, expected] of cases) {
    const got = s3OptionsFromEnv(env);
    for (const [k, v] of Object.entries(expected ?? {})) assert.equal(got?.[k as keyof typeof got], v, `${JSON.stringify(env)}: ${k}`);
  }
});
