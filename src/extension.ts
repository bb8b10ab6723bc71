// Entry point: activate creates the one owning object; deactivate stops every trainer with a
// checkpoint, then disposes it. Everything else lives in src/host.

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

/** Window closed or reloaded: every trainer is asked to stop with a checkpoint (a short grace, then a kill). */
export async function deactivate(): Promise<void> {
  const a = app;
  app = undefined;
  if (!a) return;
  await a.shutdown();
  a.dispose();
}
