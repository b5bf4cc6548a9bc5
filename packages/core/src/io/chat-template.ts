/**
 * A small Jinja subset, enough for the chat templates in tokenizer_config.json (Llama 2/3,
 * Mistral, Qwen2, Vicuna-style, ChatML). Rendering follows transformers: trim_blocks and
 * lstrip_blocks on.
 *
 * Supported: {{ }}, {% %}, {# #}, whitespace control (-), if/elif/else, for (loop.index0, index,
 * first, last, length; `for a, b in x.items()`), set (also `ns.x = ...` on a namespace()),
 * literals, names, attribute / item access, slices, calls to raise_exception / namespace / range
 * and string methods (strip, lstrip, rstrip, startswith, endswith, split, upper, lower, title,
 * replace, items, keys, values, get), filters (trim, length, count, tojson, upper, lower, string,
 * first, last, join, default, capitalize, int), tests (defined, undefined, none, string, number,
 * mapping, iterable, sequence, true, false, even, odd), operators + - * / // % ~ == != < > <= >=
 * and or not in, `not in`, `a if c else b`. Not supported (a clear UNSUPPORTED error): macros,
 * call blocks, includes, generation tags, filters and methods not listed.
 */
import { AdaptorkitError } from '../errors.js';

type Val = unknown;
type Node =
  | { t: 'lit'; v: Val }
  | { t: 'name'; n: string }
  | { t: 'attr'; o: Node; n: string }
  | { t: 'item'; o: Node; k: Node }
  | { t: 'slice'; o: Node; a?: Node; b?: Node }
  | { t: 'call'; f: Node; args: Node[]; kw: [string, Node][] }
  | { t: 'filter'; o: Node; n: string; args: Node[] }
  | { t: 'test'; o: Node; n: string; neg: boolean }
  | { t: 'bin'; op: string; a: Node; b: Node }
  | { t: 'un'; op: string; a: Node }
  | { t: 'cond'; c: Node; a: Node; b?: Node }
  | { t: 'list'; items: Node[] }
  | { t: 'dict'; items: [Node, Node][] };

type Stmt =
  | { k: 'text'; s: string }
  | { k: 'out'; e: Node }
  | { k: 'if'; branches: [Node | null, Stmt[]][] }
  | { k: 'for'; vars: string[]; iter: Node; body: Stmt[]; cond?: Node; else: Stmt[] }
  | { k: 'set'; target: string; attr?: string; e: Node };

function unsupported(what: string): never {
  throw new AdaptorkitError('UNSUPPORTED', `chat template: ${what} is not supported by adaptorkit's Jinja subset`);
}

function syntax(what: string): never {
  throw new AdaptorkitError('BAD_FILE', `chat template: ${what}`);
}

// ------------------------------------------------------------------ lexing of the template
interface Tag {
  kind: 'text' | 'out' | 'stmt';
  s: string;
}

