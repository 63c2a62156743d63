// Deployment files checked against the real server: Dockerfiles linted (dockerfile-utils, the
// linter behind VS Code's Docker support), Kubernetes manifests parsed and cross-checked: ports,
// probe paths, env names and values against the config schema, drain budget, selectors, volumes and
// their claims; the store (ALBEF_STORE: a LanceDB directory on a ReadWriteMany claim, or a Secret's
// postgres:// URL in the postgres overlay); the indexing Job's arguments parsed by the real `index`
// command line, its shard count against its completions, its store and image paths against the
// Deployment's. Where kubectl is installed, kustomize renders the base and the overlays.
// (No Docker engine or cluster runs here; these checks are what can run.)

import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { validate } from 'dockerfile-utils';
import ort from 'onnxruntime-node';
import t, { type Test } from 'tap';
import { parseAllDocuments } from 'yaml';
import { buildApp } from '../../src/http/app.js';
import { indexOptions, parseEmbedArgs } from '../../src/cli/embed-command.js';
import { parseIndexArgs } from '../../src/cli/index-command.js';
import { isPostgresUrl } from '../../src/retrieval/open-store.js';
import { ConfigSchema, describeConfig, loadConfig, resolveConfig } from '../../src/service/config.js';
import { PACKAGE_ROOT } from '../../src/core/paths.js';

const envNames = new Set(describeConfig().map((r) => r.env));
const defaults = resolveConfig({});
const app = await buildApp(resolveConfig({ logLevel: 'silent' }), { logger: false });
await app.ready();
t.teardown(() => app.close());

