import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'trainer',
    include: ['src/**/*.test.ts'],
    exclude: ['src/**/*.smoke.test.ts'], // project 'demo-smoke' (vitest.smoke.config.ts)
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'] } },
});
