// A second client generator on the served OpenAPI document: openapi-typescript-codegen (from npm,
// offline, on a JSON object) emits models named after the document's components and a fetch client
// whose methods are the operationIds and whose types are those models, never an `InlineObject7`. The
// generated client is then type-checked and compiled with the project's TypeScript, and called
// against a real server.

import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate } from 'openapi-typescript-codegen';
import t from 'tap';
import ts from 'typescript';
import { PACKAGE_VERSION } from '../../src/core/paths.js';
import { cosine, golden, IMAGES_DIR, ITM_TOL, itmGolden, TOL } from '../../kit/golden.js';
import { cleanupTinyModel, startServer } from '../../kit/server.js';

const server = await startServer();
const out = await mkdtemp(join(tmpdir(), 'albef-codegen-'));
t.teardown(async () => {
  await server.close();
  await cleanupTinyModel();
  await rm(out, { recursive: true, force: true });
});

const doc = (await (await fetch(`${server.url}/openapi.json`)).json()) as {
  info: { version: string };
  components: { schemas: Record<string, { example?: unknown }> };
  paths: Record<
    string,
    Record<string, { operationId?: string; requestBody?: { content: Record<string, { schema: { $ref?: string } }> } }>
  >;
};
await generate({ input: doc, output: join(out, 'src'), httpClient: 'fetch', useUnionTypes: true });

const COMPONENTS = [
  'ClassifyMultipartRequest',
  'ClassifyRequest',
  'ClassifyResponse',
  'CollectionInfo',
  'CollectionList',
  'EmbedImageMultipartRequest',
  'EmbedImageRequest',
  'EmbedTextRequest',
  'Embedding',
  'EmbeddingResponse',
  'Error',
  'LabelScore',
  'ModelInfo',
  'ModelsResponse',
  'OpenAIEmbedding',
  'OpenAIEmbeddingRequest',
  'OpenAIEmbeddingResponse',
  'OpenAIError',
  'OpenAIImageItem',
  'OpenAIInputItem',
  'OpenAIModel',
  'OpenAIModelList',
  'OpenAITextItem',
  'OpenAIUsage',
  'RerankImageItem',
  'RerankItem',
  'RerankRequest',
  'RerankResponse',
  'RerankResult',
  'RerankTextItem',
  'SearchHit',
  'SearchIdQuery',
  'SearchImageQuery',
  'SearchQuery',
  'SearchRequest',
  'SearchResponse',
  'SearchTextQuery',
  'StatusResponse',
];

t.test('the document: every body a named component, every operation an operationId, the package version', async (t) => {
  t.same(Object.keys(doc.components.schemas).sort(), COMPONENTS);
  t.equal(doc.info.version, PACKAGE_VERSION, `info.version is package.json's (${PACKAGE_VERSION})`);
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      t.match(op.operationId, /^[a-z][A-Za-z]+$/, `${method} ${path} has an operationId`);
      for (const [type, media] of Object.entries(op.requestBody?.content ?? {})) {
        if (type !== 'image/*')
          t.match(media.schema.$ref, /^#\/components\/schemas\/\w+$/, `${method} ${path} ${type} body is a component`);
      }
    }
  }
  for (const name of [
    'EmbedTextRequest',
    'EmbedImageRequest',
    'OpenAIEmbeddingRequest',
    'EmbeddingResponse',
    'OpenAIEmbeddingResponse',
    'ModelsResponse',
    'OpenAIModel',
    'Error',
    'OpenAIError',
    'RerankRequest',
    'RerankResponse',
    'ClassifyRequest',
    'ClassifyResponse',
    'SearchRequest',
    'SearchResponse',
  ]) {
    t.ok(doc.components.schemas[name]!.example, `${name} has an example`);
  }
});

t.test('the generated models are the components, by name', async (t) => {
  const models = (await readdir(join(out, 'src', 'models'))).map((f) => f.replace(/\.ts$/, ''));
  t.same(models.sort(), COMPONENTS, 'one model file per component, nothing else');
  const request = await readFile(join(out, 'src', 'models', 'OpenAIEmbeddingRequest.ts'), 'utf8');
  t.match(request, /input: \(string \| Array<OpenAIInputItem>\);/, 'input keeps its array of items');
  t.match(
    await readFile(join(out, 'src', 'models', 'OpenAIInputItem.ts'), 'utf8'),
    /= \(string \| OpenAITextItem \| OpenAIImageItem\);/,
  );
});

