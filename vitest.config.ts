import { defineConfig } from 'vitest/config';

// One vitest project per workspace package; each package's own vitest.config.ts sets its name.
export default defineConfig({
  test: {
    projects: ['packages/*', 'apps/*'],
  },
});
