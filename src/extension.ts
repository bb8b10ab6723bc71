// Entry point: activate creates the one owning object; deactivate disposes it (which kills every
// trainer process). Everything else lives in src/host.

import * as vscode from 'vscode';
import { Gatelab, GatelabApi } from './host/gatelab';

let app: Gatelab | undefined;

export function activate(ctx: vscode.ExtensionContext): GatelabApi {
  try {
    app = new Gatelab(ctx);
    ctx.subscriptions.push(app);
    return app.api;
  } catch (e) {
    void vscode.window.showErrorMessage(`Gatelab could not start: ${(e as Error).message}`);
    throw e;
  }
}

export function deactivate(): void {
  app?.dispose();
  app = undefined;
}
