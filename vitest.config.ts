import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          // Unit tests read the real /proc and bind real loopback ports: they run before the e2e
          // suites, whose stand-ins hold Ollama's default port, never beside them.
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          // The e2e suites share one dockerd and fixed container names: run them one file at a time.
          fileParallelism: false,
          sequence: { groupOrder: 1 },
          testTimeout: 180_000,
          hookTimeout: 600_000,
        },
      },
    ],
  },
});