// The images delete LanceDB's optional transformers.js embedder (333 MB): a collection is created,
// filled and searched, and none of its files (nor ONNX Runtime for the web) was ever loaded.
t.test('LanceDB works without its optional transformers.js embedder, which the images delete', async (t) => {
  const script = `
    const { mkdtempSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const { createRequire } = await import('node:module');
    const { openStore } = await import(${JSON.stringify(join(PACKAGE_ROOT, 'src', 'retrieval', 'open-store.ts'))});
    const store = await openStore(join(mkdtempSync(join(tmpdir(), 'albef-lance-')), 's'));
    await store.create({ name: 'c', model: 'm', modelSha256: 'a'.repeat(64), modality: 'text', dim: 4 });
    await store.add('c', [{ id: 'x', source: 'x', vector: new Float32Array([1, 0, 0, 0]) }]);
    const hits = await store.search('c', new Float32Array([1, 0, 0, 0]), { k: 1 });
    await store.close();
    const loaded = Object.keys(createRequire(import.meta.url).cache);
    console.log(JSON.stringify({ hits: hits.map((h) => h.id), lance: loaded.some((f) => f.includes('@lancedb')),
      unwanted: loaded.filter((f) => /@huggingface|onnxruntime-web/.test(f)) }));`;
  const r = spawnSync(process.execPath, ['--import=./kit/ts-loader.mjs', '--input-type=module', '-e', script], {
    cwd: PACKAGE_ROOT,
    encoding: 'utf8',
  });
  t.equal(r.status, 0, r.stderr);
  t.same(JSON.parse(r.stdout.trim().split('\n').at(-1)!), { hits: ['x'], lance: true, unwanted: [] });
  for (const file of ['Dockerfile', 'Dockerfile.gpu'])
    t.match(
      readFileSync(join(PACKAGE_ROOT, file), 'utf8'),
      /npm prune --omit=dev[^\n]*\\\n && rm -rf node_modules\/@huggingface node_modules\/onnxruntime-web\n/,
      `${file} deletes it after pruning`,
    );
});

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
    // The collections directory: a volume, owned by the image's user (a fresh named volume copies that).
    const store = env.ALBEF_STORE!;
    t.match(store, /^\//, 'ALBEF_STORE: an absolute directory in the image');
    const volumes = JSON.parse(/\nVOLUME (\[.*\])/.exec(runtime)?.[1] ?? '[]') as string[];
    t.ok(volumes.includes(store) && volumes.includes(env.ALBEF_MODELS!), 'models and collections are volumes');
    const user = /\nUSER (\S+)/.exec(runtime)![1]!;
    t.match(
      runtime,
      new RegExp(`mkdir [^\\n]*${store}[^\\n]*&& chown ${user}(:${user})? [^\\n]*${store}`),
      `${store} owned by ${user}`,
    );
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
/** What an operator's Secret would hold (the overlay takes ALBEF_STORE from one). */
const EXAMPLE_PG_URL = 'postgres://albef:secret@db.example:5432/albef';

type Manifest = Record<string, any>;
interface EnvEntry {
  name: string;
  value?: string | null;
  valueFrom?: { secretKeyRef?: { name: string; key: string } };
}
interface Mount {
  name: string;
  mountPath: string;
  readOnly?: boolean;
}

/** The manifests of `files` (paths under deploy/kubernetes), every document. */
function manifests(t: Test, files: string[]): Manifest[] {
  return files.flatMap((f) =>
    parseAllDocuments(readFileSync(join(K8S, f), 'utf8')).map((d) => {
      t.same(d.errors, [], `${f} parses`);
      return d.toJS() as Manifest;
    }),
  );
}
const find = (docs: Manifest[], kind: string, name?: string): Manifest | undefined =>
  docs.find((d) => d.kind === kind && (name === undefined || d.metadata.name === name));
/** A container's plain env values (what loadConfig reads), and its entries by name. */
const envValues = (c: Manifest): Record<string, string> =>
  Object.fromEntries(
    (c.env as EnvEntry[]).filter((e) => typeof e.value === 'string').map((e) => [e.name, e.value as string]),
  );
const envEntry = (c: Manifest, name: string): EnvEntry | undefined =>
  (c.env as EnvEntry[]).find((e) => e.name === name);
/** The mount a path is on (the deepest mountPath above it). */
const mountOf = (c: Manifest, path: string): Mount | undefined =>
  (c.volumeMounts as Mount[])
    .filter((m) => path === m.mountPath || path.startsWith(`${m.mountPath.replace(/\/$/, '')}/`))
    .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
const claimOf = (pod: Manifest, volume: string | undefined): string | undefined =>
  (pod.volumes as { name: string; persistentVolumeClaim?: { claimName: string } }[]).find((v) => v.name === volume)
    ?.persistentVolumeClaim?.claimName;

const baseFiles = readdirSync(join(K8S, 'base')).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
const base = manifests(
  t,
  baseFiles.map((f) => `base/${f}`),
);
const deploy = find(base, 'Deployment')!;
const pod = deploy.spec.template.spec;
const server = pod.containers[0];
const serverConfig = loadConfig([], envValues(server));
const claims = new Set(base.filter((d) => d.kind === 'PersistentVolumeClaim').map((d) => d.metadata.name as string));

t.test('Kubernetes base', async (t) => {
  const kustomization = manifests(t, ['base/kustomization.yaml'])[0]!;
  t.same([...kustomization.resources].sort(), baseFiles.sort(), 'kustomization lists every manifest of the service');
  const root = manifests(t, ['kustomization.yaml'])[0]!;
  t.same(root.resources, ['base'], 'deploy/kubernetes applies the base as it is');
  t.same(
    readdirSync(K8S).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml'),
    STANDALONE,
    'beside the base and the overlays, only the Job',
  );

  const c = server;
  for (const name of Object.keys(envValues(c))) t.ok(envNames.has(name), `${name} is a real setting`);
  const config = serverConfig;
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
    pod.terminationGracePeriodSeconds >= config.requestTimeoutMs / 1000 + 5,
    'grace period covers preStop + the request deadline',
  );
  t.ok(c.resources.requests.cpu && c.resources.requests.memory && c.resources.limits.memory, 'resources set');
  const init = pod.initContainers[0];
  t.equal(init.args[0], 'fetch', 'init container fetches the model');

  // Volumes: every claim a volume names is defined in the base.
  for (const v of pod.volumes as { name: string; persistentVolumeClaim?: { claimName: string } }[])
    if (v.persistentVolumeClaim)
      t.ok(claims.has(v.persistentVolumeClaim.claimName), `${v.name}: its claim is in the base`);
  const modelOut = init.args[init.args.indexOf('--out') + 1] as string;
  t.equal(
    claimOf(pod, mountOf(c, config.models[0]!)?.name),
    claimOf(pod, mountOf(init, modelOut)?.name),
    'the server reads the models from the claim the init container fills',
  );
  t.ok(mountOf(c, config.models[0]!)?.readOnly, 'read-only there');

  // The collections: ALBEF_STORE is a LanceDB directory on a ReadWriteMany claim (the Job writes it).
  t.equal(config.store, '/collections', 'ALBEF_STORE: the collections directory');
  t.notOk(isPostgresUrl(config.store), 'a LanceDB directory by default');
  const store = mountOf(c, config.store);
  t.equal(store?.mountPath, config.store, 'a volume mounted at ALBEF_STORE');
  t.ok(store?.readOnly, 'read-only: serving reads the store, the Job writes it');
  const storeClaim = find(base, 'PersistentVolumeClaim', claimOf(pod, store?.name))!;
  t.ok(storeClaim, 'on a claim of the base');
  t.same(storeClaim.spec.accessModes, ['ReadWriteMany'], 'ReadWriteMany: the Job’s pods write from several nodes');
  const images = (c.volumeMounts as Mount[]).find((m) => m.name === 'images')!;
  t.ok(images?.readOnly && claims.has(claimOf(pod, 'images')!), 'the indexed images, read-only, from a claim');

  const labels = deploy.spec.template.metadata.labels;
  const matches = (sel: Record<string, string>) => Object.entries(sel).every(([k, v]) => labels[k] === v);
  t.ok(matches(deploy.spec.selector.matchLabels), 'Deployment selector matches its pods');
  const svc = find(base, 'Service')!;
  t.ok(matches(svc.spec.selector), 'Service selects the pods');
  t.equal(svc.spec.ports[0].targetPort, 'http', 'Service targets the http port');
  t.ok(matches(find(base, 'PodDisruptionBudget')!.spec.selector.matchLabels), 'PDB selects the pods');
  const hpa = find(base, 'HorizontalPodAutoscaler')!;
  t.match(hpa.spec.scaleTargetRef, { kind: 'Deployment', name: deploy.metadata.name });
  t.equal(hpa.spec.metrics[0].resource.name, 'cpu');
  t.ok(Object.keys(ConfigSchema.properties).length > 0 && defaults.port === 8080);
});