t.test('the generated services: operationIds as methods, models as their types', async (t) => {
  const services: Record<string, string> = {};
  for (const f of await readdir(join(out, 'src', 'services'))) {
    const text = await readFile(join(out, 'src', 'services', f), 'utf8');
    for (const m of text.matchAll(/public static (\w+)\(([\s\S]*?)\): CancelablePromise<(\w+)>/g)) {
      const body = m[2]!.match(/requestBody: (\w+)/)?.[1];
      services[`${f.replace('.ts', '')}.${m[1]}`] = `${body ?? '-'} -> ${m[3]}`;
    }
  }
  t.same(services, {
    'EmbeddingsService.embedText': 'EmbedTextRequest -> EmbeddingResponse',
    'EmbeddingsService.embedImage': 'EmbedImageRequest -> EmbeddingResponse',
    'EmbeddingsService.createEmbedding': 'OpenAIEmbeddingRequest -> OpenAIEmbeddingResponse',
    'MatchingService.rerank': 'RerankRequest -> RerankResponse',
    'MatchingService.classify': 'ClassifyRequest -> ClassifyResponse',
    'ModelsService.getLoadedModels': '- -> ModelsResponse',
    'ModelsService.listModels': '- -> OpenAIModelList',
    'ModelsService.retrieveModel': '- -> OpenAIModel',
    'OpsService.getLiveness': '- -> StatusResponse',
    'OpsService.getReadiness': '- -> StatusResponse',
    'OpsService.getMetrics': '- -> string',
    'RetrievalService.listCollections': '- -> CollectionList',
    'RetrievalService.getCollection': '- -> CollectionInfo',
    'RetrievalService.getItemImage': '- -> Blob',
    'RetrievalService.search': 'SearchRequest -> SearchResponse',
  });
});

t.test('the generated client type-checks, compiles and calls the server', async (t) => {
  const src = join(out, 'src');
  const files = [join(src, 'index.ts')];
  const program = ts.createProgram(files, {
    strict: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.CommonJS,
    lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'],
    types: [],
    outDir: join(out, 'js'),
    skipLibCheck: true,
  });
  const emitted = program.emit();
  const diagnostics = [...ts.getPreEmitDiagnostics(program), ...emitted.diagnostics].map((d) =>
    ts.flattenDiagnosticMessageText(d.messageText, '\n'),
  );
  t.same(diagnostics, [], 'no type errors');

  const client = createRequire(import.meta.url)(join(out, 'js', 'index.js')) as {
    OpenAPI: { BASE: string };
    EmbeddingsService: {
      embedText(body: { texts: string[] }): Promise<{ embeddings: number[][] }>;
      createEmbedding(body: { input: string[] }): Promise<{ data: { embedding: number[] }[] }>;
    };
    ModelsService: { listModels(): Promise<{ data: { id: string }[] }> };
    MatchingService: {
      rerank(body: {
        query: string;
        documents: { image: string }[];
      }): Promise<{ results: { index: number; relevance_score: number }[] }>;
    };
    ApiError: new (...args: never[]) => Error;
  };
  client.OpenAPI.BASE = server.url;
  const text = golden.texts[1]!;
  const native = await client.EmbeddingsService.embedText({ texts: [text.text] });
  t.ok(cosine(native.embeddings[0]!, text.pre_caption.embedding) >= TOL.textCos, 'embedText: the golden vector');
  const openai = await client.EmbeddingsService.createEmbedding({ input: [text.text] });
  t.ok(
    cosine(openai.data[0]!.embedding, text.pre_caption.embedding) >= TOL.textCos,
    'createEmbedding: the golden vector',
  );
  t.equal((await client.ModelsService.listModels()).data[0]!.id, 'tiny');
  const photo = `data:image/jpeg;base64,${(await readFile(join(IMAGES_DIR, 'photo.jpg'))).toString('base64')}`;
  const reranked = await client.MatchingService.rerank({ query: itmGolden.texts[0]!, documents: [{ image: photo }] });
  t.ok(
    Math.abs(
      reranked.results[0]!.relevance_score - itmGolden.pairs[0]![itmGolden.images.indexOf('photo.jpg')]!.itm_prob,
    ) <= ITM_TOL.prob,
    'rerank: the golden ITM probability',
  );
  await t.rejects(client.EmbeddingsService.embedText({ texts: [] }), client.ApiError, 'errors arrive as its ApiError');
});
