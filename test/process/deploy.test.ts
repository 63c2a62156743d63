// Deployment files checked against the real server: Dockerfiles linted (dockerfile-utils, the
// linter behind VS Code's Docker support), Kubernetes manifests parsed and cross-checked: ports,
// probe paths, env names and values against the config schema, drain budget, selectors; the
// indexing Job's arguments parsed by the real command line, its shard count against its completions.
// (No Docker engine or cluster runs here; these checks are what can run.)

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { validate } from 'dockerfile-utils';
import ort from 'onnxruntime-node';
import t, { type Test } from 'tap';
import { parseAllDocuments } from 'yaml';
import { buildApp } from '../../src/http/app.js';
import { indexOptions, parseEmbedArgs } from '../../src/cli/embed-command.js';
import { ConfigSchema, describeConfig, loadConfig, resolveConfig } from '../../src/service/config.js';
import { PACKAGE_ROOT } from '../../src/core/paths.js';

const envNames = new Set(describeConfig().map((r) => r.env));
const defaults = resolveConfig({});
const app = await buildApp(resolveConfig({ logLevel: 'silent' }), { logger: false });
await app.ready();
t.teardown(() => app.close());

for (const file of ['Dockerfile', 'Dockerfile.gpu']) {
  t.test(file, async (t) => {
    const text = readFileSync(join(PACKAGE_ROOT, file), 'utf8');
    const problems = validate(text).filter((d) => d.severity === 1 || d.severity === 2);
    t.same(
      problems.map((p) => `${p.range.start.line + 1}: ${typeof p.message === 'string' ? p.message : p.message.value}`),
      [],
      'no lint errors or warnings',
    );
    const runtime = text.slice(text.lastIndexOf('\nFROM '));
    t.match(runtime, /\nUSER (node|albef)\n/, 'runs as a non-root user');
    t.match(runtime, /HEALTHCHECK .*"healthcheck"/, 'HEALTHCHECK probes /readyz via `albef-embed healthcheck`');
    t.match(runtime, /ENTRYPOINT \["node", "dist\/cli\/main.js"\]/, 'exec form: node is PID 1 and gets the signals');
    const port = runtime.match(/ALBEF_PORT=(\d+)/)?.[1];
    t.match(runtime, new RegExp(`EXPOSE ${port}\\b`), 'EXPOSE matches ALBEF_PORT');
    const env = Object.fromEntries(
      [...runtime.matchAll(/(ALBEF_[A-Z_]+)=(\S+)/g)].map((m) => [m[1]!, m[2]!.replace(/\\$/, '')]),
    );
    for (const name of Object.keys(env)) t.ok(envNames.has(name), `${name} is a real setting`);
    t.doesNotThrow(() => loadConfig([], env), 'the image environment is a valid configuration');
  });
}

t.test('install policy: every dependency install script is decided in allowScripts, none needs to run', async (t) => {
  const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as {
    allowScripts: Record<string, boolean>;
    scripts: Record<string, string>;
  };
  t.notOk(existsSync(join(PACKAGE_ROOT, '.npmrc')), 'no project .npmrc (npm warns on keys it does not know)');
  const withScripts: string[] = [];
  const visit = (dir: string): void => {
    if (!existsSync(dir)) return;
    for (const name of readdirSync(dir)) {
      if (name.startsWith('.')) continue;
      if (name.startsWith('@')) {
        visit(join(dir, name));
        continue;
      }
      const file = join(dir, name, 'package.json');
      if (!existsSync(file)) continue;
      const { name: pkgName, scripts = {} } = JSON.parse(readFileSync(file, 'utf8')) as {
        name: string;
        scripts?: Record<string, string>;
      };
      if (scripts.preinstall || scripts.install || scripts.postinstall) withScripts.push(pkgName);
      visit(join(dir, name, 'node_modules'));
    }
  };
  visit(join(PACKAGE_ROOT, 'node_modules'));
  t.same(
    [...new Set(withScripts)].sort(),
    Object.keys(pkg.allowScripts).sort(),
    'allowScripts names exactly the packages with install scripts',
  );
  t.equal(pkg.allowScripts['onnxruntime-node'], false, "onnxruntime-node's CUDA download is denied");
  t.ok(
    ort.listSupportedBackends().some((b) => b.name === 'cpu' && b.bundled),
    'the CPU backend ships in the package, no install step',
  );
  t.match(
    pkg.scripts['onnxruntime:cuda12'],
    /ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules\/onnxruntime-node\/script\/install\.js/,
  );
  t.match(
    readFileSync(join(PACKAGE_ROOT, 'Dockerfile.gpu'), 'utf8'),
    /npm run onnxruntime:cuda12/,
    'the GPU image installs the CUDA binaries on purpose',
  );
});