/** An overlay's kustomization and its first patch of `kind`. */
function overlay(t: Test, dir: string) {
  const [k] = manifests(t, [`${dir}/kustomization.yaml`]);
  t.same(
    k!.resources,
    ['../base'],
    `${dir}: built on the base (beside it: kustomize refuses an overlay inside its base)`,
  );
  const patches = manifests(
    t,
    (k!.patches as { path: string }[]).map((p) => `${dir}/${p.path}`),
  );
  return { k: k!, patches };
}

t.test('GPU image and Kubernetes GPU overlay', async (t) => {
  const docker = readFileSync(join(PACKAGE_ROOT, 'Dockerfile.gpu'), 'utf8');
  const runtime = docker.slice(docker.lastIndexOf('\nFROM '));
  t.match(runtime, /NVIDIA_DRIVER_CAPABILITIES=\S*graphics/, 'the image asks for the graphics capability (Vulkan ICD)');
  t.match(docker, /apt-get install [^\n]*libvulkan1/, 'the Vulkan loader is installed');

  const { k, patches } = overlay(t, 'gpu');
  t.match(k.images, [{ name: 'albef-embed', newTag: 'gpu' }]);
  const patch = patches[0]!;
  t.equal(patch.kind, 'Deployment');
  t.equal(patch.metadata.name, deploy.metadata.name, 'patches the base Deployment');
  const c = patch.spec.template.spec.containers[0];
  t.equal(c.name, server.name, 'and its container');
  t.equal(c.resources.limits['nvidia.com/gpu'], 1, 'one GPU per pod');
  const env: Record<string, string> = { ...envValues(server), ...envValues(c) };
  for (const name of Object.keys(env).filter((n) => n.startsWith('ALBEF_')))
    t.ok(envNames.has(name), `${name} is a real setting`);
  t.match(
    loadConfig([], env),
    { provider: 'webgpu' },
    'merged environment: a valid configuration naming webgpu (no CPU fallback)',
  );
  t.match(env.NVIDIA_DRIVER_CAPABILITIES, /graphics/);
});

