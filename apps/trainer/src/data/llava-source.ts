/**
 * LLaVA-format instruction data as a DataSource: records read (and their images decoded) up front,
 * conversations turned into text by data.template (conversation.ts) with loss on assistant turns,
 * images decoded from disk on demand into a bounded cache.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { AdaptorkitError, type CausalLM, type HFTokenizer, type VisionEncoder, loadTokenizer } from '@adaptorkit/core';
import {
  encodeSegments,
  IMAGE_TOKEN,
  loadImage,
  normalizationConstants,
  normalizeImage,
  readLlava,
  scoreExact,
  type Normalization,
  type Split,
} from '@adaptorkit/data';
import type { RunConfig } from '../config.js';
import { basePath, isShippedBase } from '@adaptorkit/shapes-bases';
import type { DataSource, SourceExample } from '../sources.js';
import { conversationFormat, type ConversationFormat, type TemplateKind, type Turn } from './conversation.js';

export interface LlavaSourceOptions {
  json: string;
  imageRoot: string;
  onError: 'skip' | 'fail';
  /** Optional separate file for val/test; otherwise the last `heldOut` records of `json` are held out. */
  evalJson?: string;
  heldOut: number;
  imageSize: number;
  normalize: Normalization;
  /** Token id the `<image>` placeholder becomes (its positions are overwritten by image features). */
  imageTokenId: number;
  /** Images kept decoded in memory (least recently used dropped first). */
  cacheImages: number;
  /** How conversations become text (default 'auto': the model's chat template when it has one). */
  template?: TemplateKind;
  /** How much each image is checked when the file is read (default 'decode'). */
  checkImages?: 'decode' | 'header' | 'exists';
  log?: (line: string) => void;
}

const tokenizers = new Map<string, Promise<HFTokenizer>>();

/**
 * loadTokenizer with a small per-process cache keyed by the files' paths, sizes and times: a
 * tokenizer.json of a real model takes seconds to build, and one process (train then eval, chat,
 * the demo, tests) reads the same folder several times.
 */
export async function loadTokenizerCached(dir: string): Promise<HFTokenizer> {
  const stamp = async (f: string): Promise<string> => {
    const st = await fs.stat(path.join(dir, f)).catch(() => undefined);
    return st ? `${st.size}:${st.mtimeMs}` : '-';
  };
  const key = `${path.resolve(dir)}|${await stamp('tokenizer.json')}|${await stamp('tokenizer_config.json')}`;
  let hit = tokenizers.get(key);
  if (!hit) {
    hit = loadTokenizer(dir);
    hit.catch(() => tokenizers.delete(key));
    tokenizers.set(key, hit);
    while (tokenizers.size > 4) tokenizers.delete(tokenizers.keys().next().value!);
  }
  return hit;
}

/** Placeholder tokens a tokenizer may already have for images, tried in order when data.llava.imageTokenId is not set. */
export const IMAGE_TOKEN_CANDIDATES = [IMAGE_TOKEN, '<|image_pad|>', '<image_soft_token>'] as const;

