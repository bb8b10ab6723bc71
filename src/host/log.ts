// The "Gatelab" Output channel, filtered by the `gatelab.logLevel` setting.

import * as vscode from 'vscode';

const ORDER = { debug: 0, info: 1, warn: 2, error: 3 } as const;
export type Level = keyof typeof ORDER;

export class Log implements vscode.Disposable {
  readonly channel = vscode.window.createOutputChannel('Gatelab');
  constructor(private level: () => Level) {}
  write(level: Level, message: string): void {
    if (ORDER[level] < ORDER[this.level()]) return;
    const t = new Date().toISOString().replace('T', ' ').slice(0, 23);
    this.channel.appendLine(`${t} [${level}] ${message}`);
  }
  debug = (m: string) => this.write('debug', m);
  info = (m: string) => this.write('info', m);
  warn = (m: string) => this.write('warn', m);
  error = (m: string) => this.write('error', m);
  dispose(): void {
    this.channel.dispose();
  }
}
