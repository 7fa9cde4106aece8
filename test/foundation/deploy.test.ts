import assert from 'node:assert/strict';
import { access, readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { describeSettings } from '#shared/config.js';

const root = new URL('../../', import.meta.url);

describe('deploy files', () => {
  // npm test builds dist/ first, so the compiled entry points the image runs exist here too.
  it('compose runs each of the four services from a compiled file that exists, with the settings it needs', async () => {
    const compose = parse(await readFile(new URL('deploy/compose.yaml', root), 'utf8'), { merge: true });
    for (const name of ['catalog', 'ingestion', 'transformation', 'commit']) {
      const service = compose.services[name];
      assert.ok(service, `compose defines ${name}`);
      const [entry] = service.command;
      assert.match(entry, /^dist\/services\/[a-z]+\/src\/main\.js$/, `${name} runs compiled JavaScript`);
      await access(new URL(entry, root));
      assert.equal(service.environment.SLUICE_BIND_HOST, '0.0.0.0', `${name} listens beyond loopback in a container`);
      assert.match(service.environment.DATABASE_URL, /^postgres:\/\//);
    }
  });

  it('compose serves every RPC over mutual TLS with bearer tokens, from secrets, and publishes ports on loopback only', async () => {
    const compose = parse(await readFile(new URL('deploy/compose.yaml', root), 'utf8'), { merge: true });
    for (const name of ['catalog', 'ingestion', 'transformation', 'commit']) {
      const service = compose.services[name];
      const env = service.environment;
      assert.equal(env.SLUICE_TLS, 'mutual', `${name} requires TLS with client certificates`);
      for (const variable of ['SLUICE_TLS_CERT', 'SLUICE_TLS_KEY', 'SLUICE_TLS_CA', 'SLUICE_TOKENS_FILE']) {
        const secret = /^\/run\/secrets\/([a-z-]+)$/.exec(env[variable])?.[1];
        assert.ok(secret, `${name}: ${variable} is a mounted secret (${env[variable]})`);
        assert.ok(service.secrets.includes(secret), `${name} mounts the secret ${secret}`);
        assert.match(compose.secrets[secret]?.file ?? '', /^\.\/secrets\//, `the secret ${secret} comes from deploy/secrets/`);
      }
      assert.match(
        env.SLUICE_TOKEN,
        /^\$\{SLUICE_SERVICE_TOKEN:\?/,
        `${name}'s token comes from the environment, required, never written in the file`,
      );
      const known = new Set(describeSettings().map((setting) => setting.name));
      for (const variable of Object.keys(env)) assert.ok(known.has(variable), `${name}: ${variable} is a setting Sluice reads`);
      for (const port of service.ports)
        assert.match(port, /^127\.0\.0\.1:\d+:\d+$/, `${name} publishes ${port} on the host's loopback only`);
    }
    const ignored = await readFile(new URL('deploy/secrets/.gitignore', root), 'utf8');
    assert.match(ignored, /^\*$/m, 'keys and tokens put in deploy/secrets are never committed');
  });

  it('the Dockerfile compiles everything the build needs and ships only dist/ and production dependencies', async () => {
    const dockerfile = await readFile(new URL('deploy/Dockerfile', root), 'utf8');
    for (const dir of ['proto', 'shared', 'services', 'devtools', 'cli', 'scripts']) assert.match(dockerfile, new RegExp(`COPY ${dir} `));
    assert.match(dockerfile, /RUN npm run build/);
    assert.match(dockerfile, /COPY --from=build \/src\/dist \.\/dist/);
    assert.match(dockerfile, /npm ci --omit=dev/);
    assert.match(dockerfile, /ENTRYPOINT \["node"\]/);
    assert.match(dockerfile, /^ENV .*SLUICE_TLS=mutual/m, 'a container listening beyond loopback requires TLS unless told otherwise');
  });
});
