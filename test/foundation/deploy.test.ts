import assert from 'node:assert/strict';
import { access, readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { ALLOCATOR_ENV, heapFlags } from '#cli/launch.js';
import { describeSettings } from '#shared/config.js';

const root = new URL('../../', import.meta.url);

describe('deploy files', () => {
  // npm test builds dist/ first, so the compiled entry points the image runs exist here too.
  it('compose runs each of the four services from a compiled file that exists, with the settings it needs', async () => {
    const compose = parse(await readFile(new URL('deploy/compose.yaml', root), 'utf8'), { merge: true });
    for (const name of ['catalog', 'ingestion', 'transformation', 'commit'] as const) {
      const service = compose.services[name];
      assert.ok(service, `compose defines ${name}`);
      const entry = service.command.at(-1);
      assert.equal(entry, `dist/services/${name}/src/main.js`, `${name} runs compiled JavaScript`);
      await access(new URL(entry, root));
      assert.deepEqual(service.command.slice(0, -1), heapFlags(name, {}), `${name} gets the heap flags sluice up passes`);
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
    for (const [name, value] of Object.entries(ALLOCATOR_ENV))
      assert.ok(
        dockerfile.split('\n').includes(`ENV ${name}=${value}`),
        `the image starts every program with ${name}=${value}, as sluice up does`,
      );
  });
});

/** The documents of a manifest file. */
async function manifests(path: string): Promise<K8sObject[]> {
  const text = await readFile(new URL(path, root), 'utf8');
  return parseAllDocuments(text).map((d) => d.toJS() as K8sObject);
}

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  [field: string]: any;
}

/** Validates an object against the Kubernetes API schema of its kind (kubernetes-models). */
async function validateK8s(object: K8sObject): Promise<void> {
  const module = await import(`kubernetes-models/${object.apiVersion}/${object.kind}`);
  const Model = module[object.kind] ?? module.default;
  new Model(object).validate();
}

/** Applies a JSON patch of `replace` operations (all the overlay uses) to a copy of `object`. */
function applyReplace(object: K8sObject, patch: { op: string; path: string; value: unknown }[]): K8sObject {
  const copy = structuredClone(object);
  for (const { op, path, value } of patch) {
    assert.equal(op, 'replace', `the overlay's patches replace (${op} ${path})`);
    const keys = path.split('/').slice(1);
    let at: any = copy;
    for (const key of keys.slice(0, -1)) at = at[key];
    assert.ok(keys.at(-1)! in at, `${object.kind}/${object.metadata.name} has ${path} to replace`);
    at[keys.at(-1)!] = value;
  }
  return copy;
}

describe('Kubernetes manifests (deploy/k8s)', () => {
  const base = 'deploy/k8s/base/';
  const load = async () => {
    const kustomization = parse(await readFile(new URL(`${base}kustomization.yaml`, root), 'utf8'));
    return (await Promise.all((kustomization.resources as string[]).map((r) => manifests(`${base}${r}`)))).flat();
  };
  const podSpec = (o: K8sObject) => o.spec.template.spec;

  it('every object of the base and the example overlay is valid against the Kubernetes API schemas', async () => {
    const objects = await load();
    assert.ok(objects.length >= 15, `${objects.length} objects`);
    for (const o of objects) await validateK8s(o);
    const overlay = parse(await readFile(new URL('deploy/k8s/overlays/example/kustomization.yaml', root), 'utf8'));
    for (const r of overlay.resources as string[])
      if (r.endsWith('.yaml')) for (const o of await manifests(`deploy/k8s/overlays/example/${r}`)) await validateK8s(o);
    for (const { target, patch } of overlay.patches as { target: { kind: string; name: string }; patch: string }[]) {
      const object = objects.find((o) => o.kind === target.kind && o.metadata.name === target.name);
      assert.ok(object, `the overlay patches ${target.kind}/${target.name}, which the base has`);
      await validateK8s(applyReplace(object, parse(patch)));
    }
    // A deliberately broken object is refused: the validation is real.
    const broken = structuredClone(objects.find((o) => o.kind === 'Deployment')!);
    podSpec(broken).containers[0].ports[0].containerPort = 'fifty';
    await assert.rejects(validateK8s(broken), /containerPort must be integer/);
  });

  it('each service runs its compiled entry point with gRPC health probes, requests and limits, a Service, and a disruption budget', async () => {
    const objects = await load();
    const known = new Set(describeSettings().map((s) => s.name));
    for (const [name, port] of [
      ['catalog', 50051],
      ['ingestion', 50052],
      ['transformation', 50053],
      ['commit', 50054],
    ] as const) {
      const workload = objects.find((o) => (o.kind === 'Deployment' || o.kind === 'StatefulSet') && o.metadata.name === name);
      assert.ok(workload, `a workload runs ${name}`);
      const labels = workload.spec.template.metadata.labels;
      assert.deepEqual(workload.spec.selector.matchLabels, labels, `${name}'s selector matches its pods`);
      const [container] = podSpec(workload).containers;
      const entry = container.args.at(-1);
      await access(new URL(entry, root));
      assert.equal(entry, `dist/services/${name}/src/main.js`);
      assert.deepEqual(container.args.slice(0, -1), heapFlags(name, {}), `${name} gets the heap flags sluice up passes`);
      assert.deepEqual(container.ports, [
        { name: 'grpc', containerPort: port },
        { name: 'metrics', containerPort: 9464 },
      ]);
      // The metrics endpoint the pod announces is the one the settings turn on.
      assert.equal(workload.spec.template.metadata.annotations['prometheus.io/port'], '9464');
      for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe'])
        assert.deepEqual(
          container[probe].exec.command,
          ['node', 'dist/cli/src/main.js', 'health', `127.0.0.1:${port}`],
          `${name} ${probe}`,
        );
      assert.ok(container.resources.requests.cpu && container.resources.requests.memory && container.resources.limits.memory);
      for (const { name: variable } of container.env)
        assert.ok(known.has(variable) || ['POD_NAME', 'POD_NAMESPACE'].includes(variable), `${name}: ${variable} is a setting`);
      const service = objects.find((o) => o.kind === 'Service' && o.metadata.name === name);
      assert.deepEqual(service?.spec.selector, labels, `the ${name} Service selects its pods`);
      assert.deepEqual(service?.spec.ports, [{ name: 'grpc', port, targetPort: 'grpc' }]);
      const budget = objects.find((o) => o.kind === 'PodDisruptionBudget' && o.metadata.name === name);
      assert.deepEqual(budget?.spec.selector.matchLabels, labels, `${name} has a disruption budget`);
    }
    for (const name of ['ingestion', 'transformation']) {
      const hpa = objects.find((o) => o.kind === 'HorizontalPodAutoscaler' && o.metadata.name === name);
      assert.deepEqual(hpa?.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name }, `${name} scales horizontally`);
    }
    // Commit replicas forward to each other by stable name: a StatefulSet behind a headless Service.
    const commit = objects.find((o) => o.kind === 'StatefulSet' && o.metadata.name === 'commit')!;
    const peers = objects.find((o) => o.kind === 'Service' && o.metadata.name === commit.spec.serviceName);
    assert.equal(peers?.spec.clusterIP, 'None');
    const advertised = podSpec(commit).containers[0].env.find((e: { name: string }) => e.name === 'COMMIT_ADVERTISED_ADDRESS');
    assert.match(advertised.value, new RegExp(`^\\$\\(POD_NAME\\)\\.${commit.spec.serviceName}\\.`));
  });

  it('settings come from one ConfigMap of known settings, secrets from Secrets, in step with the compose file', async () => {
    const objects = await load();
    const settings = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'sluice-settings')!;
    const known = new Set(describeSettings().map((s) => s.name));
    for (const variable of Object.keys(settings.data)) assert.ok(known.has(variable), `${variable} is a setting Sluice reads`);
    assert.equal(settings.data.SLUICE_TLS, 'mutual');
    const compose = parse(await readFile(new URL('deploy/compose.yaml', root), 'utf8'), { merge: true });
    const k8s = new Set([...Object.keys(settings.data), 'SLUICE_TOKEN', 'DATABASE_URL']);
    for (const variable of Object.keys(compose.services.catalog.environment))
      assert.ok(k8s.has(variable), `compose sets ${variable}, so the Kubernetes manifests do too`);
    for (const workload of objects.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet')) {
      const env = podSpec(workload).containers[0].env as { name: string; valueFrom?: { secretKeyRef?: unknown } }[];
      for (const secret of ['SLUICE_TOKEN', 'DATABASE_URL'])
        assert.ok(env.find((e) => e.name === secret)?.valueFrom?.secretKeyRef, `${workload.metadata.name}: ${secret} comes from a Secret`);
    }
  });
});
