// The tests' TypeScript loader: tsx (esbuild) registered in every thread. tsx's own `--import tsx`
// skips worker threads on Node 20, and tap's ts-node loader costs ≈ 1.5 s of CPU per thread and
// process (it loads the TypeScript compiler), which every session and decode worker paid.
import { register } from 'tsx/esm/api';

register();
