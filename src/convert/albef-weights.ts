// Maps an ALBEF state dict onto the tensors the two towers and the fusion part need, in either
// official layout, and validates every name and shape before anything is written.
//
// Pretrain files: `visual_encoder.*`, `text_encoder.bert.*` (layers 0..fusion_layer-1 for the text
// tower, the rest with their cross-attention for image–text matching), `vision_proj.*`, `text_proj.*`,
// `itm_head.*`, `temp` (+ momentum copies, queues, MLM head: ignored). Fine-tuned retrieval files: the
// same without `bert.`. A checkpoint without the fusion part still converts (embeddings only).

import { WeightsError } from '../core/errors.js';
import type { Arch } from './arch.js';

/** Anything that can hand out named float tensors: a checkpoint, or synthetic random weights. */
export interface TensorSource {
  readonly label: string;
  shape(key: string): number[] | undefined;
  read(key: string): Promise<Float32Array>;
}

export type Lazy = () => Promise<Float32Array>;

const TEXT_PREFIX = { pretrain: 'text_encoder.bert.', finetuned: 'text_encoder.' } as const;

export class AlbefWeights {
  readonly layout: 'pretrain' | 'finetuned';
  /** Side of the position-embedding grid stored in the checkpoint. */
  readonly checkpointGrid: number;
  /** Hidden size of the ViT MLP, read from the weights. */
  readonly visionMlp: number;
  /** Whether the checkpoint holds the fusion layers and itm_head (image–text matching). */
  readonly hasFusion: boolean;

  constructor(
    readonly source: TensorSource,
    readonly arch: Arch,
  ) {
    this.layout = this.detectLayout();
    const pos = this.source.shape('visual_encoder.pos_embed');
    if (!pos) throw new WeightsError('missing_tensor', `${source.label}: missing tensor "visual_encoder.pos_embed"`);
    const grid = Math.round(Math.sqrt((pos[1] ?? 0) - 1));
    if (pos.length !== 3 || pos[0] !== 1 || grid * grid + 1 !== pos[1] || pos[2] !== arch.vision.dim) {
      throw new WeightsError(
        'shape_mismatch',
        `${source.label}: "visual_encoder.pos_embed" has shape [${pos.join(',')}], expected [1, g*g+1, ${arch.vision.dim}]`,
      );
    }
    this.checkpointGrid = grid;
    const fc1 = this.source.shape('visual_encoder.blocks.0.mlp.fc1.weight');
    this.visionMlp = fc1?.[0] ?? arch.vision.mlp;
    this.validate();
    this.hasFusion = this.validateFusion();
  }

  /** The learned temperature of the contrastive scores (ALBEF clamps it to [0.001, 0.5] before use), if stored. */
  async temp(): Promise<number | undefined> {
    const shape = this.source.shape('temp');
    if (!shape) return undefined;
    if (shape.reduce((a, b) => a * b, 1) !== 1)
      throw new WeightsError(
        'shape_mismatch',
        `${this.source.label}: tensor "temp" has shape [${shape.join(',')}], expected a scalar`,
      );
    return (await this.source.read('temp'))[0]!;
  }

  /** All fusion tensors present with the right shapes: true; none: false; some, or a wrong shape: an error. */
  private validateFusion(): boolean {
    const shapes = fusionTensorShapes(this.arch, this.layout);
    if (shapes.size === 0) return false;
    const present = [...shapes.keys()].filter((k) => this.source.shape(k));
    if (present.length === 0) return false;
    for (const [key, want] of shapes) {
      const got = this.source.shape(key);
      if (!got)
        throw new WeightsError(
          'missing_tensor',
          `${this.source.label}: missing tensor ${JSON.stringify(key)} (the checkpoint has part of the fusion layers)`,
        );
      if (got.length !== want.length || got.some((d, i) => d !== want[i]))
        throw new WeightsError(
          'shape_mismatch',
          `${this.source.label}: tensor ${JSON.stringify(key)} has shape [${got.join(',')}], expected [${want.join(',')}]`,
        );
    }
    return true;
  }

