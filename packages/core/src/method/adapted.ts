/** Adapter save/load for an adapted model: core's adapter files (io/adapter.ts) over its module. */
import { loadAdapter, saveAdapter } from '../io/adapter.js';
import type { AdaptedModel } from './contract.js';

/**
 * Complete an adapted model with save/load: the adapter is `module`'s trainable parameters plus
 * describe()'s method and config; loading is strict (names, shapes, base fingerprint).
 * `M` is the model interface being built (GenerativeModel, RetrievalModel), taken from context.
 */
export function withAdapterFiles<M extends AdaptedModel<never>>(m: Omit<M, 'save' | 'load'>): M {
  const files: Pick<AdaptedModel<never>, 'save' | 'load'> = {
    save: async (dir, o = {}) => {
      await saveAdapter(dir, m.module, { ...m.describe(), ...(o.basePath !== undefined ? { basePath: o.basePath } : {}) });
    },
    load: async (dir) => {
      await loadAdapter(dir, m.module);
    },
  };
  return { ...m, ...files } as M; // Omit<M, save | load> plus exactly those two
}
