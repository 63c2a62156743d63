// Synthetic unit vectors with cluster structure for the store benchmarks: 1000 random unit centres,
// each vector a centre plus Gaussian noise of about the centre's length, normalised.

export const DIM = 256;
const CENTRES = 1000;

export function gaussian(seed: number): () => number {
  let a = seed >>> 0;
  const uniform = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return (((x ^ (x >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

function normalise(v: Float32Array): Float32Array {
  let n = 0;
  for (const x of v) n += x * x;
  const s = 1 / Math.sqrt(n);
  for (let i = 0; i < v.length; i++) v[i]! *= s;
  return v;
}

const centreRand = gaussian(1);
const centres = Array.from({ length: CENTRES }, () => normalise(Float32Array.from({ length: DIM }, centreRand)));

/** A centre plus noise of about the centre's length (within-cluster cosine ≈ 0.5), unit length. */
export function pick(rand: () => number): Float32Array {
  const c = centres[Math.abs(Math.floor(rand() * 7919)) % CENTRES]!;
  return normalise(Float32Array.from(c, (x) => x + rand() / 16));
}