export async function llavaSource(tok: HFTokenizer, o: LlavaSourceOptions): Promise<DataSource> {
  const format: ConversationFormat = conversationFormat(tok, o.template ?? 'auto');
  const read = async (file: string): Promise<SourceExample[]> => {
    const r = await readLlava(file, {
      root: o.imageRoot,
      onError: o.onError,
      checkImages: o.checkImages ?? 'decode',
      onIssue: (i) => o.log?.(`skipped ${i.file}:${i.line}: record ${i.index}${i.field ? ` field '${i.field}'` : ''}: ${i.message}`),
    });
    const out: SourceExample[] = [];
    for (const rec of r.records) {
      const where = `${rec.source.file}:${rec.source.line} record ${rec.source.index} (id ${rec.id})`;
      let segments;
      try {
        segments = format.segments(rec.turns as Turn[]);
      } catch (e) {
        const msg = `${where}: ${(e as Error).message}`;
        if (o.onError === 'fail') throw new AdaptorkitError('BAD_FILE', msg, { cause: e });
        o.log?.(`skipped ${msg}`);
        continue;
      }
      const lastLoss = segments.map((s) => s.loss).lastIndexOf(true);
      const lastTurn = [...rec.turns].reverse().find((t) => t.role === 'assistant')!;
      out.push({
        id: rec.id,
        task: 'llava',
        inputs: rec.image ? [{ modality: 'image' as const, file: rec.image }] : [],
        prompt: segments.slice(0, lastLoss).map((s) => s.text).join(''),
        answer: lastTurn.text.trim(),
        segments,
      });
    }
    return out;
  };
  const all = await read(o.json);
  if (all.length === 0) throw new AdaptorkitError('INVALID_CONFIG', `data.llava.json: ${o.json} has no usable records`);
  let train: SourceExample[];
  let held: SourceExample[];
  if (o.evalJson) {
    train = all;
    held = await read(o.evalJson);
  } else {
    if (all.length <= o.heldOut) {
      throw new AdaptorkitError('INVALID_CONFIG', `data.llava.heldOut: ${o.heldOut} held-out records leave nothing to train on (${o.json} has ${all.length}); lower it or give data.llava.evalJson`);
    }
    train = all.slice(0, all.length - o.heldOut);
    held = all.slice(all.length - o.heldOut);
  }
  const half = Math.ceil(held.length / 2);
  const splits: Record<Split, SourceExample[]> = { train, val: held.slice(0, half), test: held.slice(half).length ? held.slice(half) : held };
  const norm = normalizationConstants(o.normalize);
  const cache = new Map<string, Float32Array>();
  const placeholders = { [IMAGE_TOKEN]: o.imageTokenId };
  const normalize = (px: Float32Array): Float32Array => (norm ? normalizeImage(Float32Array.from(px), norm.mean, norm.std) : px);
  const userText = (q: string, withImage: boolean): string => `${withImage ? `${IMAGE_TOKEN}\n` : ''}${q.replaceAll(IMAGE_TOKEN, '').trim()}`;
  return {
    kind: 'llava',
    tokenizer: tok,
    placeholderIds: { image: o.imageTokenId },
    stopIds: format.stopIds,
    template: format.kind,
    examples: (split) => splits[split],
    encode: (ex, promptOnly) => {
      const segs = ex.segments ?? [{ text: ex.prompt, loss: false }, { text: ex.answer, loss: true }];
      return encodeSegments(tok, promptOnly ? [{ text: ex.prompt, loss: false }] : segs, { addBos: format.addBos, addEos: false, placeholders });
    },
    render: (input) => {
      if (!('file' in input)) throw new AdaptorkitError('INVALID_ARGUMENT', 'a LLaVA run got a ShapesWorld input');
      const hit = cache.get(input.file);
      if (!hit) throw new AdaptorkitError('INVALID_ARGUMENT', `image ${input.file} was not prefetched before batching`);
      cache.delete(input.file); // re-insert: most recently used last
      cache.set(input.file, hit);
      return hit;
    },
    prefetch: async (examples) => {
      for (const ex of examples) {
        for (const input of ex.inputs) {
          if (!('file' in input) || cache.has(input.file)) continue;
          let img;
          try {
            img = await loadImage(input.file, { size: o.imageSize, fit: 'pad', normalize: o.normalize, root: o.imageRoot }); // re-checked inside the root at each read
          } catch (e) {
            throw new AdaptorkitError('BAD_FILE', `record ${ex.id}: ${(e as Error).message} (it decoded when the data was read: was the file changed since?)`, { cause: e });
          }
          cache.set(input.file, img.data);
          while (cache.size > Math.max(o.cacheImages, examples.length)) cache.delete(cache.keys().next().value!);
        }
      }
    },
    normalizeImage: normalize,
    formatPrompt: (q, withImage) => format.prompt([{ role: 'user', text: userText(q, withImage) }]),
    formatConversation: (turns) => format.prompt(turns),
    score: (_task, preds, examples) => {
      const r = scoreExact([...preds].map((p) => p.trim()), examples.map((e) => ({ template: 'llava', answer: e.answer })));
      const metrics: Record<string, number> = {};
      for (const [k, v] of Object.entries(r)) if (typeof v === 'number') metrics[k] = v;
      return { metrics };
    },
  };
}

/** The LLaVA source of a run: tokenizer of base.lm, the image placeholder id, data.template and the image checks. */
export async function makeLlavaSource(cfg: RunConfig, lm: CausalLM, vision: VisionEncoder, log: (l: string) => void): Promise<DataSource> {
  const l = cfg.data.llava;
  if (!l) throw new AdaptorkitError('INVALID_CONFIG', 'data.llava: required when data.source is llava ({ json, imageRoot })');
  if (isShippedBase(cfg.base.lm)) throw new AdaptorkitError('INVALID_CONFIG', `base.lm: LLaVA data needs a real HF model folder (with tokenizer.json), not the ShapesWorld LM '${cfg.base.lm}'`);
  const lmDir = basePath(cfg.base.lm, 'lm');
  const tok = await loadTokenizerCached(lmDir);
  if (tok.vocabSize > lm.config.vocabSize) throw new AdaptorkitError('INVALID_CONFIG', `${lmDir}: the tokenizer has ${tok.vocabSize} ids but the model's vocabulary is ${lm.config.vocabSize}`);
  let imageTokenId = l.imageTokenId;
  for (const t of IMAGE_TOKEN_CANDIDATES) imageTokenId ??= tok.tokenToId(t);
  if (imageTokenId === undefined) {
    throw new AdaptorkitError('INVALID_CONFIG', `data.llava.imageTokenId: the tokenizer in ${lmDir} has none of ${IMAGE_TOKEN_CANDIDATES.join(', ')} as a single token; set imageTokenId to an id it never produces for text (e.g. a reserved special token)`);
  }
  if (imageTokenId === tok.padId || imageTokenId < 0 || imageTokenId >= lm.config.vocabSize) {
    throw new AdaptorkitError('INVALID_CONFIG', `data.llava.imageTokenId: ${imageTokenId} must be in [0, ${lm.config.vocabSize}) and differ from the pad id ${tok.padId}`);
  }
  return llavaSource(tok, {
    json: path.resolve(l.json),
    imageRoot: path.resolve(l.imageRoot),
    evalJson: l.evalJson ? path.resolve(l.evalJson) : undefined,
    heldOut: l.heldOut,
    onError: l.onError,
    imageSize: vision.config.imageSize,
    normalize: l.normalize ?? (vision.config.kind === 'siglip' ? 'siglip' : 'clip'),
    imageTokenId,
    cacheImages: l.cacheImages,
    template: cfg.data.template,
    checkImages: l.checkImages,
    log,
  });
}
