// Equation-defined cells (`type: cell`): the gate equations as the user writes them in the model
// file, parsed and checked into a CellSpec that the engine builds (./eqcell.ts). Pure: no graph, no
// file; every problem carries the offset and length of the token at fault inside its equation string,
// so the model-file loader can turn it into a diagnostic at that exact line and column.
//
// Grammar (per equation, evaluated top to bottom at every step):
//   sum     := product (('+' | '-') product)*
//   product := unary ('*' unary)*
//   unary   := '-' unary | apply
//   apply   := Matrix apply | atom              Matrix: an identifier beginning with an uppercase letter
//   atom    := number | name | fn '(' sum (',' sum)* ')' | '(' sum ')'
// Names: `x` is the layer input at this step; a state not yet assigned in this step is its previous
// value, after its equation its new value; other lowercase names are earlier equations; `b`, `b_<n>`
// are learned biases [H], `p`, `p_<n>` learned per-unit vectors [H]. Parameters belong to their
// equation: `f`'s `W` is `cell.l{k}.f.W`.

export type FnName = 'sigmoid' | 'tanh' | 'relu' | 'hardsigmoid' | 'softsign';
export const CELL_FUNCTIONS: readonly FnName[] = ['sigmoid', 'tanh', 'relu', 'hardsigmoid', 'softsign'];

/** Where a node sits in its equation string: offset and length in UTF-16 units. */
export interface Span {
  at: number;
  len: number;
}

export type Expr = Span &
  (
    | { k: 'num'; v: number }
    /** x, a state's previous or new value, or an earlier equation */
    | { k: 'ref'; name: string; ref: 'x' | 'prev' | 'eq' }
    | { k: 'param'; name: string; kind: 'b' | 'p' }
    | { k: 'mat'; name: string; arg: Expr }
    | { k: 'call'; fn: FnName; args: Expr[] }
    | { k: 'neg'; a: Expr }
    | { k: 'bin'; op: '+' | '-' | '*'; a: Expr; b: Expr }
  );

export interface Equation {
  name: string;
  expr: Expr;
  /** the equation as written */
  src?: string;
}

export interface CellSpec {
  equations: Equation[];
  /** the carried states, h among them (the layer's output) */
  states: string[];
  /** constants for named parameters, `f.b` → 1 */
  init: Record<string, number>;
}

/** A parameter of one equation: a matrix [H, width of its operand], a bias or a per-unit vector [H]. */
export interface CellParam {
  /** `<equation>.<name>`, e.g. `f.W` */
  key: string;
  kind: 'matrix' | 'b' | 'p';
  /** matrices: whether the operand is the layer input's width (x) or the hidden width */
  width?: 'in' | 'hidden';
}

/** One problem: where it is (a key of the cell layer and a span inside that key's string), what to do. */
export interface CellProblem {
  message: string;
  hint?: string;
  /** 'equations.<name>' (inside the equation string: `span`), 'equations.<name>' key, 'state.<i>', 'state', 'init.<key>' */
  key: string;
  /** a span inside the equation string (absent: the key itself is at fault) */
  span?: Span;
  /** the key itself (the equation's name) rather than its value */
  atKey?: boolean;
}

type Tok = Span & ({ t: 'num'; v: number } | { t: 'id'; s: string } | { t: 'op'; s: string } | { t: 'end' });

class ParseError extends Error {
  constructor(
    message: string,
    readonly span: Span,
    readonly hint?: string,
  ) {
    super(message);
  }
}

