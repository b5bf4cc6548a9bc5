import { defineConfig, type Options } from 'tsup';

/** The one build every package uses: ESM + .d.ts for Node, from the given entry points. */
export function packageBuild(entry: string[], extra: Options = {}) {
  return defineConfig({ entry, format: ['esm'], dts: true, sourcemap: true, clean: true, target: 'es2022', platform: 'node', ...extra });
}
