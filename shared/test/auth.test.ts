import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { after, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { ConfigError, loadConfig } from '#shared/config.js';
import { authorize, hashToken, METHOD_ROLES, PUBLIC, ROLES, type Role, TokenFileError, TokenTable } from '#shared/grpc/auth.js';
import { CLIENT_SECURITY_KEYS, clientSecurity } from '#shared/grpc/client.js';
import { bindService, PROTO_DIR, SERVER_SECURITY_KEYS, serverSecurity, startGrpcServer } from '#shared/grpc/server.js';
import { createLogger } from '#shared/logger.js';
import { securityWarnings } from '#shared/service.js';
import { createTestPki } from '#test-support/tls.js';
import { tempDir } from '#test-support/temp.js';

/** Every `/package.Service/Method` path the given proto files declare. */
function methodPaths(files: string[], includeDirs: string[]): string[] {
  const definition = protoLoader.loadSync(files, { includeDirs });
  const paths: string[] = [];
  for (const service of Object.values(definition)) {
    if ('format' in service) continue; // a message or enum type
    for (const method of Object.values(service as protoLoader.ServiceDefinition)) paths.push(method.path);
  }
  return paths;
}

const require = createRequire(import.meta.url);
const reflectionProtos = join(dirname(require.resolve('@grpc/reflection/package.json')), 'build', 'proto');

describe('the access table', () => {
  const sluicePaths = methodPaths(
    readdirSync(join(PROTO_DIR, 'sluice', 'v1')).map((f) => `sluice/v1/${f}`),
    [PROTO_DIR],
  );
  const servedAlongside = [
    ...methodPaths([relative(dirname(dirname(dirname(healthProtoPath))), healthProtoPath)], [dirname(dirname(dirname(healthProtoPath)))]),
    ...methodPaths(['grpc/reflection/v1/reflection.proto', 'grpc/reflection/v1alpha/reflection.proto'], [reflectionProtos]),
  ];

  it('has an entry for every method of every service in proto/, and of health and reflection', () => {
    assert.ok(sluicePaths.length >= 30, `found ${sluicePaths.length} sluice methods`);
    const missing = [...sluicePaths, ...servedAlongside].filter((path) => !(path in METHOD_ROLES));
    assert.deepEqual(missing, [], 'methods without an access rule in METHOD_ROLES (shared/src/grpc/auth.ts)');
  });

  it('names no method that does not exist', () => {
    const known = new Set([...sluicePaths, ...servedAlongside]);
    assert.deepEqual(
      Object.keys(METHOD_ROLES).filter((path) => !known.has(path)),
      [],
    );
  });

  it('leaves only health public, and keeps the dangerous calls from operators', () => {
    const publicPaths = Object.entries(METHOD_ROLES)
      .filter(([, access]) => access === PUBLIC)
      .map(([path]) => path);
    assert.deepEqual(publicPaths.sort(), ['/grpc.health.v1.Health/Check', '/grpc.health.v1.Health/List', '/grpc.health.v1.Health/Watch']);
    const expected: [string, Role][] = [
      ['/sluice.v1.CatalogService/DropDatabase', 'admin'],
      ['/sluice.v1.CatalogService/DropTable', 'admin'],
      ['/sluice.v1.CatalogService/CreateTable', 'admin'],
      ['/sluice.v1.CatalogService/CreateJob', 'admin'],
      ['/sluice.v1.CatalogService/CommitTable', 'service'],
      ['/sluice.v1.CatalogService/AcquireCommitLease', 'service'],
      ['/sluice.v1.CommitService/ReportDataFiles', 'service'],
      ['/sluice.v1.TransformationService/Transform', 'service'],
      ['/sluice.v1.IngestionService/StartJob', 'operator'],
      ['/sluice.v1.IngestionService/GetJobStatus', 'operator'],
    ];
    for (const [path, role] of expected) assert.equal(METHOD_ROLES[path], role, path);
  });

  it('a server refuses to start with a method that has no access rule', async () => {
    const definition = {
      brandNew: {
        path: '/sluice.v1.CatalogService/BrandNew',
        requestStream: false,
        responseStream: false,
        requestSerialize: (v: Buffer) => v,
        requestDeserialize: (v: Buffer) => v,
        responseSerialize: (v: Buffer) => v,
        responseDeserialize: (v: Buffer) => v,
      },
    } as const;
    await assert.rejects(
      startGrpcServer({
        host: '127.0.0.1',
        port: 0,
        protoFiles: [],
        services: [bindService('sluice.v1.CatalogService', definition, { brandNew: async (r: Buffer) => r })],
        logger: createLogger('test', 'silent'),
      }),
      /sluice\.v1\.CatalogService\/BrandNew has no access rule: add it to METHOD_ROLES/,
    );
  });
});

describe('authorize', () => {
  const tokens = TokenTable.parse(
    [`admin admin-token-0123456789`, `operator operator-token-0123456789`, `service ${hashToken('service-token-0123456789')}`].join('\n'),
  );
  const drop = '/sluice.v1.CatalogService/DropTable';
  const commit = '/sluice.v1.CatalogService/CommitTable';
  const status = '/sluice.v1.IngestionService/GetJobStatus';
  const cases: [string, string, string | undefined, grpc.status | 'ok'][] = [
    ['health without a token', '/grpc.health.v1.Health/Check', undefined, 'ok'],
    ['no token', status, undefined, grpc.status.UNAUTHENTICATED],
    ['an empty header', status, '', grpc.status.UNAUTHENTICATED],
    ['not a bearer header', status, 'Basic YWRtaW46YWRtaW4=', grpc.status.UNAUTHENTICATED],
    ['an unknown token', status, 'Bearer not-a-token-0123456789', grpc.status.UNAUTHENTICATED],
    ['a prefix of a token', drop, 'Bearer admin-token-012345678', grpc.status.UNAUTHENTICATED],
    ['the operator reading status', status, 'Bearer operator-token-0123456789', 'ok'],
    ['the operator dropping a table', drop, 'Bearer operator-token-0123456789', grpc.status.PERMISSION_DENIED],
    ['the operator committing', commit, 'Bearer operator-token-0123456789', grpc.status.PERMISSION_DENIED],
    ['a hashed service token committing', commit, 'Bearer service-token-0123456789', 'ok'],
    ['the service dropping a table', drop, 'Bearer service-token-0123456789', grpc.status.PERMISSION_DENIED],
    ['the admin dropping a table', drop, 'bearer admin-token-0123456789', 'ok'],
    ['the admin committing', commit, 'Bearer admin-token-0123456789', 'ok'],
    ['a method without a rule', '/sluice.v1.CatalogService/Nope', 'Bearer admin-token-0123456789', grpc.status.PERMISSION_DENIED],
  ];
  for (const [name, path, header, expected] of cases) {
    it(`${name}: ${expected === 'ok' ? 'allowed' : grpc.status[expected]}`, () => {
      const decision = authorize(path, header, tokens);
      if (expected === 'ok') assert.equal(decision.allowed, true);
      else {
        assert.equal(decision.allowed, false);
        if (!decision.allowed) {
          assert.equal(decision.code, expected);
          assert.ok(!decision.details.includes('token-0123456789'), 'the message does not repeat a token');
        }
      }
    });
  }

  it('says which role a denied call needs', () => {
    const decision = authorize(drop, 'Bearer operator-token-0123456789', tokens);
    assert.deepEqual(decision, {
      allowed: false,
      code: grpc.status.PERMISSION_DENIED,
      details: "sluice.v1.CatalogService/DropTable needs the admin role; the token's role is operator",
    });
  });
});

describe('tokens files', () => {
  const bad: [string, string, RegExp][] = [
    ['an unknown role', 'root abcdefghijklmnopqrstuvwxyz', /^line 1: unknown role "root" \(one of operator, service, admin\)$/],
    ['a short token', '# tokens\n\nadmin short', /^line 3: the token is shorter than 16 characters$/],
    ['three fields', 'admin abcdefghijklmnopqr extra', /^line 1: expected "<role> <token>"$/],
    ['a role alone', 'admin', /^line 1: expected "<role> <token>"$/],
    [
      'a token twice',
      'admin abcdefghijklmnopqr\noperator abcdefghijklmnopqr',
      /^line 2: the same token is listed twice \(as admin and operator\)$/,
    ],
    ['nothing', '# none yet\n', /the file lists no token/],
  ];
  for (const [name, text, expected] of bad) {
    it(`refuses ${name}, naming the line`, () => {
      assert.throws(
        () => TokenTable.parse(text),
        (err: unknown) => err instanceof TokenFileError && expected.test(`line ${err.line}: ${err.message}`),
      );
    });
  }

  it('accepts plain and hashed tokens, comments and blank lines', () => {
    const table = TokenTable.parse(
      `# ops\n\n  operator   opsopsopsopsopsops  \nadmin ${hashToken('the-admin-secret-token').toUpperCase()}\n`,
    );
    assert.equal(table.roleOf('opsopsopsopsopsops'), 'operator');
    assert.equal(table.roleOf('the-admin-secret-token'), 'admin');
    assert.equal(table.roleOf('sha256:whatever'), undefined);
    assert.equal(table.roleOf(''), undefined);
  });

  it('every role is a rank of the table', () => {
    assert.deepEqual([...ROLES], ['operator', 'service', 'admin']);
  });
});

describe('TLS and token settings', () => {
  const pki = createTestPki();
  const dir = tempDir('tls-config');
  const notPem = join(dir.path, 'not.pem');
  writeFileSync(notPem, 'hello\n');
  const badTokens = join(dir.path, 'tokens');
  writeFileSync(badTokens, 'admin ok-this-is-long-enough\nsuperuser zzzzzzzzzzzzzzzzzzzz\n');
  after(() => {
    pki.remove();
    dir.remove();
  });

  const server = (env: Record<string, string>) => serverSecurity(loadConfig(SERVER_SECURITY_KEYS, env));
  const client = (env: Record<string, string>) => clientSecurity(loadConfig(CLIENT_SECURITY_KEYS, env));

  it('nothing set: plaintext and no tokens, as before', () => {
    assert.equal(loadConfig(['tlsMode'], {}).tlsMode, 'off');
    const security = server({});
    assert.equal(security.tls, 'off');
    assert.equal(security.tokens, undefined);
    assert.equal(client({}).token, undefined);
  });

  it('a certificate or a CA turns TLS on unless SLUICE_TLS says otherwise', () => {
    assert.equal(loadConfig(['tlsMode'], { SLUICE_TLS_CERT: pki.serviceCert }).tlsMode, 'on');
    assert.equal(loadConfig(['tlsMode'], { SLUICE_TLS_CA: pki.ca }).tlsMode, 'on');
    assert.equal(loadConfig(['tlsMode'], { SLUICE_TLS_CA: pki.ca, SLUICE_TLS: 'Mutual' }).tlsMode, 'mutual');
    assert.equal(loadConfig(['tlsMode'], { SLUICE_TLS_CA: pki.ca, SLUICE_TLS: 'off' }).tlsMode, 'off');
    assert.equal(server(pki.serviceEnv('on')).tls, 'on');
    assert.equal(server(pki.serviceEnv('mutual')).tls, 'mutual');
  });

  const refusals: [string, Record<string, string>, 'server' | 'client', string, RegExp][] = [
    ['an unknown mode', { SLUICE_TLS: 'yes' }, 'server', 'SLUICE_TLS', /SLUICE_TLS="yes" is not one of off, on, mutual/],
    [
      'a missing file',
      { SLUICE_TLS_CA: '/nonexistent/ca.pem' },
      'client',
      'SLUICE_TLS_CA',
      /SLUICE_TLS_CA="\/nonexistent\/ca.pem" is not a readable file \(ENOENT\)/,
    ],
    [
      'a file that is not PEM',
      { SLUICE_TLS_CA: notPem },
      'client',
      'SLUICE_TLS_CA',
      /SLUICE_TLS_CA=".*not\.pem": the file is not PEM \(expected CA certificates\)/,
    ],
    [
      'TLS without a certificate',
      { SLUICE_TLS: 'on' },
      'server',
      'SLUICE_TLS_CERT',
      /SLUICE_TLS=on needs SLUICE_TLS_CERT, the server's certificate/,
    ],
    [
      'a certificate without its key',
      { SLUICE_TLS_CERT: pki.serviceCert },
      'server',
      'SLUICE_TLS_KEY',
      /SLUICE_TLS=on needs SLUICE_TLS_KEY/,
    ],
    [
      'mutual TLS without a CA',
      { SLUICE_TLS: 'mutual', SLUICE_TLS_CERT: pki.serviceCert, SLUICE_TLS_KEY: pki.serviceKey },
      'server',
      'SLUICE_TLS_CA',
      /SLUICE_TLS=mutual needs SLUICE_TLS_CA, the CA that signs client certificates/,
    ],
    [
      "a key that is not the certificate's",
      { SLUICE_TLS_CERT: pki.serviceCert, SLUICE_TLS_KEY: pki.clientKey },
      'server',
      'SLUICE_TLS_KEY',
      /SLUICE_TLS_CERT=".*service\.pem" and SLUICE_TLS_KEY=".*client\.key" are not a usable certificate and key/,
    ],
    [
      'a client under mutual TLS without a certificate',
      { SLUICE_TLS: 'mutual', SLUICE_TLS_CA: pki.ca },
      'client',
      'SLUICE_TLS_CERT',
      /SLUICE_TLS=mutual needs SLUICE_TLS_CERT/,
    ],
    [
      'a client key without its certificate',
      { SLUICE_TLS_CA: pki.ca, SLUICE_TLS_KEY: pki.clientKey },
      'client',
      'SLUICE_TLS_CERT',
      /SLUICE_TLS_KEY is set but SLUICE_TLS_CERT is not/,
    ],
    [
      'a bad tokens file',
      { SLUICE_TOKENS_FILE: badTokens },
      'server',
      'SLUICE_TOKENS_FILE',
      /SLUICE_TOKENS_FILE=".*tokens": line 2: unknown role "superuser"/,
    ],
    [
      'a token with a space',
      { SLUICE_TOKEN: 'my secret token' },
      'client',
      'SLUICE_TOKEN',
      /^invalid configuration: SLUICE_TOKEN is not a token \(printable ASCII characters without spaces\)$/,
    ],
  ];
  for (const [name, env, side, variable, expected] of refusals) {
    it(`refuses ${name}, naming ${variable} in one line`, () => {
      assert.throws(
        () => (side === 'server' ? server(env) : client(env)),
        (err: unknown) =>
          err instanceof ConfigError && err.variable === variable && expected.test(err.message) && !err.message.includes('\n'),
      );
    });
  }

  it('never repeats a bad token in the error', () => {
    assert.throws(
      () => client({ SLUICE_TOKEN: 'my secret' }),
      (err: unknown) => err instanceof ConfigError && !err.message.includes('secret'),
    );
  });

  it('warns about plaintext tokens and about open ports without tokens, not about loopback', () => {
    assert.deepEqual(securityWarnings('127.0.0.1', false, false), []);
    assert.deepEqual(securityWarnings('0.0.0.0', true, true), []);
    assert.match(securityWarnings('127.0.0.1', false, true).join(), /bearer tokens travel in plaintext/);
    assert.match(securityWarnings('0.0.0.0', true, false).join(), /listening on 0\.0\.0\.0 without authentication/);
  });
});
