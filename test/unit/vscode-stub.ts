// A stand-in for the `vscode` module in unit tests (vitest aliases 'vscode' to this file). Each
// namespace is typed as a Pick of the real API, so a call the host makes with a wrong signature
// fails to type-check here too. It records what the host did (registered commands, shown messages,
// diagnostics) for the tests to inspect.

import type * as vscode from 'vscode';

type Listener<T> = (e: T) => unknown;

export class EventEmitter<T> implements vscode.EventEmitter<T> {
  private ls = new Set<Listener<T>>();
  event: vscode.Event<T> = (l: Listener<T>) => {
    this.ls.add(l);
    return { dispose: () => this.ls.delete(l) };
  };
  fire(e: T): void {
    for (const l of [...this.ls]) l(e);
  }
  dispose(): void {
    this.ls.clear();
  }
}

export class Disposable {
  constructor(private fn: () => void) {}
  static from(...ds: { dispose(): unknown }[]): Disposable {
    return new Disposable(() => ds.forEach((d) => d.dispose()));
  }
  dispose(): void {
    this.fn();
  }
}

export class Position {
  constructor(
    readonly line: number,
    readonly character: number,
  ) {}
  isBefore(o: Position): boolean {
    return this.line < o.line || (this.line === o.line && this.character < o.character);
  }
  isAfter(o: Position): boolean {
    return o.isBefore(this);
  }
}

export class Range {
  readonly start: Position;
  readonly end: Position;
  constructor(a: number | Position, b: number | Position, c?: number, d?: number) {
    this.start = typeof a === 'number' ? new Position(a, b as number) : a;
    this.end = typeof a === 'number' ? new Position(c!, d!) : (b as Position);
  }
  intersection(o: Range): Range | undefined {
    const start = this.start.isBefore(o.start) ? o.start : this.start;
    const end = this.end.isBefore(o.end) ? this.end : o.end;
    return start.isAfter(end) ? undefined : new Range(start, end);
  }
}

export class Selection extends Range {
  constructor(
    readonly anchor: Position,
    readonly active: Position,
  ) {
    super(anchor, active);
  }
}

export enum DiagnosticSeverity {
  Error = 0,
  Warning = 1,
  Information = 2,
  Hint = 3,
}

export class Diagnostic {
  source?: string;
  code?: string | number;
  constructor(
    public range: Range,
    public message: string,
    public severity: DiagnosticSeverity = DiagnosticSeverity.Error,
  ) {}
}

export class CodeLens {
  constructor(
    public range: Range,
    public command?: vscode.Command,
  ) {}
  get isResolved(): boolean {
    return !!this.command;
  }
}

export class CodeActionKind {
  static readonly QuickFix = new CodeActionKind('quickfix');
  constructor(readonly value: string) {}
}

export class WorkspaceEdit {
  readonly edits: { uri: Uri; range: Range; text: string }[] = [];
  replace(uri: Uri, range: Range, text: string): void {
    this.edits.push({ uri, range, text });
  }
}

export class CodeAction {
  edit?: WorkspaceEdit;
  diagnostics?: Diagnostic[];
  isPreferred?: boolean;
  constructor(
    public title: string,
    public kind?: CodeActionKind,
  ) {}
}

export class Uri {
  private constructor(
    readonly scheme: string,
    readonly fsPath: string,
  ) {}
  static file(p: string): Uri {
    return new Uri('file', p);
  }
  static joinPath(base: Uri, ...parts: string[]): Uri {
    return new Uri(base.scheme, [base.fsPath, ...parts].join('/'));
  }
  get path(): string {
    return this.fsPath;
  }
  toString(): string {
    return `${this.scheme}://${this.fsPath}`;
  }
}

export enum ViewColumn {
  Active = -1,
  Beside = -2,
  One = 1,
}
export enum StatusBarAlignment {
  Left = 1,
  Right = 2,
}
export enum ProgressLocation {
  SourceControl = 1,
  Window = 10,
  Notification = 15,
}
export enum TextEditorRevealType {
  Default = 0,
  InCenter = 1,
  InCenterIfOutsideViewport = 2,
  AtTop = 3,
}
export enum ConfigurationTarget {
  Global = 1,
  Workspace = 2,
  WorkspaceFolder = 3,
}

