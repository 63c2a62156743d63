// Deployment files checked against the real server: Dockerfiles linted (dockerfile-utils, the
// linter behind VS Code's Docker support), Kubernetes manifests parsed and cross-checked: ports,
// probe paths, env names and values against the config schema, drain budget, selectors.
// (No Docker engine or cluster runs here; these checks are what can run.)

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { validate } from 'dockerfile-utils';
import t from 'tap';
import { parseAllDocuments } from 'yaml';
import { buildApp } from '../src/app.js';
import { ConfigSchema, describeConfig, loadConfig, resolveConfig } from '../src/config.js';
import { PACKAGE_ROOT } from '../src/paths.js';

const envNames = new Set(describeConfig().map((r) => r.env));
const defaults = resolveConfig({});
const app = await buildApp(resolveConfig({ logLevel: 'silent' }), { logger: false });
await app.ready();
t.teardown(() => app.close());

for (const file of ['Dockerfile', 'Dockerfile.gpu']) {
  t.test(file, async (t) => {
    const text = readFileSync(join(PACKAGE_ROOT, file), 'utf8');
    const problems = validate(text).filter((d) => d.severity === 1 || d.severity === 2);
    t.same(problems.map((p) => `${p.range.start.line + 1}: ${p.message}`), [], 'no lint errors or warnings');
    const runtime = text.slice(text.lastIndexOf('\nFROM '));
    t.match(runtime, /\nUSER (node|albef)\n/, 'runs as a non-root user');
    t.match(runtime, /HEALTHCHECK .*"healthcheck"/, 'HEALTHCHECK probes /readyz via `albef-embed healthcheck`');
    t.match(runtime, /ENTRYPOINT \["node", "dist\/src\/cli.js"\]/, 'exec form: node is PID 1 and gets the signals');
    const port = runtime.match(/ALBEF_PORT=(\d+)/)?.[1];
    t.match(runtime, new RegExp(`EXPOSE ${port}\\b`), 'EXPOSE matches ALBEF_PORT');
    const env = Object.fromEntries([...runtime.matchAll(/(ALBEF_[A-Z_]+)=(\S+)/g)].map((m) => [m[1]!, m[2]!.replace(/\\$/, '')]));
    for (const name of Object.keys(env)) t.ok(envNames.has(name), `${name} is a real setting`);
    t.doesNotThrow(() => loadConfig([], env), 'the image environment is a valid configuration');
  });
}