function tokenize(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const ch = src[i];
    if (/\s/.test(ch)) {
      i++;
      continue;
    }
    const num = /^(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?/.exec(src.slice(i));
    if (num) {
      out.push({ t: 'num', v: Number(num[0]), at: i, len: num[0].length });
      i += num[0].length;
      continue;
    }
    const id = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i));
    if (id) {
      out.push({ t: 'id', s: id[0], at: i, len: id[0].length });
      i += id[0].length;
      continue;
    }
    if ('+-*(),'.includes(ch)) {
      out.push({ t: 'op', s: ch, at: i, len: 1 });
      i++;
      continue;
    }
    const hint =
      ch === '/' ? 'division is not an operator of the cell language: multiply instead (e.g. 0.5 * a)' : ch === '^' ? 'no powers: write the product (a * a)' : ch === '@' ? 'a matrix is applied by writing it before its operand: W x' : 'operators are + - * and parentheses';
    throw new ParseError(`unexpected character "${ch}"`, { at: i, len: 1 }, hint);
  }
  out.push({ t: 'end', at: src.length, len: 0 });
  return out;
}

const isMatrixName = (s: string) => /^[A-Z]/.test(s);
const paramKind = (s: string): 'b' | 'p' | undefined => (/^b(_[A-Za-z0-9_]+)?$/.test(s) ? 'b' : /^p(_[A-Za-z0-9_]+)?$/.test(s) ? 'p' : undefined);

/** A raw parse: names unresolved (`ref` nodes carry ref 'eq' until resolve). */
function parseExpr(src: string): Expr {
  const toks = tokenize(src);
  let pos = 0;
  const peek = () => toks[pos];
  const isOp = (s: string) => {
    const t = peek();
    return t.t === 'op' && t.s === s;
  };
  const spanOf = (a: Span, b: Span): Span => ({ at: a.at, len: b.at + b.len - a.at });
  const describe = (t: Tok) => (t.t === 'end' ? 'the end of the equation' : t.t === 'num' ? `the number ${src.slice(t.at, t.at + t.len)}` : `"${src.slice(t.at, t.at + t.len)}"`);
  const startsOperand = (t: Tok) => t.t === 'num' || t.t === 'id' || (t.t === 'op' && t.s === '(');

  function sum(): Expr {
    let a = product();
    while (isOp('+') || isOp('-')) {
      const op = (peek() as { s: string }).s as '+' | '-';
      pos++;
      const b = product();
      a = { k: 'bin', op, a, b, ...spanOf(a, b) };
    }
    return a;
  }
  function product(): Expr {
    let a = unary();
    while (isOp('*')) {
      pos++;
      const b = unary();
      a = { k: 'bin', op: '*', a, b, ...spanOf(a, b) };
    }
    // two operands side by side with no operator: say where the operator is missing
    const t = peek();
    if (startsOperand(t) && !(t.t === 'op')) {
      const prev = toks[pos - 1];
      const word = src.slice(t.at, t.at + t.len);
      throw new ParseError(
        `missing operator before ${describe(t)}`,
        t,
        prev.t === 'id' && !isMatrixName(prev.s) && /^[a-z]/.test(prev.s)
          ? `write ${prev.s} * ${word}; only a matrix (a name beginning with an uppercase letter) is applied by juxtaposition, as in W ${word}`
          : `write + - or * between the operands`,
      );
    }
    return a;
  }
  function unary(): Expr {
    const t = peek();
    if (t.t === 'op' && t.s === '-') {
      pos++;
      const a = unary();
      return { k: 'neg', a, ...spanOf(t, a) };
    }
    if (t.t === 'op' && t.s === '+') throw new ParseError('unexpected "+"', t, 'a unary plus is not needed: remove it');
    return apply();
  }
  function apply(): Expr {
    const t = peek();
    if (t.t === 'id' && isMatrixName(t.s)) {
      pos++;
      const n = peek();
      if (!startsOperand(n))
        throw new ParseError(`the matrix ${t.s} needs an operand`, t, `a name beginning with an uppercase letter is a learned matrix: write it before what it multiplies, e.g. ${t.s} x or ${t.s} h`);
      const arg = apply();
      return { k: 'mat', name: t.s, arg, ...spanOf(t, arg) };
    }
    return atom();
  }
  function atom(): Expr {
    const t = peek();
    if (t.t === 'num') {
      pos++;
      return { k: 'num', v: t.v, at: t.at, len: t.len };
    }
    if (t.t === 'op' && t.s === '(') {
      pos++;
      const e = sum();
      if (!isOp(')')) throw new ParseError(`expected ")" before ${describe(peek())}`, peek().t === 'end' ? t : peek(), `close the parenthesis opened at column ${t.at + 1} of the equation`);
      const close = peek();
      pos++;
      return { ...e, at: t.at, len: close.at + 1 - t.at };
    }
    if (t.t === 'id') {
      pos++;
      if (isOp('(')) {
        const open = peek();
        pos++;
        const args = [sum()];
        while (isOp(',')) {
          pos++;
          args.push(sum());
        }
        if (!isOp(')')) throw new ParseError(`expected ")" or "," before ${describe(peek())}`, peek().t === 'end' ? open : peek(), `close the call of ${t.s}`);
        const close = peek();
        pos++;
        if (!(CELL_FUNCTIONS as readonly string[]).includes(t.s)) {
          const guess = nearest(t.s, CELL_FUNCTIONS);
          throw new ParseError(`unknown function "${t.s}"`, t, guess ? `did you mean \`${guess}\`? (functions: ${CELL_FUNCTIONS.join(', ')})` : `functions: ${CELL_FUNCTIONS.join(', ')}`);
        }
        return { k: 'call', fn: t.s as FnName, args, at: t.at, len: close.at + 1 - t.at };
      }
      const pk = paramKind(t.s);
      if (pk) return { k: 'param', name: t.s, kind: pk, at: t.at, len: t.len };
      return { k: 'ref', name: t.s, ref: 'eq', at: t.at, len: t.len };
    }
    if (t.t === 'end') throw new ParseError('the equation ends too early', t.at > 0 ? { at: t.at - 1, len: 1 } : t, 'an operand is missing at the end');
    throw new ParseError(`unexpected ${describe(t)}`, t, t.t === 'op' && t.s === ')' ? 'this parenthesis closes nothing' : 'an operand (a name, a number or a parenthesis) is expected here');
  }

  if (peek().t === 'end') throw new ParseError('the equation is empty', { at: 0, len: 0 }, 'write an expression, e.g. sigmoid(W x + U h + b)');
  const e = sum();
  const rest = peek();
  if (rest.t !== 'end') throw new ParseError(`unexpected ${describe(rest)}`, rest, rest.t === 'op' && rest.s === ')' ? 'this parenthesis closes nothing' : 'write + - or * between the operands');
  return e;
}

