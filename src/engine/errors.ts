// Errors a user can fix (bad model file, bad arguments, bad data) versus runtime failures.
// A UserError names where the problem is (file, line, column, key) and what to do; the CLI prints
// it without a stack trace and exits 2.

export interface Where {
  file?: string;
  /** 1-based */
  line?: number;
  /** 1-based */
  column?: number;
  /** dotted key path in a model file (`train.optimizer.learningRate`) or a CLI argument (`--steps`) */
  key?: string;
}

export class UserError extends Error {
  readonly where: Where;
  readonly hint?: string;
  constructor(message: string, where: Where = {}, hint?: string) {
    super(message);
    this.name = 'UserError';
    this.where = where;
    this.hint = hint;
  }

  /** `file:line:col: key: message. hint` */
  format(): string {
    return formatProblem(this.message, this.where, this.hint);
  }
}

export function formatProblem(message: string, where: Where, hint?: string): string {
  let loc = '';
  if (where.file) {
    loc = where.file;
    if (where.line) loc += `:${where.line}` + (where.column ? `:${where.column}` : '');
    loc += ': ';
  }
  const key = where.key ? `${where.key}: ` : '';
  return `${loc}${key}${message}${hint ? ` (${hint})` : ''}`;
}

/** Several problems at once (e.g. every schema violation of a model file). */
export class UserErrors extends UserError {
  constructor(readonly problems: UserError[]) {
    super(problems.map((p) => p.format()).join('\n'), problems[0]?.where ?? {});
  }
  override format(): string {
    return this.problems.map((p) => p.format()).join('\n');
  }
}

export function isUserError(e: unknown): e is UserError {
  return e instanceof UserError;
}

/** A read of a large file given up because a stop was asked for (the run ends stopped, not failed). */
export class Cancelled extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Cancelled';
  }
}
