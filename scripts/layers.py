#!/usr/bin/env python3
"""Checks that each top-level module of src/ imports (outside its test code) only modules
declared above it in src/lib.rs, as lib.rs's map promises. Prints each import that breaks
the order; exit 1 if any."""
import os, re, sys

root = sys.argv[1] if len(sys.argv) > 1 else "."
src = os.path.join(root, "src")
order = re.findall(r"^\s*(?:pub\s+)?mod\s+([a-z_0-9]+)\s*;", open(os.path.join(src, "lib.rs")).read(), re.M)
rank = {m: i for i, m in enumerate(order)}
test_mod = re.compile(r"#\[cfg\(test\)\]\s*(?:pub\s+)?mod\s+\w+\s*\{")

def strip_tests(text):
    out, i = [], 0
    for m in test_mod.finditer(text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)

bad = []
for dp, _, fs in os.walk(src):
    for f in sorted(fs):
        if not f.endswith(".rs") or f == "tests.rs":
            continue
        path = os.path.join(dp, f)
        rel = os.path.relpath(path, src)
        top = rel.split(os.sep)[0].removesuffix(".rs")
        if top not in rank:
            continue
        for n, line in enumerate(strip_tests(open(path).read()).splitlines(), 1):
            code = line.split("//")[0]
            for m in re.finditer(r"\bcrate::([a-z_0-9]+)", code):
                dep = m.group(1)
                if dep in rank and dep != top and rank[dep] > rank[top]:
                    bad.append(f"src/{rel}:{n}: {top} imports {dep}, declared below it")
print("\n".join(bad))
print(f"{len(bad)} imports against the order of {len(order)} modules in src/lib.rs")
sys.exit(1 if bad else 0)