// ---- recorded state -----------------------------------------------------------------------------

export const recorded = {
  commands: new Map<string, (...args: unknown[]) => unknown>(),
  messages: [] as { level: string; text: string }[],
  diagnostics: new Map<string, Diagnostic[]>(),
  output: [] as string[],
  codeLensProviders: [] as vscode.CodeLensProvider[],
  settings: {} as Record<string, unknown>,
  trusted: true,
  /** answers the next shown messages return (a modal's chosen button), in order */
  answers: [] as (string | undefined)[],
  viewProviders: new Map<string, vscode.WebviewViewProvider>(),
  /** documents shown with showTextDocument, and the editors' selections */
  shown: [] as { file: string; line?: number }[],
  applied: [] as { file: string; text: string }[],
  /** file system watchers: fire their events to simulate changes on disk */
  watchers: [] as { glob: string; create: EventEmitter<Uri>; change: EventEmitter<Uri>; delete: EventEmitter<Uri> }[],
  /** webview panels created, with what the host posted to each and a way to send it messages */
  panels: [] as StubPanel[],
};

export interface StubPanel {
  viewType: string;
  title: string;
  posted: unknown[];
  /** a message from the webview to the host */
  receive(m: unknown): void;
  disposed: boolean;
}

function webviewPanel(viewType: string, title: string): vscode.WebviewPanel {
  const listeners = new Set<(m: unknown) => unknown>();
  const disposers = new Set<() => unknown>();
  const rec: StubPanel = { viewType, title, posted: [], receive: (m) => listeners.forEach((l) => l(m)), disposed: false };
  recorded.panels.push(rec);
  const panel = {
    viewType,
    title,
    iconPath: undefined as unknown,
    webview: {
      html: '',
      options: {},
      cspSource: 'vscode-webview://stub',
      asWebviewUri: (u: Uri) => u,
      postMessage: async (m: unknown) => {
        rec.posted.push(JSON.parse(JSON.stringify(m)));
        return true;
      },
      onDidReceiveMessage: (l: (m: unknown) => unknown) => {
        listeners.add(l);
        return new Disposable(() => listeners.delete(l));
      },
    },
    reveal: () => undefined,
    onDidDispose: (l: () => unknown) => {
      disposers.add(l);
      return new Disposable(() => disposers.delete(l));
    },
    dispose: () => {
      rec.disposed = true;
      disposers.forEach((l) => l());
    },
  };
  return panel as unknown as vscode.WebviewPanel;
}

export class TextDocument {
  isDirty = false;
  constructor(
    readonly uri: Uri,
    private text: string,
  ) {}
  getText(): string {
    return this.text;
  }
  setText(t: string): void {
    this.text = t;
  }
  positionAt(offset: number): Position {
    const before = this.text.slice(0, offset).split('\n');
    return new Position(before.length - 1, before[before.length - 1].length);
  }
  get lineCount(): number {
    return this.text.split('\n').length;
  }
  async save(): Promise<boolean> {
    return true;
  }
}

const openDocs: TextDocument[] = [];

/** A model file read from disk (saving writes it back), or the open document of that file. */
async function openTextDocument(u: Uri): Promise<TextDocument> {
  const open = openDocs.find((d) => d.uri.fsPath === u.fsPath);
  if (open) return open;
  const fs = await import('node:fs');
  const text = fs.readFileSync(u.fsPath, 'utf8');
  let d = diskDocs.get(u.fsPath);
  if (d && !d.isDirty) d.setText(text);
  if (!d) {
    const doc = (d = new TextDocument(u, text));
    doc.save = async () => {
      fs.writeFileSync(u.fsPath, doc.getText());
      doc.isDirty = false;
      return true;
    };
    diskDocs.set(u.fsPath, doc);
  }
  return d;
}
const diskDocs = new Map<string, TextDocument>();

function relativePath(f: string): string {
  const root: string | undefined = stubFolders.root;
  return root && f.startsWith(root + '/') ? f.slice(root.length + 1) : f;
}

/** the workspace root asRelativePath uses (tests set it) */
export const stubFolders: { root?: string } = {};
const onOpen = new EventEmitter<TextDocument>();
const onChange = new EventEmitter<{ document: TextDocument }>();
const onClose = new EventEmitter<TextDocument>();