const K8S = join(PACKAGE_ROOT, 'deploy', 'kubernetes');
/** The indexing Job runs once, on demand: it stays out of the Kustomize base. */
const STANDALONE = ['index-job.yaml'];

/** The manifests of `files`, by kind. */
function manifests(t: Test, files: string[]): Map<string, Record<string, any>> {
  const docs = new Map<string, Record<string, any>>();
  for (const f of files) {
    for (const d of parseAllDocuments(readFileSync(join(K8S, f), 'utf8'))) {
      t.same(d.errors, [], `${f} parses`);
      const o = d.toJS() as Record<string, any>;
      docs.set(o.kind as string, o);
    }
  }
  return docs;
}

t.test('Kubernetes base', async (t) => {
  const files = readdirSync(K8S).filter(
    (f) => f.endsWith('.yaml') && f !== 'kustomization.yaml' && !STANDALONE.includes(f),
  );
  const docs = manifests(t, [...files, 'kustomization.yaml']);
  const kustomization = docs.get('Kustomization')!;
  t.same([...kustomization.resources].sort(), files.sort(), 'kustomization lists every manifest of the service');

  const deploy = docs.get('Deployment')!;
  const pod = deploy.spec.template;
  const c = pod.spec.containers[0];
  const env = Object.fromEntries(c.env.map((e: { name: string; value: string }) => [e.name, e.value]));
  for (const name of Object.keys(env)) t.ok(envNames.has(name), `${name} is a real setting`);
  const config = loadConfig([], env);
  const httpPort = c.ports.find((p: { name: string }) => p.name === 'http').containerPort;
  t.equal(httpPort, config.port, 'containerPort is the port the server listens on');
  t.equal(config.host, '0.0.0.0', 'listens on all interfaces in the pod');
  for (const [probe, path] of [
    ['readinessProbe', '/readyz'],
    ['livenessProbe', '/healthz'],
    ['startupProbe', '/healthz'],
  ] as const) {
    t.equal(c[probe].httpGet.path, path, `${probe} on ${path}`);
    t.equal(c[probe].httpGet.port, 'http');
    t.ok(app.hasRoute({ method: 'GET', url: path }), `the server has GET ${path}`);
  }
  t.ok(c.lifecycle.preStop, 'preStop drain');
  t.ok(
    pod.spec.terminationGracePeriodSeconds >= config.requestTimeoutMs / 1000 + 5,
    'grace period covers preStop + the request deadline',
  );
  t.ok(c.resources.requests.cpu && c.resources.requests.memory && c.resources.limits.memory, 'resources set');
  t.equal(pod.spec.initContainers[0].args[0], 'fetch', 'init container fetches the model');
  t.ok(
    pod.spec.volumes.some(
      (v: { persistentVolumeClaim?: { claimName: string } }) =>
        v.persistentVolumeClaim?.claimName === docs.get('PersistentVolumeClaim')!.metadata.name,
    ),
    'model volume from the PVC',
  );

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
    t.same(
      docs.flatMap((d) => d.errors),
      [],
      `${f} parses`,
    );
    return docs[0]!.toJS() as Record<string, any>;
  };
  const k = read('kustomization.yaml');
  t.same(k.resources, ['..'], 'built on the base');
  t.match(k.images, [{ name: 'albef-embed', newTag: 'gpu' }]);
  const patch = read(k.patches[0].path);
  const baseDeploy = parseAllDocuments(
    readFileSync(join(PACKAGE_ROOT, 'deploy', 'kubernetes', 'deployment.yaml'), 'utf8'),
  )[0]!.toJS() as Record<string, any>;
  t.equal(patch.kind, 'Deployment');
  t.equal(patch.metadata.name, baseDeploy.metadata.name, 'patches the base Deployment');
  const base = baseDeploy.spec.template.spec.containers[0];
  const c = patch.spec.template.spec.containers[0];
  t.equal(c.name, base.name, 'and its container');
  t.equal(c.resources.limits['nvidia.com/gpu'], 1, 'one GPU per pod');
  const env: Record<string, string> = Object.fromEntries(
    [...base.env, ...c.env].map((e: { name: string; value: string }) => [e.name, e.value]),
  );
  for (const name of Object.keys(env).filter((n) => n.startsWith('ALBEF_')))
    t.ok(envNames.has(name), `${name} is a real setting`);
  t.match(
    loadConfig([], env),
    { provider: 'webgpu' },
    'merged environment: a valid configuration naming webgpu (no CPU fallback)',
  );
  t.match(env.NVIDIA_DRIVER_CAPABILITIES, /graphics/);
});