/** Damerau–Levenshtein-ish nearest word (at most 2 edits, or a case difference). */
function nearest(word: string, options: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const o of options) {
    const d = dist(word.toLowerCase(), o.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = o;
    }
  }
  return bestD <= Math.max(1, Math.min(2, Math.floor(word.length / 2))) ? best : undefined;
}
function dist(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 0; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.length][b.length];
}

/** Widths: the layer input's ('in'), the hidden units' ('hidden'), or a scalar constant. */
type Width = 'in' | 'hidden' | 'scalar';

export interface CellCheck {
  spec?: CellSpec;
  problems: CellProblem[];
}

const RESERVED = new Set(['x', ...CELL_FUNCTIONS]);

/**
 * Parses and checks a cell layer's `equations` (in file order), `state` and `init`. Returns the spec
 * when there is no problem; otherwise every problem found (one per equation at most for syntax).
 */
export function checkCell(equations: [string, string][], states: string[], init: Record<string, number> = {}): CellCheck {
  const problems: CellProblem[] = [];
  const eqKey = (n: string) => `equations.${n}`;
  const names = equations.map(([n]) => n);
  // equation names
  for (const [n] of equations) {
    if (!/^[a-z][A-Za-z0-9_]*$/.test(n))
      problems.push({ message: `"${n}" cannot name an equation`, key: eqKey(n), atKey: true, hint: isMatrixName(n) ? 'names beginning with an uppercase letter are learned matrices: use a lowercase name' : 'use a lowercase name such as f or n' });
    else if (RESERVED.has(n) || paramKind(n))
      problems.push({ message: `"${n}" cannot name an equation`, key: eqKey(n), atKey: true, hint: n === 'x' ? 'x is the layer input' : paramKind(n) ? `${n} is a learned ${paramKind(n) === 'b' ? 'bias' : 'per-unit vector'}; give the equation another name` : `${n} is a function` });
  }
  // states
  if (states.length === 0) problems.push({ message: 'a cell needs at least one state', key: 'state', hint: 'list the carried states, e.g. state: [h]' });
  states.forEach((s, i) => {
    if (!names.includes(s)) {
      const guess = nearest(s, names);
      problems.push({ message: `the state ${s} is never assigned`, key: `state.${i}`, hint: guess ? `did you mean \`${guess}\`? or add an equation ${s}: …` : `add an equation ${s}: … (a state is carried to the next step)` });
    }
    if (states.indexOf(s) !== i) problems.push({ message: `the state ${s} is listed twice`, key: `state.${i}`, hint: 'remove one of them' });
  });
  if (states.length > 0 && !states.includes('h')) problems.push({ message: 'the cell has no state h', key: 'state', hint: "h is the layer's output: name the output state h and list it under state" });
  if (states.length > 2) problems.push({ message: `a cell carries at most two states (h and one more); this one lists ${states.length}`, key: 'state', hint: 'combine the others into the equations, or carry them in one state' });

  const parsed: Equation[] = [];
  const assigned = new Set<string>();
  const used = new Set<string>();
  const params: Map<string, CellParam> = new Map();
  const constantEqs = new Set<string>();
  let xRead = false;
  for (const [name, src] of equations) {
    let expr: Expr;
    try {
      expr = parseExpr(String(src));
    } catch (e) {
      if (!(e instanceof ParseError)) throw e;
      problems.push({ message: `syntax error: ${e.message}`, key: eqKey(name), span: e.span, hint: e.hint });
      assigned.add(name);
      continue;
    }
    const before = problems.length;
    // resolve names, check widths
    const widthOf = (e: Expr): Width => {
      switch (e.k) {
        case 'num':
          return 'scalar';
        case 'param':
          params.set(`${name}.${e.name}`, { key: `${name}.${e.name}`, kind: e.kind });
          return 'hidden';
        case 'ref': {
          if (e.name === 'x') {
            e.ref = 'x';
            return 'in';
          }
          if (e.name === name && !states.includes(name)) {
            problems.push({ message: `${name} uses itself`, key: eqKey(name), span: e, hint: `only a state has a previous value: list ${name} under state to carry it between steps` });
            return 'hidden';
          }
          if (states.includes(e.name) && !assigned.has(e.name)) {
            e.ref = 'prev';
            used.add(`prev:${e.name}`);
            return 'hidden';
          }
          if (assigned.has(e.name)) {
            e.ref = 'eq';
            used.add(e.name);
            return 'hidden';
          }
          if (names.includes(e.name)) {
            problems.push({ message: `${e.name} is used before it is defined`, key: eqKey(name), span: e, hint: `move the equation ${e.name} above ${name}, or list ${e.name} under state to use its previous value` });
            return 'hidden';
          }
          const candidates = ['x', ...states, ...[...assigned]];
          const guess = nearest(e.name, [...new Set(candidates)]);
          problems.push({ message: `unknown name "${e.name}"`, key: eqKey(name), span: e, hint: guess ? `did you mean \`${guess}\`?` : `names here: ${[...new Set(candidates)].join(', ')}, b/b_<name> (bias), p/p_<name> (per-unit vector), or a matrix (uppercase) before an operand` });
          return 'hidden';
        }
        case 'mat': {
          const w = widthOf(e.arg);
          if (w === 'scalar') problems.push({ message: `the matrix ${e.name} is applied to a constant`, key: eqKey(name), span: e, hint: 'apply a matrix to a vector (x, a state, an equation)' });
          const key = `${name}.${e.name}`;
          const prev = params.get(key);
          const width = w === 'in' ? 'in' : 'hidden';
          if (prev && prev.width !== width)
            problems.push({ message: `the matrix ${e.name} of ${name} is applied to operands of different widths`, key: eqKey(name), span: { at: e.at, len: e.name.length }, hint: `give each matrix its own name (e.g. W x + U h)` });
          else params.set(key, { key, kind: 'matrix', width });
          return 'hidden';
        }
        case 'call': {
          const ws = e.args.map(widthOf);
          const nargs = e.fn === 'hardsigmoid' ? [1, 3] : [1, 1];
          if (e.args.length < nargs[0] || e.args.length > nargs[1])
            problems.push({ message: `${e.fn} takes ${e.fn === 'hardsigmoid' ? '1 or 3 arguments (z, slope, offset)' : 'one argument'}`, key: eqKey(name), span: e, hint: e.fn === 'hardsigmoid' ? 'e.g. hardsigmoid(W x + U h + b, 0.2, 0.5)' : `e.g. ${e.fn}(W x + U h + b)` });
          if (e.fn === 'hardsigmoid')
            e.args.slice(1).forEach((a) => {
              if (constValue(a) === undefined) problems.push({ message: 'the slope and offset of hardsigmoid must be numbers', key: eqKey(name), span: a, hint: 'e.g. hardsigmoid(z, 0.2, 0.5)' });
            });
          return ws[0];
        }
        case 'neg':
          return widthOf(e.a);
        case 'bin': {
          const a = widthOf(e.a);
          const b = widthOf(e.b);
          if ((a === 'in' && b === 'hidden') || (a === 'hidden' && b === 'in')) {
            const xSide = a === 'in' ? e.a : e.b;
            problems.push({ message: 'x has the width of the layer input, the other operand the hidden width', key: eqKey(name), span: xSide, hint: 'bring x to the hidden width with a matrix first: W x' });
            return 'hidden';
          }
          return a === 'scalar' ? b : a;
        }
      }
    };
    const w = widthOf(expr);
    if (problems.length === before) {
      if (w === 'in') problems.push({ message: `${name} has the width of the layer input`, key: eqKey(name), span: expr, hint: 'an equation gives a vector of hidden units: apply a matrix, e.g. W x' });
      else if (w === 'scalar') problems.push({ message: `${name} is a constant`, key: eqKey(name), span: expr, hint: 'an equation gives a vector of hidden units; use the number where it is needed instead' });
    }
    if (problems.length === before) {
      // what varies from step to step: x, a state, an equation that does; a matrix of something
      // constant, or an equation of parameters alone, is a bias written the long way
      const varies = (e: Expr): boolean =>
        e.k === 'ref' ? (e.ref === 'eq' ? !constantEqs.has(e.name) : true) : e.k === 'mat' ? varies(e.arg) : e.k === 'call' ? e.args.some(varies) : e.k === 'neg' ? varies(e.a) : e.k === 'bin' ? varies(e.a) || varies(e.b) : false;
      const walkMats = (e: Expr): void => {
        if (e.k === 'mat') {
          if (!varies(e.arg)) problems.push({ message: `the matrix ${e.name} is applied to something that does not change from step to step`, key: eqKey(name), span: e, hint: 'a matrix of a constant is a bias: write b instead' });
          walkMats(e.arg);
        } else if (e.k === 'call') e.args.forEach(walkMats);
        else if (e.k === 'neg') walkMats(e.a);
        else if (e.k === 'bin') {
          walkMats(e.a);
          walkMats(e.b);
        }
      };
      walkMats(expr);
      if (!varies(expr)) {
        constantEqs.add(name);
        problems.push({ message: `${name} depends on neither x nor a state`, key: eqKey(name), span: expr, hint: 'it would be the same at every step: use a bias b in the equations that need it' });
      }
      const readsX = (e: Expr): boolean => (e.k === 'ref' ? e.ref === 'x' : e.k === 'mat' ? readsX(e.arg) : e.k === 'call' ? e.args.some(readsX) : e.k === 'neg' ? readsX(e.a) : e.k === 'bin' ? readsX(e.a) || readsX(e.b) : false);
      if (readsX(expr)) xRead = true;
    }
    parsed.push({ name, expr, src: String(src).trim() });
    assigned.add(name);
  }
  if (!xRead && problems.length === 0 && equations.length > 0)
    problems.push({ message: 'the cell never reads its input x', key: `equations.${equations[0][0]}`, span: { at: 0, len: String(equations[0][1]).length }, hint: 'apply a matrix to x in at least one equation, e.g. W x' });
  // unused equations: neither a state nor read by a later equation
  for (const [name] of equations) {
    if (!states.includes(name) && !used.has(name) && parsed.some((e) => e.name === name))
      problems.push({ message: `the equation ${name} is never used`, key: eqKey(name), atKey: true, hint: `use ${name} in a later equation or in a state's equation, list it under state, or remove it` });
  }
  // init: known parameters, numbers
  for (const [k, v] of Object.entries(init)) {
    if (!params.has(k)) {
      const guess = nearest(k, [...params.keys()]);
      problems.push({ message: `init: the cell has no parameter ${k}`, key: `init.${k}`, atKey: true, hint: guess ? `did you mean \`${guess}\`?` : `parameters: ${[...params.keys()].join(', ')}` });
    } else if (typeof v !== 'number' || !Number.isFinite(v)) problems.push({ message: `init: ${k} must be a number`, key: `init.${k}`, hint: 'e.g. f.b: 1' });
  }
  if (problems.length) return { problems };
  return { spec: { equations: parsed, states, init }, problems };
}