  get checkpointImageRes(): number {
    return this.checkpointGrid * this.arch.vision.patch;
  }

  private detectLayout(): 'pretrain' | 'finetuned' {
    if (this.source.shape(`${TEXT_PREFIX.pretrain}embeddings.word_embeddings.weight`)) return 'pretrain';
    if (this.source.shape(`${TEXT_PREFIX.finetuned}embeddings.word_embeddings.weight`)) return 'finetuned';
    throw new WeightsError(
      'missing_tensor',
      `${this.source.label}: no text encoder found (neither "text_encoder.bert.embeddings.word_embeddings.weight" nor "text_encoder.embeddings.word_embeddings.weight"); is this an ALBEF checkpoint?`,
    );
  }

  /** Full checkpoint key of a text-encoder tensor given without its prefix (`embeddings.…`, `encoder.layer.…`). */
  textKey(suffix: string): string {
    return TEXT_PREFIX[this.layout] + suffix;
  }

  private validate(): void {
    const tokenTypes = this.textKey('embeddings.token_type_embeddings.weight');
    for (const [key, want] of albefTensorShapes(this.arch, this.layout, this.visionMlp, this.checkpointGrid)) {
      if (key === tokenTypes) continue;
      const got = this.source.shape(key);
      if (!got) throw new WeightsError('missing_tensor', `${this.source.label}: missing tensor ${JSON.stringify(key)}`);
      if (got.length !== want.length || got.some((d, i) => d !== want[i])) {
        throw new WeightsError(
          'shape_mismatch',
          `${this.source.label}: tensor ${JSON.stringify(key)} has shape [${got.join(',')}], expected [${want.join(',')}]`,
        );
      }
    }
    const tt = this.source.shape(this.textKey('embeddings.token_type_embeddings.weight'));
    if (!tt || tt.length !== 2 || tt[1] !== this.arch.text.dim || tt[0]! < 1) {
      throw new WeightsError(
        tt ? 'shape_mismatch' : 'missing_tensor',
        `${this.source.label}: tensor "${this.textKey('embeddings.token_type_embeddings.weight')}" ${tt ? `has shape [${tt.join(',')}]` : 'is missing'}, expected [n, ${this.arch.text.dim}]`,
      );
    }
  }

  lazy(key: string): Lazy {
    return () => this.source.read(key);
  }
}

/**
 * Every tensor the towers read, with its shape. `pos_embed` is at the checkpoint's grid and
 * `token_type_embeddings` has BERT's 2 rows (checkpoints may have more; only row 0 is used).
 */
export function albefTensorShapes(
  arch: Arch,
  layout: 'pretrain' | 'finetuned',
  visionMlp: number,
  grid: number,
): Map<string, number[]> {
  const { vision: v, text: t, embed_dim: e } = arch;
  const textKey = (suffix: string): string => TEXT_PREFIX[layout] + suffix;
  const m = new Map<string, number[]>();
  const ve = 'visual_encoder.';
  m.set(ve + 'cls_token', [1, 1, v.dim]);
  m.set(ve + 'pos_embed', [1, grid * grid + 1, v.dim]);
  m.set(ve + 'patch_embed.proj.weight', [v.dim, 3, v.patch, v.patch]);
  m.set(ve + 'patch_embed.proj.bias', [v.dim]);
  for (let i = 0; i < v.depth; i++) {
    const b = `${ve}blocks.${i}.`;
    for (const n of ['norm1', 'norm2']) {
      m.set(`${b}${n}.weight`, [v.dim]);
      m.set(`${b}${n}.bias`, [v.dim]);
    }
    m.set(`${b}attn.qkv.weight`, [3 * v.dim, v.dim]);
    m.set(`${b}attn.qkv.bias`, [3 * v.dim]);
    m.set(`${b}attn.proj.weight`, [v.dim, v.dim]);
    m.set(`${b}attn.proj.bias`, [v.dim]);
    m.set(`${b}mlp.fc1.weight`, [visionMlp, v.dim]);
    m.set(`${b}mlp.fc1.bias`, [visionMlp]);
    m.set(`${b}mlp.fc2.weight`, [v.dim, visionMlp]);
    m.set(`${b}mlp.fc2.bias`, [v.dim]);
  }
  m.set(ve + 'norm.weight', [v.dim]);
  m.set(ve + 'norm.bias', [v.dim]);
  m.set('vision_proj.weight', [e, v.dim]);
  m.set('vision_proj.bias', [e]);

  m.set(textKey('embeddings.word_embeddings.weight'), [t.vocab_size, t.dim]);
  m.set(textKey('embeddings.position_embeddings.weight'), [t.max_pos, t.dim]);
  m.set(textKey('embeddings.token_type_embeddings.weight'), [2, t.dim]);
  m.set(textKey('embeddings.LayerNorm.weight'), [t.dim]);
  m.set(textKey('embeddings.LayerNorm.bias'), [t.dim]);
  for (let i = 0; i < t.fusion_layer; i++) bertLayerShapes(m, textKey(`encoder.layer.${i}.`), arch);
  m.set('text_proj.weight', [e, t.dim]);
  m.set('text_proj.bias', [e]);
  return m;
}

