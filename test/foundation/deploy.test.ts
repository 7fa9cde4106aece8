import assert from 'node:assert/strict';
import { access, readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { parse } from 'yaml';

const root = new URL('../../', import.meta.url);

describe('deploy files', () => {
  it('compose runs each of the four services from a file that exists, with the settings it needs', async () => {
    const compose = parse(await readFile(new URL('deploy/compose.yaml', root), 'utf8'), { merge: true });
    for (const name of ['catalog', 'ingestion', 'transformation', 'commit']) {
      const service = compose.services[name];
      assert.ok(service, `compose defines ${name}`);
      const [entry] = service.command;
      await access(new URL(entry, root));
      assert.equal(service.environment.SLUICE_BIND_HOST, '0.0.0.0', `${name} listens beyond loopback in a container`);
      assert.match(service.environment.DATABASE_URL, /^postgres:\/\//);
    }
  });

  it('the Dockerfile copies everything a service imports at run time', async () => {
    const dockerfile = await readFile(new URL('deploy/Dockerfile', root), 'utf8');
    for (const dir of ['proto', 'shared', 'services']) assert.match(dockerfile, new RegExp(`COPY ${dir} `));
  });
});
