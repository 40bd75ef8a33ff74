#!/usr/bin/env python3
# Usage: tools/module-cycles.py CRATE_SRC_DIR...   (exit 1 if any crate has a cycle)
"""Edges between the top-level modules of each crate via `crate::<top>` paths (code only,
comments skipped); root re-exports (crate::HfiDevice etc.) are resolved through lib.rs
`pub use`. Prints the edges and `no cycle` or the cycles found, per crate."""
import os, re, sys

def check(src):
    lib = open(os.path.join(src, 'lib.rs')).read()
    reexp = {}
    for m in re.finditer(r'pub use (\w+)(?:::\w+)*::\{([^}]*)\};|pub use (\w+)(?:::\w+)*::(\w+);', lib):
        if m.group(1):
            for n in m.group(2).split(','):
                reexp[n.strip()] = m.group(1)
        else:
            reexp[m.group(4)] = m.group(3)
    def top_of(path):
        rel = os.path.relpath(path, src)
        return rel.split(os.sep)[0].removesuffix('.rs')
    edges = {}
    for d, _, fs in os.walk(src):
        for f in fs:
            if not f.endswith('.rs'): continue
            p = os.path.join(d, f); t = top_of(p)
            if t == 'lib': continue
            code = '\n'.join(l.split('//')[0] for l in open(p))
            refs = set(re.findall(r'crate::(\w+)', code))
            for g in re.findall(r'crate::\{([^}]*)\}', code, re.S):
                refs |= {x.strip().split('::')[0] for x in g.split(',') if x.strip()}
            for r in refs:
                r = reexp.get(r, r)
                if r != t: edges.setdefault(t, set()).add(r)
    for t in sorted(edges): print(f'  {t} -> {" ".join(sorted(edges[t]))}')
    # cycle detection
    state = {}; cyc = []
    def dfs(u, stack):
        state[u] = 1; stack.append(u)
        for v in sorted(edges.get(u, ())):
            if state.get(v) == 1: cyc.append(stack[stack.index(v):] + [v])
            elif not state.get(v): dfs(v, stack)
        stack.pop(); state[u] = 2
    for u in sorted(edges):
        if not state.get(u): dfs(u, [])
    print('  cycles: ' + '; '.join(' -> '.join(c) for c in cyc) if cyc else 'no cycle')
    return not cyc

ok = True
for src in sys.argv[1:]:
    print(src)
    ok = check(src) and ok
sys.exit(0 if ok else 1)
