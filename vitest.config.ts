import * as path from 'node:path';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // host classes are unit-tested against a stand-in typed as the real API (test/unit/vscode-stub.ts)
    alias: { vscode: path.resolve(__dirname, 'test/unit/vscode-stub.ts') },
  },
  test: {
    include: ['test/unit/**/*.test.ts', 'test/browser/**/*.test.ts', 'test/e2e/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    pool: 'forks',
  },
});