/** A literal number, possibly negated. */
export function constValue(e: Expr): number | undefined {
  if (e.k === 'num') return e.v;
  if (e.k === 'neg') {
    const v = constValue(e.a);
    return v === undefined ? undefined : -v;
  }
  return undefined;
}

/** Every parameter of a checked spec, in the order they first appear (equation by equation). */
export function cellParams(spec: CellSpec): CellParam[] {
  const out = new Map<string, CellParam>();
  const walk = (eq: string, e: Expr): void => {
    if (e.k === 'param') {
      if (!out.has(`${eq}.${e.name}`)) out.set(`${eq}.${e.name}`, { key: `${eq}.${e.name}`, kind: e.kind });
    } else if (e.k === 'mat') {
      walk(eq, e.arg);
      if (!out.has(`${eq}.${e.name}`)) out.set(`${eq}.${e.name}`, { key: `${eq}.${e.name}`, kind: 'matrix', width: widthOfChecked(e.arg) });
    } else if (e.k === 'call') e.args.forEach((a) => walk(eq, a));
    else if (e.k === 'neg') walk(eq, e.a);
    else if (e.k === 'bin') {
      walk(eq, e.a);
      walk(eq, e.b);
    }
  };
  for (const q of spec.equations) walk(q.name, q.expr);
  return [...out.values()];
}