t.test('Kubernetes indexing Job', async (t) => {
  const base = manifests(t, ['deployment.yaml', 'pvc.yaml']);
  const docs = manifests(t, ['index-job.yaml']);
  const job = docs.get('Job')!;
  const spec = job.spec;
  t.equal(spec.completionMode, 'Indexed', 'an Indexed Job: each pod gets JOB_COMPLETION_INDEX');
  t.equal(spec.parallelism, spec.completions, 'completions = parallelism = N');
  t.equal(spec.template.spec.restartPolicy, 'Never', 'required by backoffLimitPerIndex');
  const pod = spec.template.spec;
  const deployment = base.get('Deployment')!.spec.template.spec;
  t.same(pod.initContainers, deployment.initContainers, "the Deployment's init container, as it is");
  t.same(pod.securityContext, deployment.securityContext, "the Deployment's pod security context");
  const claims = Object.fromEntries(
    pod.volumes.map((v: { name: string; persistentVolumeClaim?: { claimName: string } }) => [
      v.name,
      v.persistentVolumeClaim?.claimName,
    ]),
  );
  t.equal(claims.models, base.get('PersistentVolumeClaim')!.metadata.name, "the model from the service's PVC");

  const c = pod.containers[0];
  t.equal(c.args[0], 'embed');
  for (const index of [0, spec.completions - 1]) {
    const o = indexOptions(parseEmbedArgs(c.args.slice(1)), { JOB_COMPLETION_INDEX: String(index) });
    t.same(
      o.shard,
      { index, count: spec.completions },
      `pod ${index} embeds shard ${index} of ${spec.completions}: --shards matches completions`,
    );
    t.equal(o.out, `/output/part-${index}.jsonl`, 'its own part file');
  }
  const o = indexOptions(parseEmbedArgs(c.args.slice(1)), { JOB_COMPLETION_INDEX: '0' });
  const mount = (path: string) => c.volumeMounts.find((m: { mountPath: string }) => path.startsWith(m.mountPath));
  t.equal(mount(o.model).name, 'models', '--model is on the models volume');
  t.equal(mount(o.images![0]!).name, 'images', '--images is on the images volume');
  t.equal(mount(o.out).name, 'output', '--out is on the output volume');
  t.notOk(mount(o.out).readOnly, 'the output volume is writable');
  const output = docs.get('PersistentVolumeClaim')!;
  t.equal(claims.output, output.metadata.name, 'the output claim is defined here');
  t.same(output.spec.accessModes, ['ReadWriteMany'], 'written by pods on several nodes');
  t.ok(
    c.resources.limits.cpu && c.resources.requests.memory && c.resources.limits.memory,
    'resources set; the CPU limit sizes the threads',
  );
  t.match(
    readFileSync(join(K8S, 'index-job.yaml'), 'utf8'),
    /albef-embed merge --out \S+ \/output\/part-\*\.jsonl/,
    'the merge step is written down',
  );
});