export function openDocument(file: string, text: string): TextDocument {
  const d = new TextDocument(Uri.file(file), text);
  openDocs.push(d);
  onOpen.fire(d);
  return d;
}

const message =
  (level: string) =>
  async (text: string): Promise<string | undefined> => {
    recorded.messages.push({ level, text });
    return recorded.answers.shift();
  };

function statusBarItem() {
  return { text: '', tooltip: '', name: '', command: undefined as unknown, accessibilityInformation: undefined as unknown, visible: false, show() { this.visible = true; }, hide() { this.visible = false; }, dispose() {} };
}

export const window = {
  createOutputChannel: ((name: string) => ({
    name,
    appendLine: (l: string) => void recorded.output.push(l),
    append: (l: string) => void recorded.output.push(l),
    show: () => undefined,
    dispose: () => undefined,
  })) as unknown as typeof vscode.window.createOutputChannel,
  createStatusBarItem: (() => statusBarItem()) as unknown as typeof vscode.window.createStatusBarItem,
  showErrorMessage: message('error') as unknown as typeof vscode.window.showErrorMessage,
  showWarningMessage: message('warn') as unknown as typeof vscode.window.showWarningMessage,
  showInformationMessage: message('info') as unknown as typeof vscode.window.showInformationMessage,
  setStatusBarMessage: ((text: string) => {
    recorded.messages.push({ level: 'status', text });
    return new Disposable(() => undefined);
  }) as unknown as typeof vscode.window.setStatusBarMessage,
  withProgress: (async (_o: unknown, task: (p: { report(): void }, t: { onCancellationRequested: vscode.Event<void> }) => Promise<unknown>) =>
    task({ report: () => undefined }, { onCancellationRequested: new EventEmitter<void>().event })) as unknown as typeof vscode.window.withProgress,
  registerWebviewPanelSerializer: (() => new Disposable(() => undefined)) as typeof vscode.window.registerWebviewPanelSerializer,
  activeTextEditor: undefined as vscode.TextEditor | undefined,
  showQuickPick: (async () => undefined) as unknown as typeof vscode.window.showQuickPick,
  showInputBox: (async () => undefined) as typeof vscode.window.showInputBox,
  createWebviewPanel: ((viewType: string, title: string) => webviewPanel(viewType, title)) as unknown as typeof vscode.window.createWebviewPanel,
  registerWebviewViewProvider: ((id: string, p: vscode.WebviewViewProvider) => {
    recorded.viewProviders.set(id, p);
    return new Disposable(() => recorded.viewProviders.delete(id));
  }) as typeof vscode.window.registerWebviewViewProvider,
  showTextDocument: (async (d: TextDocument | Uri) => {
    const doc = d instanceof Uri ? await openTextDocument(d) : d;
    const entry: { file: string; line?: number } = { file: doc.uri.fsPath };
    recorded.shown.push(entry);
    return {
      document: doc,
      set selection(s: Selection) {
        entry.line = s.active.line;
      },
      revealRange: () => undefined,
    };
  }) as unknown as typeof vscode.window.showTextDocument,
} satisfies Partial<typeof vscode.window>;

export const languages = {
  createDiagnosticCollection: ((name?: string) => ({
    name: name ?? '',
    set: (uri: Uri, diags: Diagnostic[]) => void recorded.diagnostics.set(uri.fsPath, diags),
    delete: (uri: Uri) => void recorded.diagnostics.delete(uri.fsPath),
    get: (uri: Uri) => recorded.diagnostics.get(uri.fsPath),
    dispose: () => undefined,
  })) as unknown as typeof vscode.languages.createDiagnosticCollection,
  registerCodeLensProvider: ((_s: unknown, p: vscode.CodeLensProvider) => {
    recorded.codeLensProviders.push(p);
    return new Disposable(() => undefined);
  }) as typeof vscode.languages.registerCodeLensProvider,
  registerCodeActionsProvider: (() => new Disposable(() => undefined)) as typeof vscode.languages.registerCodeActionsProvider,
  registerHoverProvider: (() => new Disposable(() => undefined)) as typeof vscode.languages.registerHoverProvider,
} satisfies Partial<typeof vscode.languages>;

