import assert from 'node:assert/strict';
import { access, readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { parse } from 'yaml';

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

  it('the Dockerfile compiles everything the build needs and ships only dist/ and production dependencies', async () => {
    const dockerfile = await readFile(new URL('deploy/Dockerfile', root), 'utf8');
    for (const dir of ['proto', 'shared', 'services', 'devtools', 'cli', 'scripts']) assert.match(dockerfile, new RegExp(`COPY ${dir} `));
    assert.match(dockerfile, /RUN npm run build/);
    assert.match(dockerfile, /COPY --from=build \/src\/dist \.\/dist/);
    assert.match(dockerfile, /npm ci --omit=dev/);
    assert.match(dockerfile, /ENTRYPOINT \["node"\]/);
  });
});
