import { defineProject } from 'vitest/config';

// The demo's smoke run trains models for about 50 s: it runs alone, after every other
// project (groupOrder 1; the others are in group 0), so its time is not inflated by parallel files.
export default defineProject({
  test: {
    name: 'demo-smoke',
    include: ['src/**/*.smoke.test.ts'],
    testTimeout: 300_000,
    hookTimeout: 120_000,
    sequence: { groupOrder: 1 },
  },
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'] } },
});