function splitTemplate(src: string): Tag[] {
  const out: Tag[] = [];
  let i = 0;
  let trimNextLeading = false; // from a '-' on the previous tag's right
  let trimBlockNewline = false; // trim_blocks
  while (i < src.length) {
    const open = src.slice(i).search(/\{[{%#]/);
    let text = open < 0 ? src.slice(i) : src.slice(i, i + open);
    if (trimNextLeading) text = text.replace(/^\s+/, '');
    else if (trimBlockNewline) text = text.replace(/^\n/, '');
    trimNextLeading = trimBlockNewline = false;
    if (open < 0) {
      if (text) out.push({ kind: 'text', s: text });
      break;
    }
    const start = i + open;
    const kind = src[start + 1]!;
    const close = kind === '{' ? '}}' : kind === '%' ? '%}' : '#}';
    const end = src.indexOf(close, start + 2);
    if (end < 0) syntax(`unclosed '${src.slice(start, start + 2)}' at offset ${start}`);
    let inner = src.slice(start + 2, end);
    const leftTrim = inner.startsWith('-');
    const rightTrim = inner.endsWith('-');
    if (leftTrim) inner = inner.slice(1);
    if (rightTrim) inner = inner.slice(0, -1);
    if (inner.startsWith('+')) inner = inner.slice(1);
    if (leftTrim) text = text.replace(/\s+$/, '');
    else if (kind !== '{') text = text.replace(/(^|\n)[ \t]+$/, '$1'); // lstrip_blocks
    if (text) out.push({ kind: 'text', s: text });
    if (kind === '{') out.push({ kind: 'out', s: inner.trim() });
    else if (kind === '%') out.push({ kind: 'stmt', s: inner.trim() });
    trimNextLeading = rightTrim;
    trimBlockNewline = !rightTrim && kind !== '{';
    i = end + 2;
  }
  return out;
}

// ------------------------------------------------------------------ expression tokens + parser
type Tok = { ty: 'num' | 'str' | 'name' | 'op'; v: string };

function lexExpr(s: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '"' || c === "'") {
      let j = i + 1;
      let v = '';
      while (j < s.length && s[j] !== c) {
        if (s[j] === '\\' && j + 1 < s.length) {
          const e = s[j + 1]!;
          v += e === 'n' ? '\n' : e === 't' ? '\t' : e === 'r' ? '\r' : e;
          j += 2;
        } else v += s[j++];
      }
      if (j >= s.length) syntax(`unterminated string in '${s}'`);
      toks.push({ ty: 'str', v });
      i = j + 1;
      continue;
    }
    const num = /^\d+(\.\d+)?/.exec(s.slice(i));
    if (num) {
      toks.push({ ty: 'num', v: num[0] });
      i += num[0].length;
      continue;
    }
    const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(s.slice(i));
    if (name) {
      toks.push({ ty: 'name', v: name[0] });
      i += name[0].length;
      continue;
    }
    const op = /^(\/\/|==|!=|<=|>=|\*\*|[-+*/%~<>()[\]{}.,:|=])/.exec(s.slice(i));
    if (!op) syntax(`unexpected character '${c}' in '${s}'`);
    toks.push({ ty: 'op', v: op[0] });
    i += op[0].length;
  }
  return toks;
}

class Parser {
  i = 0;
  constructor(private readonly toks: Tok[], private readonly src: string) {}
  peek(o = 0): Tok | undefined {
    return this.toks[this.i + o];
  }
  isOp(v: string): boolean {
    const t = this.peek();
    return !!t && t.ty === 'op' && t.v === v;
  }
  isName(v: string): boolean {
    const t = this.peek();
    return !!t && t.ty === 'name' && t.v === v;
  }
  expectOp(v: string): void {
    if (!this.isOp(v)) syntax(`expected '${v}' in '${this.src}'`);
    this.i++;
  }
  name(): string {
    const t = this.peek();
    if (!t || t.ty !== 'name') syntax(`expected a name in '${this.src}'`);
    this.i++;
    return t.v;
  }
  done(): boolean {
    return this.i >= this.toks.length;
  }

  expr(): Node {
    const a = this.or();
    if (this.isName('if')) {
      this.i++;
      const c = this.or();
      let b: Node | undefined;
      if (this.isName('else')) {
        this.i++;
        b = this.expr();
      }
      return { t: 'cond', c, a, b };
    }
    return a;
  }
  or(): Node {
    let a = this.and();
    while (this.isName('or')) {
      this.i++;
      a = { t: 'bin', op: 'or', a, b: this.and() };
    }
    return a;
  }
  and(): Node {
    let a = this.not();
    while (this.isName('and')) {
      this.i++;
      a = { t: 'bin', op: 'and', a, b: this.not() };
    }
    return a;
  }
  not(): Node {
    if (this.isName('not')) {
      this.i++;
      return { t: 'un', op: 'not', a: this.not() };
    }
    return this.cmp();
  }
  cmp(): Node {
    let a = this.concat();
    for (;;) {
      const t = this.peek();
      if (t?.ty === 'op' && ['==', '!=', '<', '>', '<=', '>='].includes(t.v)) {
        this.i++;
        a = { t: 'bin', op: t.v, a, b: this.concat() };
      } else if (this.isName('in')) {
        this.i++;
        a = { t: 'bin', op: 'in', a, b: this.concat() };
      } else if (this.isName('not') && this.peek(1)?.v === 'in') {
        this.i += 2;
        a = { t: 'un', op: 'not', a: { t: 'bin', op: 'in', a, b: this.concat() } };
      } else if (this.isName('is')) {
        this.i++;
        let neg = false;
        if (this.isName('not')) {
          this.i++;
          neg = true;
        }
        a = { t: 'test', o: a, n: this.name(), neg };
      } else return a;
    }
  }
  concat(): Node {
    let a = this.add();
    while (this.isOp('~')) {
      this.i++;
      a = { t: 'bin', op: '~', a, b: this.add() };
    }
    return a;
  }
  add(): Node {
    let a = this.mul();
    while (this.isOp('+') || this.isOp('-')) {
      const op = this.peek()!.v;
      this.i++;
      a = { t: 'bin', op, a, b: this.mul() };
    }
    return a;
  }
  mul(): Node {
    let a = this.unary();
    while (this.isOp('*') || this.isOp('/') || this.isOp('//') || this.isOp('%')) {
      const op = this.peek()!.v;
      this.i++;
      a = { t: 'bin', op, a, b: this.unary() };
    }
    return a;
  }
  unary(): Node {
    if (this.isOp('-')) {
      this.i++;
      return { t: 'un', op: '-', a: this.unary() };
    }
    return this.filtered();
  }
  filtered(): Node {
    let a = this.postfix();
    while (this.isOp('|')) {
      this.i++;
      const n = this.name();
      const args = this.isOp('(') ? this.args().args : [];
      a = { t: 'filter', o: a, n, args };
    }
    return a;
  }
  args(): { args: Node[]; kw: [string, Node][] } {
    this.expectOp('(');
    const args: Node[] = [];
    const kw: [string, Node][] = [];
    while (!this.isOp(')')) {
      if (this.peek()?.ty === 'name' && this.peek(1)?.v === '=' && this.peek(1)?.ty === 'op') {
        const k = this.name();
        this.i++;
        kw.push([k, this.expr()]);
      } else args.push(this.expr());
      if (!this.isOp(')')) this.expectOp(',');
    }
    this.i++;
    return { args, kw };
  }
  postfix(): Node {
    let a = this.primary();
    for (;;) {
      if (this.isOp('.')) {
        this.i++;
        a = { t: 'attr', o: a, n: this.name() };
      } else if (this.isOp('[')) {
        this.i++;
        let first: Node | undefined;
        if (!this.isOp(':')) first = this.expr();
        if (this.isOp(':')) {
          this.i++;
          const b = this.isOp(']') ? undefined : this.expr();
          this.expectOp(']');
          a = { t: 'slice', o: a, a: first, b };
        } else {
          this.expectOp(']');
          a = { t: 'item', o: a, k: first! };
        }
      } else if (this.isOp('(')) {
        const { args, kw } = this.args();
        a = { t: 'call', f: a, args, kw };
      } else return a;
    }
  }
  primary(): Node {
    const t = this.peek();
    if (!t) syntax(`unexpected end of expression '${this.src}'`);
    this.i++;
    if (t.ty === 'num') return { t: 'lit', v: Number(t.v) };
    if (t.ty === 'str') {
      let v = t.v;
      while (this.peek()?.ty === 'str') v += this.toks[this.i++]!.v; // adjacent literals concatenate
      return { t: 'lit', v };
    }
    if (t.ty === 'name') {
      if (t.v === 'true' || t.v === 'True') return { t: 'lit', v: true };
      if (t.v === 'false' || t.v === 'False') return { t: 'lit', v: false };
      if (t.v === 'none' || t.v === 'None') return { t: 'lit', v: null };
      return { t: 'name', n: t.v };
    }
    if (t.v === '(') {
      const e = this.expr();
      this.expectOp(')');
      return e;
    }
    if (t.v === '[') {
      const items: Node[] = [];
      while (!this.isOp(']')) {
        items.push(this.expr());
        if (!this.isOp(']')) this.expectOp(',');
      }
      this.i++;
      return { t: 'list', items };
    }
    if (t.v === '{') {
      const items: [Node, Node][] = [];
      while (!this.isOp('}')) {
        const k = this.expr();
        this.expectOp(':');
        items.push([k, this.expr()]);
        if (!this.isOp('}')) this.expectOp(',');
      }
      this.i++;
      return { t: 'dict', items };
    }
    return syntax(`unexpected '${t.v}' in '${this.src}'`);
  }
}

function parseExpr(s: string): Node {
  const p = new Parser(lexExpr(s), s);
  const e = p.expr();
  if (!p.done()) syntax(`unexpected '${p.peek()!.v}' in '${s}'`);
  return e;
}

// ------------------------------------------------------------------ statements
function parseBody(tags: Tag[], pos: { i: number }, ends: string[]): { body: Stmt[]; end: string } {
  const body: Stmt[] = [];
  while (pos.i < tags.length) {
    const tag = tags[pos.i++]!;
    if (tag.kind === 'text') body.push({ k: 'text', s: tag.s });
    else if (tag.kind === 'out') body.push({ k: 'out', e: parseExpr(tag.s) });
    else {
      const word = /^[A-Za-z_]+/.exec(tag.s)?.[0] ?? '';
      if (ends.includes(word)) {
        pos.i--;
        return { body, end: word };
      }
      const rest = tag.s.slice(word.length).trim();
      if (word === 'if') {
        const branches: [Node | null, Stmt[]][] = [];
        let cond: Node | null = parseExpr(rest);
        for (;;) {
          const r = parseBody(tags, pos, ['elif', 'else', 'endif']);
          branches.push([cond, r.body]);
          const endTag = tags[pos.i++]!;
          if (r.end === 'endif') break;
          cond = r.end === 'elif' ? parseExpr(endTag.s.slice(4).trim()) : null;
        }
        body.push({ k: 'if', branches });
      } else if (word === 'for') {
        const m = /^([A-Za-z_][A-Za-z0-9_]*(?:\s*,\s*[A-Za-z_][A-Za-z0-9_]*)*)\s+in\s+(.+)$/s.exec(rest);
        if (!m) syntax(`bad for loop '${tag.s}'`);
        let iterSrc = m[2]!;
        let cond: Node | undefined;
        const ifAt = iterSrc.search(/\sif\s/);
        if (ifAt >= 0 && !/\selse\s/.test(iterSrc)) {
          cond = parseExpr(iterSrc.slice(ifAt + 4));
          iterSrc = iterSrc.slice(0, ifAt);
        }
        const r = parseBody(tags, pos, ['else', 'endfor']);
        pos.i++;
        let elseBody: Stmt[] = [];
        if (r.end === 'else') {
          elseBody = parseBody(tags, pos, ['endfor']).body;
          pos.i++;
        }
        body.push({ k: 'for', vars: m[1]!.split(',').map((v) => v.trim()), iter: parseExpr(iterSrc), body: r.body, cond, else: elseBody });
      } else if (word === 'set') {
        const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:\.([A-Za-z_][A-Za-z0-9_]*))?\s*=(?!=)\s*(.+)$/s.exec(rest);
        if (!m) unsupported(`'{% ${tag.s} %}' (block set)`);
        body.push({ k: 'set', target: m[1]!, attr: m[2], e: parseExpr(m[3]!) });
      } else unsupported(`'{% ${word} %}'`);
    }
  }
  if (ends.length) syntax(`missing {% ${ends[ends.length - 1]} %}`);
  return { body, end: '' };
}

// ------------------------------------------------------------------ evaluation
class Namespace {
  constructor(public vals: Record<string, Val>) {}
}

class Loop {
  constructor(public index0: number, public length: number) {}
}

function truthy(v: Val): boolean {
  if (Array.isArray(v)) return v.length > 0;
  if (v && typeof v === 'object' && !(v instanceof Namespace)) return Object.keys(v).length > 0;
  return !!v;
}

function str(v: Val): string {
  if (v === null || v === undefined) return v === null ? 'None' : '';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function getAttr(o: Val, n: string): Val {
  if (o instanceof Loop) {
    const l = o;
    const m: Record<string, Val> = { index0: l.index0, index: l.index0 + 1, first: l.index0 === 0, last: l.index0 === l.length - 1, length: l.length, revindex: l.length - l.index0, revindex0: l.length - l.index0 - 1 };
    return m[n];
  }
  if (o instanceof Namespace) return o.vals[n];
  if (o !== null && typeof o === 'object' && Object.prototype.hasOwnProperty.call(o, n)) return (o as Record<string, Val>)[n];
  return undefined;
}

function method(o: Val, n: string, args: Val[]): Val {
  if (typeof o === 'string') {
    switch (n) {
      case 'strip':
        return args[0] === undefined ? o.trim() : o.replace(new RegExp(`^[${esc(String(args[0]))}]+|[${esc(String(args[0]))}]+$`, 'g'), '');
      case 'lstrip':
        return o.replace(/^\s+/, '');
      case 'rstrip':
        return o.replace(/\s+$/, '');
      case 'startswith':
        return o.startsWith(String(args[0]));
      case 'endswith':
        return o.endsWith(String(args[0]));
      case 'split':
        return args[0] === undefined ? o.trim().split(/\s+/) : o.split(String(args[0]));
      case 'upper':
        return o.toUpperCase();
      case 'lower':
        return o.toLowerCase();
      case 'title':
        return o.replace(/\b\w/g, (c) => c.toUpperCase());
      case 'replace':
        return o.split(String(args[0])).join(String(args[1]));
    }
  } else if (o && typeof o === 'object' && !Array.isArray(o)) {
    const d = o as Record<string, Val>;
    if (n === 'items') return Object.entries(d);
    if (n === 'keys') return Object.keys(d);
    if (n === 'values') return Object.values(d);
    if (n === 'get') return Object.prototype.hasOwnProperty.call(d, String(args[0])) ? d[String(args[0])] : (args[1] ?? null);
  }
  return unsupported(`method '${n}' on ${Array.isArray(o) ? 'a list' : typeof o}`);
}

function esc(s: string): string {
  return s.replace(/[\\\]^-]/g, '\\$&');
}

class Scope {
  constructor(private readonly vars: Map<string, Val>, private readonly parent?: Scope) {}
  get(n: string): Val {
    if (this.vars.has(n)) return this.vars.get(n);
    return this.parent ? this.parent.get(n) : undefined;
  }
  has(n: string): boolean {
    return this.vars.has(n) || !!this.parent?.has(n);
  }
  set(n: string, v: Val): void {
    this.vars.set(n, v);
  }
}

function evalNode(e: Node, s: Scope): Val {
  switch (e.t) {
    case 'lit':
      return e.v;
    case 'name':
      return s.get(e.n);
    case 'attr':
      return getAttr(evalNode(e.o, s), e.n);
    case 'item': {
      const o = evalNode(e.o, s);
      const k = evalNode(e.k, s);
      if (Array.isArray(o) || typeof o === 'string') {
        const i = Number(k);
        return o[i < 0 ? o.length + i : i];
      }
      return getAttr(o, String(k));
    }
    case 'slice': {
      const o = evalNode(e.o, s) as string | Val[];
      const a = e.a ? Number(evalNode(e.a, s)) : undefined;
      const b = e.b ? Number(evalNode(e.b, s)) : undefined;
      return o.slice(a, b);
    }
    case 'list':
      return e.items.map((x) => evalNode(x, s));
    case 'dict':
      return Object.fromEntries(e.items.map(([k, v]) => [str(evalNode(k, s)), evalNode(v, s)]));
    case 'call': {
      const args = e.args.map((a) => evalNode(a, s));
      if (e.f.t === 'name') {
        if (e.f.n === 'raise_exception') throw new AdaptorkitError('INVALID_ARGUMENT', `chat template: ${str(args[0])}`);
        if (e.f.n === 'namespace') return new Namespace(Object.fromEntries(e.kw.map(([k, v]) => [k, evalNode(v, s)])));
        if (e.f.n === 'range') {
          const [a, b] = args.length === 1 ? [0, Number(args[0])] : [Number(args[0]), Number(args[1])];
          return Array.from({ length: Math.max(0, b - a) }, (_, i) => a + i);
        }
        const fn = s.get(e.f.n);
        if (typeof fn === 'function') return (fn as (...x: Val[]) => Val)(...args);
        return unsupported(`function '${e.f.n}'`);
      }
      if (e.f.t === 'attr') return method(evalNode(e.f.o, s), e.f.n, args);
      return unsupported('calling this expression');
    }
    case 'filter': {
      const v = evalNode(e.o, s);
      const args = e.args.map((a) => evalNode(a, s));
      switch (e.n) {
        case 'trim':
          return str(v).trim();
        case 'length':
        case 'count':
          return Array.isArray(v) || typeof v === 'string' ? v.length : v && typeof v === 'object' ? Object.keys(v).length : 0;
        case 'tojson':
          return JSON.stringify(v);
        case 'upper':
          return str(v).toUpperCase();
        case 'lower':
          return str(v).toLowerCase();
        case 'capitalize': {
          const t = str(v);
          return t.charAt(0).toUpperCase() + t.slice(1).toLowerCase();
        }
        case 'string':
          return str(v);
        case 'int':
          return Math.trunc(Number(v)) || 0;
        case 'first':
          return (v as Val[])[0];
        case 'last':
          return (v as Val[])[(v as Val[]).length - 1];
        case 'join':
          return (v as Val[]).map(str).join(args[0] === undefined ? '' : str(args[0]));
        case 'default':
          return v === undefined ? args[0] : v;
      }
      return unsupported(`filter '${e.n}'`);
    }
    case 'test': {
      const undef = e.o.t === 'name' ? !s.has(e.o.n) || s.get(e.o.n) === undefined : undefined;
      const v = evalNode(e.o, s);
      let r: boolean;
      switch (e.n) {
        case 'defined':
          r = !(undef ?? v === undefined);
          break;
        case 'undefined':
          r = undef ?? v === undefined;
          break;
        case 'none':
          r = v === null;
          break;
        case 'string':
          r = typeof v === 'string';
          break;
        case 'number':
          r = typeof v === 'number';
          break;
        case 'mapping':
          r = !!v && typeof v === 'object' && !Array.isArray(v);
          break;
        case 'iterable':
        case 'sequence':
          r = Array.isArray(v) || typeof v === 'string';
          break;
        case 'true':
          r = v === true;
          break;
        case 'false':
          r = v === false;
          break;
        case 'even':
          r = Number(v) % 2 === 0;
          break;
        case 'odd':
          r = Number(v) % 2 === 1;
          break;
        default:
          return unsupported(`test 'is ${e.n}'`);
      }
      return e.neg ? !r : r;
    }
    case 'un': {
      const a = evalNode(e.a, s);
      return e.op === 'not' ? !truthy(a) : -Number(a);
    }
    case 'cond':
      return truthy(evalNode(e.c, s)) ? evalNode(e.a, s) : e.b ? evalNode(e.b, s) : '';
    case 'bin': {
      if (e.op === 'and') {
        const a = evalNode(e.a, s);
        return truthy(a) ? evalNode(e.b, s) : a;
      }
      if (e.op === 'or') {
        const a = evalNode(e.a, s);
        return truthy(a) ? a : evalNode(e.b, s);
      }
      const a = evalNode(e.a, s);
      const b = evalNode(e.b, s);
      switch (e.op) {
        case '~':
          return str(a) + str(b);
        case '+':
          if (Array.isArray(a) && Array.isArray(b)) return [...a, ...b];
          if (typeof a === 'string' || typeof b === 'string') {
            if (typeof a !== 'string' || typeof b !== 'string') throw new AdaptorkitError('INVALID_ARGUMENT', `chat template: cannot add ${typeof a} and ${typeof b} (message content must be a string)`);
            return a + b;
          }
          return Number(a) + Number(b);
        case '-':
          return Number(a) - Number(b);
        case '*':
          return typeof a === 'string' ? a.repeat(Number(b)) : Number(a) * Number(b);
        case '/':
          return Number(a) / Number(b);
        case '//':
          return Math.floor(Number(a) / Number(b));
        case '%':
          return Number(a) % Number(b);
        case '==':
          return JSON.stringify(a) === JSON.stringify(b);
        case '!=':
          return JSON.stringify(a) !== JSON.stringify(b);
        case '<':
          return (a as number) < (b as number);
        case '>':
          return (a as number) > (b as number);
        case '<=':
          return (a as number) <= (b as number);
        case '>=':
          return (a as number) >= (b as number);
        case 'in':
          if (typeof b === 'string') return b.includes(str(a));
          if (Array.isArray(b)) return b.some((x) => JSON.stringify(x) === JSON.stringify(a));
          if (b && typeof b === 'object') return Object.prototype.hasOwnProperty.call(b, str(a));
          return false;
      }
      return unsupported(`operator '${e.op}'`);
    }
  }
}

function run(body: Stmt[], s: Scope, out: string[]): void {
  for (const st of body) {
    switch (st.k) {
      case 'text':
        out.push(st.s);
        break;
      case 'out':
        out.push(str(evalNode(st.e, s)));
        break;
      case 'if':
        for (const [c, b] of st.branches) {
          if (c === null || truthy(evalNode(c, s))) {
            run(b, s, out);
            break;
          }
        }
        break;
      case 'set':
        if (st.attr) {
          const ns = s.get(st.target);
          if (!(ns instanceof Namespace)) unsupported(`'set ${st.target}.${st.attr}' on something other than a namespace()`);
          ns.vals[st.attr] = evalNode(st.e, s);
        } else s.set(st.target, evalNode(st.e, s));
        break;
      case 'for': {
        let items = evalNode(st.iter, s);
        if (typeof items === 'string') items = [...items];
        if (items && typeof items === 'object' && !Array.isArray(items)) items = Object.keys(items);
        if (!Array.isArray(items)) items = [];
        const inner = new Scope(new Map(), s);
        const kept = (items as Val[]).filter((it) => {
          if (!st.cond) return true;
          bind(inner, st.vars, it);
          return truthy(evalNode(st.cond, inner));
        });
        if (kept.length === 0) run(st.else, s, out);
        kept.forEach((it, i) => {
          bind(inner, st.vars, it);
          inner.set('loop', new Loop(i, kept.length));
          run(st.body, inner, out);
        });
        break;
      }
    }
  }
}

function bind(s: Scope, vars: string[], it: Val): void {
  if (vars.length === 1) s.set(vars[0]!, it);
  else vars.forEach((v, i) => s.set(v, (it as Val[])[i]));
}

/** A parsed chat template; render() with the variables transformers passes (messages, bos_token, ...). */
export class ChatTemplate {
  private readonly body: Stmt[];
  constructor(readonly source: string) {
    this.body = parseBody(splitTemplate(source), { i: 0 }, []).body;
  }
  render(vars: Record<string, Val>): string {
    const out: string[] = [];
    run(this.body, new Scope(new Map(Object.entries(vars))), out);
    return out.join('');
  }
}