function widthOfChecked(e: Expr): 'in' | 'hidden' {
  const w = (x: Expr): Width => {
    switch (x.k) {
      case 'num':
        return 'scalar';
      case 'ref':
        return x.ref === 'x' ? 'in' : 'hidden';
      case 'param':
      case 'mat':
        return 'hidden';
      case 'call':
        return w(x.args[0]);
      case 'neg':
        return w(x.a);
      case 'bin': {
        const a = w(x.a);
        return a === 'scalar' ? w(x.b) : a;
      }
    }
  };
  return w(e) === 'in' ? 'in' : 'hidden';
}

/** Whether an equation's value is a gate in (0, 1) (its outermost function a sigmoid). */
export function isGateEquation(e: Equation): boolean {
  return e.expr.k === 'call' && (e.expr.fn === 'sigmoid' || e.expr.fn === 'hardsigmoid');
}

/** The histogram range of an equation's values: gates [0, 1], tanh/softsign [−1, 1], others [−3, 3]. */
export function equationRange(e: Equation): [number, number] {
  if (isGateEquation(e)) return [0, 1];
  if (e.expr.k === 'call' && (e.expr.fn === 'tanh' || e.expr.fn === 'softsign')) return [-1, 1];
  if (e.expr.k === 'call' && e.expr.fn === 'relu') return [0, 3];
  return [-3, 3];
}