/** A glob relative to a folder (the watcher records it as `<base>/<pattern>`). */
export class RelativePattern {
  readonly baseUri: Uri;
  constructor(
    base: Uri | string,
    readonly pattern: string,
  ) {
    this.baseUri = typeof base === 'string' ? Uri.file(base) : base;
  }
}

const onConfig = new EventEmitter<{ affectsConfiguration(section: string): boolean }>();
/** fires workspace.onDidChangeConfiguration for these settings (as `gatelab.runsFolder`) */
export function changeSettings(values: Record<string, unknown>): void {
  Object.assign(recorded.settings, Object.fromEntries(Object.entries(values).map(([k, v]) => [k.replace(/^gatelab\./, ''), v])));
  onConfig.fire({ affectsConfiguration: (section) => Object.keys(values).some((k) => k === section || k.startsWith(section + '.')) });
}

export const workspace = {
  onDidChangeConfiguration: onConfig.event as unknown as typeof vscode.workspace.onDidChangeConfiguration,
  onDidOpenTextDocument: onOpen.event as unknown as typeof vscode.workspace.onDidOpenTextDocument,
  onDidChangeTextDocument: onChange.event as unknown as typeof vscode.workspace.onDidChangeTextDocument,
  onDidCloseTextDocument: onClose.event as unknown as typeof vscode.workspace.onDidCloseTextDocument,
  get textDocuments() {
    return openDocs as unknown as vscode.TextDocument[];
  },
  get isTrusted() {
    return recorded.trusted;
  },
  getConfiguration: (() => ({
    get: (k: string) => recorded.settings[k],
    update: async (k: string, v: unknown) => {
      recorded.settings[k] = v;
    },
  })) as unknown as typeof vscode.workspace.getConfiguration,
  findFiles: (async () => []) as unknown as typeof vscode.workspace.findFiles,
  createFileSystemWatcher: ((pattern: string | RelativePattern) => {
    const glob = typeof pattern === 'string' ? pattern : `${pattern.baseUri.fsPath}/${pattern.pattern}`;
    const w = { glob, create: new EventEmitter<Uri>(), change: new EventEmitter<Uri>(), delete: new EventEmitter<Uri>() };
    recorded.watchers.push(w);
    return {
      onDidCreate: w.create.event,
      onDidChange: w.change.event,
      onDidDelete: w.delete.event,
      dispose: () => recorded.watchers.splice(recorded.watchers.indexOf(w), 1),
    };
  }) as unknown as typeof vscode.workspace.createFileSystemWatcher,
  asRelativePath: ((p: string | Uri) => relativePath(typeof p === 'string' ? p : p.fsPath)) as typeof vscode.workspace.asRelativePath,
  openTextDocument: ((u: Uri) => openTextDocument(u)) as unknown as typeof vscode.workspace.openTextDocument,
  applyEdit: (async (e: WorkspaceEdit) => {
    for (const x of e.edits) {
      const d = await openTextDocument(x.uri);
      const lines = d.getText().split('\n');
      const off = (p: Position) => lines.slice(0, p.line).reduce((n, l) => n + l.length + 1, 0) + p.character;
      d.setText(d.getText().slice(0, off(x.range.start)) + x.text + d.getText().slice(off(x.range.end)));
      d.isDirty = true;
      recorded.applied.push({ file: x.uri.fsPath, text: d.getText() });
    }
    return true;
  }) as unknown as typeof vscode.workspace.applyEdit,
  workspaceFolders: undefined as vscode.WorkspaceFolder[] | undefined,
} satisfies Partial<typeof vscode.workspace>;

export const commands = {
  registerCommand: ((id: string, fn: (...args: unknown[]) => unknown) => {
    if (recorded.commands.has(id)) throw new Error(`command ${id} registered twice`);
    recorded.commands.set(id, fn);
    return new Disposable(() => recorded.commands.delete(id));
  }) as typeof vscode.commands.registerCommand,
  executeCommand: (async (id: string, ...args: unknown[]) => recorded.commands.get(id)?.(...args)) as typeof vscode.commands.executeCommand,
} satisfies Partial<typeof vscode.commands>;
