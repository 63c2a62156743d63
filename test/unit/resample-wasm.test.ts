// The WebAssembly module the resampler runs is the one resample.wat assembles to (scripts/build-wasm.ts,
// wabt from npm): the committed src/imaging/resample-wasm.ts is regenerated here and compared.

import { readFile } from 'node:fs/promises';
import t from 'tap';
import { assemble, GENERATED_FILE, generatedSource } from '../../scripts/build-wasm.js';
import { RESAMPLE_WASM_BASE64 } from '../../src/imaging/resample-wasm.js';

t.test('resample-wasm.ts is what resample.wat assembles to (npm run build:wasm)', async (t) => {
  const bytes = await assemble();
  t.equal(RESAMPLE_WASM_BASE64, Buffer.from(bytes).toString('base64'), 'the module’s bytes');
  t.equal(await readFile(GENERATED_FILE, 'utf8'), generatedSource(bytes), 'the file as the script writes it');
});