t.test('Kubernetes PostgreSQL overlay: ALBEF_STORE from a Secret, no collections volume', async (t) => {
  const { patches } = overlay(t, 'postgres');
  const patch = find(patches, 'Deployment')!;
  t.equal(patch.metadata.name, deploy.metadata.name, 'patches the base Deployment');
  const c = patch.spec.template.spec.containers[0];
  t.equal(c.name, server.name, 'and its container');
  const store = envEntry(c, 'ALBEF_STORE')!;
  t.ok(envNames.has(store.name), 'ALBEF_STORE is a real setting');
  t.equal(store.value, null, "the base's value removed (strategic merge: null deletes it)");
  t.match(store.valueFrom, { secretKeyRef: { name: /\S/, key: /\S/ } }, 'the URL from a Secret');
  // Removed: the base's volume at ALBEF_STORE, its mount, its claim.
  const mount = mountOf(server, serverConfig.store)!;
  t.same(c.volumeMounts, [{ mountPath: mount.mountPath, $patch: 'delete' }], 'the mount at ALBEF_STORE deleted');
  t.same(patch.spec.template.spec.volumes, [{ name: mount.name, $patch: 'delete' }], 'and its volume');
  const pvc = find(patches, 'PersistentVolumeClaim')!;
  t.match(pvc, { metadata: { name: claimOf(pod, mount.name) }, $patch: 'delete' }, 'and its claim');
  const left = (server.volumeMounts as Mount[]).filter((m) => m.name !== mount.name);
  t.ok(
    left.every((m) => (pod.volumes as { name: string }[]).some((v) => v.name === m.name)),
    'every other mount keeps its volume',
  );
  // The Secret's URL in the place of the directory: a valid configuration, a PostgreSQL store.
  const config = loadConfig([], { ...envValues(server), ALBEF_STORE: EXAMPLE_PG_URL });
  t.ok(isPostgresUrl(config.store), 'a postgres:// URL is taken as PostgreSQL');
});

// kustomize itself, where kubectl is installed (it renders offline); elsewhere the checks above stand.
const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
t.test(
  'kubectl kustomize renders the base and both overlays',
  { skip: kubectl.status !== 0 && 'no kubectl here' },
  async (t) => {
    const render = (dir: string): Manifest[] => {
      const out = spawnSync('kubectl', ['kustomize', join(K8S, dir)], { encoding: 'utf8' });
      t.equal(out.status, 0, `kubectl kustomize ${dir || '.'} ${out.stderr.trim()}`);
      return parseAllDocuments(out.stdout).map((d) => d.toJS() as Manifest);
    };
    const names = (docs: Manifest[]) => docs.map((d) => `${d.kind}/${d.metadata.name}`).sort();
    const rendered = render('');
    t.same(names(rendered), names(base), 'deploy/kubernetes: the base');
    const gpu = find(render('gpu'), 'Deployment')!.spec.template.spec.containers[0];
    t.equal(gpu.resources.limits['nvidia.com/gpu'], 1);
    t.equal(envEntry(gpu, 'ALBEF_PROVIDER')?.value, 'webgpu');
    t.equal(envEntry(gpu, 'ALBEF_STORE')?.value, serverConfig.store, 'the GPU pods serve the same store');
    const pg = render('postgres');
    t.same(
      names(pg),
      names(base).filter(
        (n) => n !== `PersistentVolumeClaim/${claimOf(pod, mountOf(server, serverConfig.store)!.name)}`,
      ),
      'the base less the collections claim',
    );
    const pgPod = find(pg, 'Deployment')!.spec.template.spec;
    const pgServer = pgPod.containers[0];
    t.same(
      envEntry(pgServer, 'ALBEF_STORE'),
      { name: 'ALBEF_STORE', valueFrom: { secretKeyRef: { name: 'albef-store', key: 'url' } } },
      'ALBEF_STORE from the Secret alone',
    );
    t.notOk(mountOf(pgServer, serverConfig.store), 'nothing mounted at /collections');
    t.notOk(
      (pgPod.volumes as { name: string }[]).some((v) => v.name === mountOf(server, serverConfig.store)!.name),
      'no collections volume',
    );
  },
);