t.test('Kubernetes base', async (t) => {
  const dir = join(PACKAGE_ROOT, 'deploy', 'kubernetes');
  const docs = new Map<string, Record<string, any>>();
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.yaml'))) {
    for (const d of parseAllDocuments(readFileSync(join(dir, f), 'utf8'))) {
      t.same(d.errors, [], `${f} parses`);
      const o = d.toJS() as Record<string, any>;
      docs.set(o.kind as string, o);
    }
  }
  const kustomization = docs.get('Kustomization')!;
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
  t.same([...kustomization.resources].sort(), files.sort(), 'kustomization lists every manifest');

  const deploy = docs.get('Deployment')!;
  const pod = deploy.spec.template;
  const c = pod.spec.containers[0];
  const env = Object.fromEntries(c.env.map((e: { name: string; value: string }) => [e.name, e.value]));
  for (const name of Object.keys(env)) t.ok(envNames.has(name), `${name} is a real setting`);
  const config = loadConfig([], env);
  const httpPort = c.ports.find((p: { name: string }) => p.name === 'http').containerPort;
  t.equal(httpPort, config.port, 'containerPort is the port the server listens on');
  t.equal(config.host, '0.0.0.0', 'listens on all interfaces in the pod');
  for (const [probe, path] of [['readinessProbe', '/readyz'], ['livenessProbe', '/healthz'], ['startupProbe', '/healthz']] as const) {
    t.equal(c[probe].httpGet.path, path, `${probe} on ${path}`);
    t.equal(c[probe].httpGet.port, 'http');
    t.ok(app.hasRoute({ method: 'GET', url: path }), `the server has GET ${path}`);
  }
  t.ok(c.lifecycle.preStop, 'preStop drain');
  t.ok(pod.spec.terminationGracePeriodSeconds >= config.requestTimeoutMs / 1000 + 5, 'grace period covers preStop + the request deadline');
  t.ok(c.resources.requests.cpu && c.resources.requests.memory && c.resources.limits.memory, 'resources set');
  t.equal(pod.spec.initContainers[0].args[0], 'fetch', 'init container fetches the model');
  t.ok(pod.spec.volumes.some((v: { persistentVolumeClaim?: { claimName: string } }) => v.persistentVolumeClaim?.claimName === docs.get('PersistentVolumeClaim')!.metadata.name), 'model volume from the PVC');

  const labels = pod.metadata.labels;
  const matches = (sel: Record<string, string>) => Object.entries(sel).every(([k, v]) => labels[k] === v);
  t.ok(matches(deploy.spec.selector.matchLabels), 'Deployment selector matches its pods');
  const svc = docs.get('Service')!;
  t.ok(matches(svc.spec.selector), 'Service selects the pods');
  t.equal(svc.spec.ports[0].targetPort, 'http', 'Service targets the http port');
  t.ok(matches(docs.get('PodDisruptionBudget')!.spec.selector.matchLabels), 'PDB selects the pods');
  const hpa = docs.get('HorizontalPodAutoscaler')!;
  t.match(hpa.spec.scaleTargetRef, { kind: 'Deployment', name: deploy.metadata.name });
  t.equal(hpa.spec.metrics[0].resource.name, 'cpu');
  t.ok(Object.keys(ConfigSchema.properties).length > 0 && defaults.port === 8080);
});

t.test('GPU image and Kubernetes GPU overlay', async (t) => {
  const docker = readFileSync(join(PACKAGE_ROOT, 'Dockerfile.gpu'), 'utf8');
  const runtime = docker.slice(docker.lastIndexOf('\nFROM '));
  t.match(runtime, /NVIDIA_DRIVER_CAPABILITIES=\S*graphics/, 'the image asks for the graphics capability (Vulkan ICD)');
  t.match(docker, /apt-get install [^\n]*libvulkan1/, 'the Vulkan loader is installed');

  const dir = join(PACKAGE_ROOT, 'deploy', 'kubernetes', 'gpu');
  const read = (f: string) => {
    const docs = parseAllDocuments(readFileSync(join(dir, f), 'utf8'));
    t.same(docs.flatMap((d) => d.errors), [], `${f} parses`);
    return docs[0]!.toJS() as Record<string, any>;
  };
  const k = read('kustomization.yaml');
  t.same(k.resources, ['..'], 'built on the base');
  t.match(k.images, [{ name: 'albef-embed', newTag: 'gpu' }]);
  const patch = read(k.patches[0].path);
  const baseDeploy = parseAllDocuments(readFileSync(join(PACKAGE_ROOT, 'deploy', 'kubernetes', 'deployment.yaml'), 'utf8'))[0]!.toJS() as Record<string, any>;
  t.equal(patch.kind, 'Deployment');
  t.equal(patch.metadata.name, baseDeploy.metadata.name, 'patches the base Deployment');
  const base = baseDeploy.spec.template.spec.containers[0];
  const c = patch.spec.template.spec.containers[0];
  t.equal(c.name, base.name, 'and its container');
  t.equal(c.resources.limits['nvidia.com/gpu'], 1, 'one GPU per pod');
  const env: Record<string, string> = Object.fromEntries([...base.env, ...c.env].map((e: { name: string; value: string }) => [e.name, e.value]));
  for (const name of Object.keys(env).filter((n) => n.startsWith('ALBEF_'))) t.ok(envNames.has(name), `${name} is a real setting`);
  t.match(loadConfig([], env), { provider: 'webgpu' }, 'merged environment: a valid configuration naming webgpu (no CPU fallback)');
  t.match(env.NVIDIA_DRIVER_CAPABILITIES, /graphics/);
});
