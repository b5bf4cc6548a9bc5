/**
 * The layering of the monorepo, checked by `npm run lint` (dependency-cruiser):
 *
 *   apps/trainer, experiments/          compose everything
 *     -> method packages                iaa, mma, mwa, damc, ... (every package not named below)
 *       -> @adaptorkit/shapes-bases     the shipped small bases and their recipes
 *         -> @adaptorkit/data           ShapesWorld, readers, batching
 *           -> @adaptorkit/core         the tensor core
 *             -> @adaptorkit/kernel-names, @adaptorkit/backend-native (optional, loaded at run time)
 *
 * Imports go down only; no cycles; every imported package is declared in the importing package's
 * package.json; a package reaches another only through its name, never a relative path.
 * tools/src/layering.test.ts plants violations and checks that each is reported.
 */
// packages below the methods, lowest first
const FOUNDATION = ['kernel-names', 'backend-native', 'core', 'data', 'shapes-bases'];
const notFoundation = `(?!(?:${FOUNDATION.join('|')})/)`;
/** A method package: any package that is not a foundation package. */
const METHOD = `^packages/${notFoundation}([^/]+)/`;
const below = (name) => FOUNDATION.slice(0, FOUNDATION.indexOf(name));
const pkgPath = (names) => `^packages/(?:${names.join('|')})/`;

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A cycle of imports: split the shared part into a module both can import.',
      // TEMPORARY: apps/trainer/src/train.ts <-> retrieval.ts is split by the trainer rework (issue 22,
      // item 3, branch `contract`); delete this pathNot when that lands.
      from: { pathNot: '^apps/trainer/src/(train|retrieval)\\.ts$' },
      // a cycle through type-only imports does not exist at run time (they are erased)
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'An import that resolves to no file: a typo, or a package that is not installed.',
      from: {},
      to: { couldNotResolve: true },
    },
    {
      name: 'no-undeclared-dependency',
      severity: 'error',
      comment: "An npm package imported but not declared in the importing package's package.json (dependencies, optionalDependencies or peerDependencies; devDependencies in tests and tooling). Workspace packages (@adaptorkit/*) resolve through their links, so tools/src/layering.test.ts checks their declarations.",
      from: {},
      to: { dependencyTypes: ['npm-no-pkg', 'npm-unknown'] },
    },
    {
      name: 'no-dev-dependency-in-src',
      severity: 'error',
      comment: "Library code imports a devDependency: users installing the package will not have it. Declare it in dependencies (tests, test helpers and tooling may use devDependencies).",
      from: { path: '^(packages|apps)/[^/]+/src/', pathNot: ['\\.test\\.ts$', '/testing/', 'test-util\\.ts$', '/fixtures\\.ts$', '/test-bases\\.ts$'] },
      to: { dependencyTypes: ['npm-dev'] },
    },
    {
      name: 'no-relative-cross-package',
      severity: 'error',
      comment: 'A relative import into another workspace package: import it by its @adaptorkit/ name (and declare it).',
      from: { path: '^(packages|apps)/([^/]+)/' },
      to: { path: '^(packages|apps)/', pathNot: '^$1/$2/', dependencyTypesNot: ['aliased-workspace'] },
    },
    {
      name: 'packages-not-to-apps',
      severity: 'error',
      comment: 'A package imports an app (e.g. @adaptorkit/trainer): apps are at the top; move what the package needs below it.',
      from: { path: '^packages/' },
      to: { path: '^apps/' },
    },
    {
      name: 'nothing-to-experiments',
      severity: 'error',
      comment: 'experiments/ are research scripts at the very top: product code never imports them.',
      from: { path: '^(packages|apps)/' },
      to: { path: '^experiments/' },
    },
    {
      name: 'method-not-to-method',
      severity: 'error',
      comment: 'A method package imports another method package: methods depend on core, data and the bases only; the trainer composes them.',
      from: { path: METHOD },
      to: { path: METHOD, pathNot: '^packages/$1/' },
    },
    ...FOUNDATION.map((name) => ({
      name: `${name}-down-only`,
      severity: 'error',
      comment: `@adaptorkit/${name} may import only the packages below it (${below(name).join(', ') || 'none'}).`,
      from: { path: `^packages/${name}/` },
      to: { path: '^packages/', pathNot: [`^packages/${name}/`, ...(below(name).length ? [pkgPath(below(name))] : [])] },
    })),
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: ['(^|/)dist/', '(^|/)build/', '^runs/'] },
    tsPreCompilationDeps: true,
    // root devDependencies (vitest, tsup, ...) count for every package: tests and configs use them
    combinedDependencies: true,
    tsConfig: { fileName: require('node:path').join(__dirname, 'tsconfig.depcruise.json') },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      // 'source' (each package's src/index.ts) rather than 'types' (its dist/), so imports of
      // workspace packages are followed into their sources
      conditionNames: ['source', 'import', 'default'],
      mainFields: ['module', 'main', 'types'],
      extensions: ['.ts', '.js', '.mjs', '.cjs', '.json', '.d.ts'],
    },
  },
};