t.test('Kubernetes indexing Job: albef-embed index --shards N into the store the Deployment serves', async (t) => {
  const docs = manifests(t, ['index-job.yaml']);
  t.same(
    docs.map((d) => d.kind),
    ['Job'],
    'a Job alone: the claims are the base’s',
  );
  const job = docs[0]!;
  const spec = job.spec;
  t.equal(spec.completionMode, 'Indexed', 'an Indexed Job: each pod gets JOB_COMPLETION_INDEX');
  t.equal(spec.parallelism, spec.completions, 'completions = parallelism = N');
  t.equal(spec.template.spec.restartPolicy, 'Never', 'required by backoffLimitPerIndex');
  const jobPod = spec.template.spec;
  t.same(jobPod.initContainers, pod.initContainers, "the Deployment's init container, as it is");
  t.same(jobPod.securityContext, pod.securityContext, "the Deployment's pod security context");
  for (const v of jobPod.volumes as { name: string; persistentVolumeClaim?: { claimName: string } }[])
    if (v.persistentVolumeClaim) t.ok(claims.has(v.persistentVolumeClaim.claimName), `${v.name}: a claim of the base`);

  const c = jobPod.containers[0];
  t.equal(c.args[0], 'index', 'albef-embed index, straight into the store');
  const env = envValues(c);
  for (const name of Object.keys(env).filter((n) => n.startsWith('ALBEF_')))
    t.ok(envNames.has(name), `${name} is a real setting`);
  t.same(envEntry(c, 'ALBEF_STORE'), envEntry(server, 'ALBEF_STORE'), "ALBEF_STORE: the Deployment's own entry");
  for (const index of [0, spec.completions - 1]) {
    const o = parseIndexArgs(c.args.slice(1), { ...env, JOB_COMPLETION_INDEX: String(index) });
    t.same(
      o.shard,
      { index, count: spec.completions },
      `pod ${index} indexes shard ${index} of ${spec.completions}: --shards matches completions`,
    );
    t.equal(o.store, serverConfig.store, 'into the store the Deployment serves');
  }
  const o = parseIndexArgs(c.args.slice(1), { ...env, JOB_COMPLETION_INDEX: '0' });
  t.ok(o.collection && o.images?.length === 1, 'a collection, from one folder of images');
  t.equal(
    claimOf(jobPod, mountOf(c, o.model)?.name),
    claimOf(pod, mountOf(server, serverConfig.models[0]!)?.name),
    "--model: on the Deployment's model claim",
  );
  const store = mountOf(c, o.store)!;
  t.equal(store.mountPath, o.store, 'a volume mounted at ALBEF_STORE');
  t.notOk(store.readOnly, 'writable');
  t.equal(
    claimOf(jobPod, store.name),
    claimOf(pod, mountOf(server, serverConfig.store)?.name),
    "on the Deployment's collections claim",
  );
  // The collection records the images' folder as its root: the replicas must find the files there.
  const images = mountOf(c, o.images![0]!)!;
  t.ok(images.readOnly, 'the images read-only');
  const served = mountOf(server, o.images![0]!);
  t.equal(served?.mountPath, images.mountPath, 'the Deployment mounts them at the same path (the root it records)');
  t.equal(claimOf(pod, served?.name), claimOf(jobPod, images.name), 'from the same claim');
  t.ok(
    c.resources.limits.cpu && c.resources.requests.memory && c.resources.limits.memory,
    'resources set; the CPU limit sizes the threads',
  );

  // The commented alternatives: the PostgreSQL Secret the overlay names, and the JSON-lines flow.
  const text = readFileSync(join(K8S, 'index-job.yaml'), 'utf8');
  const secret = envEntry(
    find(overlay(t, 'postgres').patches, 'Deployment')!.spec.template.spec.containers[0],
    'ALBEF_STORE',
  )!.valueFrom!.secretKeyRef!;
  t.match(
    text,
    new RegExp(`secretKeyRef: \\{ name: ${secret.name}, key: ${secret.key} \\}`),
    "the PostgreSQL variant names the overlay's Secret",
  );
  const embedLine = /^#\s+albef-embed embed (.+)$/m.exec(text)?.[1];
  t.ok(embedLine, 'the JSON-lines flow is written down');
  const embed = indexOptions(parseEmbedArgs(embedLine!.split(/\s+/)), { JOB_COMPLETION_INDEX: '0' });
  t.same(embed.shard, { index: 0, count: spec.completions }, 'its --shards matches completions too');
  t.equal(embed.out, '/output/part-0.jsonl', 'one part file per pod');
  t.match(text, /albef-embed merge --out \S+ \/output\/part-\*\.jsonl/, 'and the merge step');
});
