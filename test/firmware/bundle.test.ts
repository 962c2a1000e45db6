/**
 * The built bundle is what the engines can run: ES5 syntax only (acorn with
 * ecmaVersion 5), no lazy-module wrappers, no Node or ES2015+ globals, and
 * exactly one global of its own (`Flotilla`).
 */
import assert from 'node:assert/strict';
import vm from 'node:vm';
import { parse } from 'acorn';
import { agentBundle } from '../helpers/images.js';

/** Globals an ES5 engine lacks, or that would tie the agent to Node. */
const FORBIDDEN = ['require', 'process', 'Buffer', 'global', 'globalThis', 'module', 'exports', 'setTimeout', 'setInterval', 'clearTimeout', 'console',
  'Map', 'Set', 'WeakMap', 'Promise', 'Symbol', 'Proxy', 'Reflect', 'TextEncoder', 'TextDecoder', 'BigInt'];

interface Node {
  type: string;
  [k: string]: unknown;
}

/** Identifiers the bundle reads that it never declares: its free variables (a scope-blind approximation). */
function freeIdentifiers(ast: Node): Set<string> {
  const declared = new Set<string>();
  const used = new Set<string>();
  const visit = (n: unknown, parent: Node | null, key: string): void => {
    if (Array.isArray(n)) return n.forEach((c) => visit(c, parent, key));
    if (!n || typeof n !== 'object' || typeof (n as Node).type !== 'string') return;
    const node = n as Node;
    if (node.type === 'Identifier') {
      const name = node.name as string;
      const isProperty = parent && ((parent.type === 'MemberExpression' && key === 'property' && !parent.computed) || (parent.type === 'Property' && key === 'key'));
      const isDeclaration = parent && ((parent.type === 'VariableDeclarator' && key === 'id') || ((parent.type === 'FunctionDeclaration' || parent.type === 'FunctionExpression') && (key === 'id' || key === 'params')) || (parent.type === 'CatchClause' && key === 'param'));
      if (isDeclaration) declared.add(name);
      else if (!isProperty) used.add(name);
      return;
    }
    for (const [k, v] of Object.entries(node)) if (k !== 'type' && k !== 'start' && k !== 'end') visit(v, node, k);
  };
  visit(ast, null, '');
  for (const d of declared) used.delete(d);
  return used;
}

describe('firmware bundle (dist/agent.js)', () => {
  const code = agentBundle();

  it('parses as ECMAScript 5', () => {
    assert.doesNotThrow(() => parse(code, { ecmaVersion: 5, sourceType: 'script' }));
  });

  it('has no lazy module wrappers', () => {
    assert.ok(!/__esm|__commonJS|__require/.test(code), 'esbuild wrapped modules: the entry must export something');
  });

  it('has no named function expressions (Duktape without DUK_USE_FUNC_NAME_PROPERTY cannot bind their names)', () => {
    const named: string[] = [];
    const visit = (n: unknown): void => {
      if (Array.isArray(n)) return n.forEach(visit);
      if (!n || typeof n !== 'object') return;
      const node = n as Node;
      if (node.type === 'FunctionExpression' && node.id) named.push(code.slice(node.start as number, (node.start as number) + 60));
      for (const [k, v] of Object.entries(node)) if (k !== 'type') visit(v);
    };
    visit(parse(code, { ecmaVersion: 5, sourceType: 'script' }));
    assert.deepEqual(named, []);
  });

  it('finds free identifiers (the check below can fail)', () => {
    const free = freeIdentifiers(parse('var a = 1; function f(b) { return b + a + x.process; } require(a); new Map();', { ecmaVersion: 5 }) as unknown as Node);
    assert.deepEqual([...free].sort(), ['Map', 'require', 'x']);
  });

  it('reads no Node or ES2015+ global', () => {
    const free = freeIdentifiers(parse(code, { ecmaVersion: 5, sourceType: 'script' }) as unknown as Node);
    const bad = FORBIDDEN.filter((g) => free.has(g));
    assert.deepEqual(bad, []);
  });

  it('defines one global, Flotilla, with the agent\'s entry points', () => {
    const ctx = vm.createContext({});
    const before = new Set(Object.getOwnPropertyNames(ctx));
    vm.runInContext(code, ctx);
    const added = Object.getOwnPropertyNames(ctx).filter((k) => !before.has(k));
    assert.deepEqual(added, ['Flotilla']);
    const api = vm.runInContext('Object.keys(Flotilla).sort().join(",")', ctx);
    assert.equal(api, 'AGENT_VERSION,cborDecode,cborEncode,create,decodeIn,sha256');
  });
});
