#!/usr/bin/env python3
"""check.py CASE_DIR RUN_DIR STATE_DIR: the error tokens are one list.

DRR_ERROR_TOKENS (include/drrun/plugin.h) and RUNBOOKS.md's "Error tokens"
table must name the same tokens, and every token the C plugins return (the
second argument of a *fail*(...) call, of crypto_set_err, the returns of
http.c's token_of, and a token pushed by hand after nil and the message)
must be one of them."""
import os
import re
import sys

root = os.path.abspath(os.path.join(sys.argv[1], "..", "..", ".."))


def read(rel):
    with open(os.path.join(root, rel), encoding="utf-8") as f:
        return f.read()


h = read("include/drrun/plugin.h")
m = re.search(r"#define DRR_ERROR_TOKENS((?:[^\n]*\\\n)*[^\n]*)", h)
if not m:
    sys.exit("no DRR_ERROR_TOKENS in include/drrun/plugin.h")
header = re.findall(r'"([a-z_]+)"', m.group(1))

rb = read("RUNBOOKS.md")
m = re.search(r"### Error tokens\n(.*?)\n#", rb, re.S)
if not m:
    sys.exit('no "### Error tokens" section in RUNBOOKS.md')
doc = re.findall(r"^\| `([a-z_]+)` \|", m.group(1), re.M)

problems = []
if len(set(header)) != len(header):
    problems.append("DRR_ERROR_TOKENS names a token twice: %s" % header)
if set(header) != set(doc):
    problems.append("plugin.h and RUNBOOKS.md differ: only in plugin.h %s, only in RUNBOOKS.md %s"
                    % (sorted(set(header) - set(doc)), sorted(set(doc) - set(header))))

used = {}
call = re.compile(r"\b\w*(?:fail\w*|set_err)\(\s*\w+\s*,\s*\"([a-z_]+)\"")
for d, _, files in os.walk(os.path.join(root, "plugins")):
    for name in files:
        if not name.endswith(".c"):
            continue
        path = os.path.join(d, name)
        rel = os.path.relpath(path, root)
        src = open(path, encoding="utf-8").read()
        for tok in call.findall(src):
            used.setdefault(tok, set()).add(rel)
        # a failure triple pushed by hand: nil, the message, then the token
        for m in re.finditer(r'lua_pushliteral\(\s*L\s*,\s*"([a-z_]+)"\s*\)\s*;\s*return\s+(?:3|-1)\s*;', src):
            before = src[max(0, m.start() - 600):m.start()]
            if "lua_pushnil(L)" in before:
                used.setdefault(m.group(1), set()).add(rel)
        t = re.search(r"token_of\([^)]*\)\n\{(.*?)\n\}", src, re.S)
        if t:
            for tok in re.findall(r'return "([a-z_]+)";', t.group(1)):
                used.setdefault(tok, set()).add(rel)
if len(used) < 5:
    problems.append("found only %d tokens in plugins/: the scan is broken" % len(used))
for tok in sorted(set(used) - set(header)):
    problems.append("token '%s' (%s) is not in DRR_ERROR_TOKENS" % (tok, ", ".join(sorted(used[tok]))))
if problems:
    sys.exit("\n".join(problems))
