// Mocha entry for the @vscode/test-electron tier (loaded inside VS Code's extension host).
import Mocha from 'mocha';
import { registerSuite } from './suite';

export function run(): Promise<void> {
  const mocha = new Mocha({ ui: 'bdd', timeout: 120_000, color: true });
  mocha.suite.emit('pre-require', globalThis, 'suite', mocha);
  registerSuite();
  return new Promise((resolve, reject) => mocha.run((failures) => (failures ? reject(new Error(`${failures} tests failed`)) : resolve())));
}
