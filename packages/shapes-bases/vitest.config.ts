import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'shapes-bases',
    include: ['src/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'] } },
});
