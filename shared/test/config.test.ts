import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, describeSettings, loadConfig } from '#shared/config.js';
import { peerTarget } from '#shared/grpc/client.js';

describe('configuration from environment variables', () => {
  it('uses the documented defaults when nothing is set', () => {
    const config = loadConfig(['catalogPort', 'commitPort', 'databaseUrl', 'natsUrl', 'kafkaBrokers', 'logLevel', 'catalogAddress'], {});
    assert.deepEqual(config, {
      catalogPort: 50051,
      commitPort: 50054,
      databaseUrl: 'postgres://postgres@127.0.0.1:5432/sluice',
      natsUrl: 'nats://127.0.0.1:4222',
      kafkaBrokers: [],
      logLevel: 'info',
      catalogAddress: '127.0.0.1:50051',
    });
  });

  it('reads overrides, and peer addresses follow overridden ports', () => {
    const config = loadConfig(['catalogPort', 'catalogAddress', 'kafkaBrokers', 'logLevel'], {
      CATALOG_PORT: '6001',
      KAFKA_BROKERS: 'k1:9092, k2:9093',
      LOG_LEVEL: 'DEBUG',
    });
    assert.deepEqual(config, {
      catalogPort: 6001,
      catalogAddress: '127.0.0.1:6001',
      kafkaBrokers: ['k1:9092', 'k2:9093'],
      logLevel: 'debug',
    });
  });

  const badValues: [string, string, RegExp][] = [
    ['CATALOG_PORT', 'abc', /CATALOG_PORT="abc" is not an integer between 0 and 65535/],
    ['INGESTION_PORT', '70000', /INGESTION_PORT="70000" is not an integer between 0 and 65535/],
    ['TRANSFORMATION_PORT', '-1', /TRANSFORMATION_PORT="-1"/],
    ['COMMIT_PORT', '1.5', /COMMIT_PORT="1.5"/],
    ['DATABASE_URL', 'not a url', /DATABASE_URL="not a url" is not a URL/],
    ['DATABASE_URL', 'mysql://root@localhost/db', /DATABASE_URL=.* is not a URL with scheme postgres or postgresql/],
    ['NATS_URL', 'http://localhost:4222', /NATS_URL=.* is not a URL with scheme nats or tls/],
    ['KAFKA_BROKERS', 'localhost', /KAFKA_BROKERS="localhost" is not a comma-separated list of host:port \(bad entry "localhost"\)/],
    ['LOG_LEVEL', 'loud', /LOG_LEVEL="loud" is not one of fatal, error, warn, info, debug, trace, silent/],
    ['SLUICE_RPC_DEADLINE_MS', '5', /SLUICE_RPC_DEADLINE_MS="5" is not an integer between 100 and 600000/],
    ['SLUICE_SHUTDOWN_TIMEOUT_MS', 'soon', /SLUICE_SHUTDOWN_TIMEOUT_MS="soon"/],
    ['CATALOG_ADDRESS', 'catalog', /CATALOG_ADDRESS="catalog" is not an address of the form host:port/],
    ['COMMIT_ADDRESS', 'commit:99999', /COMMIT_ADDRESS="commit:99999" is not an address/],
    ['COMMIT_ADDRESS', 'commit-0:50054,commit-1:50054', /COMMIT_ADDRESS=.* is not a list of IP:port \(commit-0 is a host name/],
    ['CATALOG_ADDRESS', '127.0.0.1:1,', /CATALOG_ADDRESS=.* is not an address of the form host:port, or a comma-separated list of IP:port/],
  ];
  for (const [variable, value, expected] of badValues) {
    it(`refuses ${variable}=${JSON.stringify(value)} with an error naming the variable`, () => {
      const keyByName = Object.fromEntries(describeSettings().map((s) => [s.name, s.name]));
      assert.ok(keyByName[variable], `${variable} is a documented setting`);
      const allKeys = [
        'catalogPort',
        'ingestionPort',
        'transformationPort',
        'commitPort',
        'databaseUrl',
        'natsUrl',
        'kafkaBrokers',
        'logLevel',
        'rpcDeadlineMs',
        'shutdownTimeoutMs',
        'catalogAddress',
        'commitAddress',
      ] as const;
      assert.throws(
        () => loadConfig(allKeys, { [variable]: value }),
        (err: unknown) =>
          err instanceof ConfigError && err.variable === variable && expected.test(err.message) && !err.message.includes('\n'),
      );
    });
  }

  it("takes a list of replicas' IP:port as a peer address, and makes it one round-robin channel", () => {
    const config = loadConfig(['commitAddress'], { COMMIT_ADDRESS: '127.0.0.1:6001, 127.0.0.1:6002' });
    assert.equal(config.commitAddress, '127.0.0.1:6001,127.0.0.1:6002');
    const target = peerTarget(config.commitAddress);
    assert.equal(target.target, 'ipv4:127.0.0.1:6001,127.0.0.1:6002');
    assert.match(String(target.options['grpc.service_config']), /round_robin/);
    assert.deepEqual(peerTarget('commit.sluice.svc:50054'), { target: 'commit.sluice.svc:50054', options: {} });
  });

  it('documents every setting with a default and a description', () => {
    for (const row of describeSettings()) {
      assert.match(row.name, /^[A-Z][A-Z0-9_]+$/);
      assert.ok(row.default.length > 0 && row.description.length > 10, row.name);
    }
  });
});

describe('README configuration table', () => {
  it('lists every setting with its default', async () => {
    const { readFile } = await import('node:fs/promises');
    const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
    for (const row of describeSettings()) {
      assert.ok(readme.includes(`| \`${row.name}\` | \`${row.default}\` |`), `README documents ${row.name} with default ${row.default}`);
    }
  });
});