const FN_DOCS: Record<FnName, string> = {
  sigmoid: 'σ(z) = 1 / (1 + e^−z), in (0, 1): a gate',
  tanh: 'tanh(z), in (−1, 1)',
  relu: 'max(0, z)',
  hardsigmoid: 'max(0, min(1, slope·z + offset)); slope 0.2 and offset 0.5 unless given: a gate that saturates exactly',
  softsign: 'z / (1 + |z|), in (−1, 1)',
};

/**
 * What the token at `at` of equation `eq` means, for an editor hover: the layer input, a state's
 * previous or new value, an earlier equation (with its text), a parameter (with its checkpoint name
 * for layer k), a function. Undefined where the cell has problems or there is no token.
 */
export function explainCellToken(equations: [string, string][], states: string[], eq: string, at: number, layer: number): { text: string; span: Span } | undefined {
  const { spec } = checkCell(equations, states);
  const q = spec?.equations.find((e) => e.name === eq);
  if (!spec || !q) return undefined;
  const hit = (e: Expr): Expr | undefined => {
    if (at < e.at || at > e.at + e.len) return undefined;
    const kids = e.k === 'bin' ? [e.a, e.b] : e.k === 'neg' ? [e.a] : e.k === 'call' ? e.args : e.k === 'mat' ? [e.arg] : [];
    for (const k of kids) {
      const h = hit(k);
      if (h) return h;
    }
    return e;
  };
  const e = hit(q.expr);
  if (!e) return undefined;
  const src = (n: string) => spec.equations.find((x) => x.name === n)?.src ?? n;
  const pname = (n: string) => `\`cell.l${layer}.${eq}.${n}\``;
  switch (e.k) {
    case 'ref': {
      const span = { at: e.at, len: e.len };
      if (e.ref === 'x') return { text: '`x`: the layer input at this step (the token as one-hot, its embedding, or the layer below)', span };
      if (e.ref === 'prev') return { text: `\`${e.name}\`: the state ${e.name} from the previous step (${e.name}₍ₜ₋₁₎; zeros before the first step) — not yet assigned in this step`, span };
      return { text: `\`${e.name}\`: ${states.includes(e.name) ? `the new value of the state ${e.name} at this step` : 'the equation of this step'} — \`${e.name} = ${src(e.name)}\``, span };
    }
    case 'param':
      return { text: e.kind === 'b' ? `\`${e.name}\`: a learned bias [hidden] of ${eq}, ${pname(e.name)}` : `\`${e.name}\`: a learned per-unit vector [hidden] of ${eq} (multiplied elementwise), ${pname(e.name)}`, span: { at: e.at, len: e.len } };
    case 'mat': {
      const w = cellParams(spec).find((p) => p.key === `${eq}.${e.name}`)?.width;
      return { text: `\`${e.name}\`: a learned matrix of ${eq}, ${pname(e.name)} [hidden, ${w === 'in' ? 'input width' : 'hidden'}], applied to what follows it`, span: { at: e.at, len: e.name.length } };
    }
    case 'call':
      return { text: `\`${e.fn}\`: ${FN_DOCS[e.fn]}`, span: { at: e.at, len: e.fn.length } };
    case 'num':
      return { text: `the constant ${e.v}`, span: { at: e.at, len: e.len } };
    default:
      return undefined;
  }
}

/** The LSTM written as equations (i, f, g, o, c, h; one bias per gate), state [h, c]: nn.LSTM's cell. */
export const LSTM_AS_EQUATIONS: readonly [string, string][] = [
  ['i', 'sigmoid(W x + U h + b)'],
  ['f', 'sigmoid(W x + U h + b)'],
  ['g', 'tanh(W x + U h + b)'],
  ['o', 'sigmoid(W x + U h + b)'],
  ['c', 'f * c + i * g'],
  ['h', 'o * tanh(c)'],
];
