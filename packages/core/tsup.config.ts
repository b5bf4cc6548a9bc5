import { packageBuild } from '../../tsup.base.js';

export default packageBuild(['src/index.ts', 'src/testing/index.ts'], {
  // tfjs-core ships its gradient registrations only as extensionless ESM, which Node cannot load;
  // bundle them (they register into tfjs-core's global registry, shared with the package's CJS build).
  noExternal: [/register_all_gradients/],
  external: ['seedrandom', 'long'],
});
