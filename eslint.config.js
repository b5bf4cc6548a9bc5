// Lint: typescript-eslint's recommended rules over every source file, .ts and .js/.mjs/.cjs alike
// (scripts, benches, build tooling and experiments included), and the 450-line limit on sources.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', '**/build/**', 'runs/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    // Plain JS (bin entries, build scripts, benches, configs): CommonJS `require` where a file is .cjs.
    files: ['**/*.cjs'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // No source file over 450 lines: split it by what its parts do.
    files: ['packages/*/src/**/*.ts', 'apps/*/src/**/*.ts'],
    ignores: [
      // TEMPORARY, being split in this wave (issue 22): delete each line when its file is under the limit.
      'apps/trainer/src/train.ts', // branch `contract`
      'packages/mma/src/model.ts', // branch `contract`
    ],
    rules: { 'max-lines': ['error', { max: 450, skipBlankLines: false, skipComments: false }] },
  },
);
