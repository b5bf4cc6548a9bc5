import { defineConfig } from 'vitest/config';

// One vitest project per workspace package; each package's own vitest.config.ts sets its name.
export default defineConfig({
  test: {
    // the demo's smoke run is its own project, run last and alone (apps/trainer/vitest.smoke.config.ts)
    projects: ['packages/*', 'apps/*', 'tools', 'experiments', 'apps/trainer/vitest.smoke.config.ts'],
  },
});
