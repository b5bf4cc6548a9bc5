import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts', 'src/testing/index.ts'],
  format: ['esm'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'es2022',
  platform: 'node',
  // tfjs-core ships its gradient registrations only as extensionless ESM, which Node cannot load;
  // bundle them (they register into tfjs-core's global registry, shared with the package's CJS build).
  noExternal: [/register_all_gradients/],
  external: ['seedrandom', 'long'],
});