/**
 * The tensors of image–text matching: text-encoder layers fusion_layer..layers-1 (self-attention,
 * cross-attention whose keys and values project the vision width, feed-forward) and itm_head. Empty
 * when the architecture has no fusion layers. (`temp`, for zero-shot scores, is read when present.)
 */
export function fusionTensorShapes(arch: Arch, layout: 'pretrain' | 'finetuned'): Map<string, number[]> {
  const { text: t } = arch;
  const m = new Map<string, number[]>();
  if (t.fusion_layer >= t.layers) return m;
  for (let i = t.fusion_layer; i < t.layers; i++)
    bertLayerShapes(m, `${TEXT_PREFIX[layout]}encoder.layer.${i}.`, arch, { cross: true });
  m.set('itm_head.weight', [2, t.dim]);
  m.set('itm_head.bias', [2]);
  return m;
}

/** The tensors of one BERT layer under `prefix`; fusion layers add cross-attention over the vision width. */
function bertLayerShapes(
  m: Map<string, number[]>,
  prefix: string,
  arch: Arch,
  options: { cross?: boolean } = {},
): void {
  const { vision: v, text: t } = arch;
  for (const [sub, kvIn] of options.cross
    ? ([
        ['attention', t.dim],
        ['crossattention', v.dim],
      ] as const)
    : ([['attention', t.dim]] as const)) {
    m.set(`${prefix}${sub}.self.query.weight`, [t.dim, t.dim]);
    m.set(`${prefix}${sub}.self.query.bias`, [t.dim]);
    for (const n of ['key', 'value']) {
      m.set(`${prefix}${sub}.self.${n}.weight`, [t.dim, kvIn]);
      m.set(`${prefix}${sub}.self.${n}.bias`, [t.dim]);
    }
    m.set(`${prefix}${sub}.output.dense.weight`, [t.dim, t.dim]);
    m.set(`${prefix}${sub}.output.dense.bias`, [t.dim]);
    m.set(`${prefix}${sub}.output.LayerNorm.weight`, [t.dim]);
    m.set(`${prefix}${sub}.output.LayerNorm.bias`, [t.dim]);
  }
  m.set(`${prefix}intermediate.dense.weight`, [t.intermediate, t.dim]);
  m.set(`${prefix}intermediate.dense.bias`, [t.intermediate]);
  m.set(`${prefix}output.dense.weight`, [t.dim, t.intermediate]);
  m.set(`${prefix}output.dense.bias`, [t.dim]);
  m.set(`${prefix}output.LayerNorm.weight`, [t.dim]);
  m.set(`${prefix}output.LayerNorm.bias`, [t.dim]);
}
