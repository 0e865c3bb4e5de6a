#!/usr/bin/env python3
"""docs.py - the documentation against the code, run by tests/run.sh as the
"docs" suite.  Prints "ok NAME" or "FAIL NAME: why" per check; exit 1 when
one failed.  Run from anywhere: python3 tests/docs.py

- docs/drrun.1 renders with man(1) and groff without a single warning;
- every verb of engine/cli/main.c's dispatch table is a command of the man
  page, and every long flag of engine/cli/cli.c's option table (and -y) an
  option of it, and README.md describes each of them too;
- every environment variable the code reads by name is in ENVIRONMENT, and
  every exit code of engine/core/core.h in EXIT STATUS;
- RUNBOOKS.md's error token table is exactly DRR_ERROR_TOKENS of
  include/drrun/plugin.h, in the same order;
- every built-in module has its page in docs/modules/, linked from the
  index there and from RUNBOOKS.md;
- every relative link (file and #anchor) in the Markdown docs resolves, and
  every repository path they quote (`plugins/exec.c`) exists.
"""
import glob
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
MAN = "docs/drrun.1"
failures = 0


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def report(name, problems):
    global failures
    if problems:
        failures += 1
        print("FAIL %s: %s" % (name, "; ".join(problems)))
    else:
        print("ok %s" % name)


# ---- the man page: sections, and the words its .TP tags start with --------


def roff_plain(line):
    """A roff source line as text: macros, fonts and escapes removed."""
    line = re.sub(r"^\.[A-Z]{1,2}\s*", "", line)
    line = re.sub(r"\\f[BIRP]|\\f\(..|\\&|\\:", "", line)
    line = line.replace("\\-", "-").replace("\\(dq", '"').replace("\\e", "\\")
    return line.replace('"', "")


def man_sections(src):
    sections, name = {}, None
    for line in src.split("\n"):
        m = re.match(r'^\.SH\s+"?([^"]*)"?\s*$', line)
        if m:
            name = m.group(1).strip()
            sections[name] = []
        elif name:
            sections[name].append(line)
    return sections


def tags(lines):
    """The text of each .TP item's tag line."""
    out = []
    for i, line in enumerate(lines):
        if line.startswith(".TP") and i + 1 < len(lines):
            out.append(roff_plain(lines[i + 1]).strip())
    return out


def check_render():
    problems = []
    for name, cmd in (
        ("man", ["man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", MAN]),
        ("groff", ["groff", "-man", "-ww", "-z", MAN]),
    ):
        if not shutil.which(cmd[0]):
            problems.append("%s is not installed (tests/deps.sh installs it)" % cmd[0])
            continue
        env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8")
        p = subprocess.run(cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        err = p.stderr.decode("utf-8", "replace").strip()
        if p.returncode != 0:
            problems.append("%s exit %d" % (name, p.returncode))
        if err:
            problems.append("%s warns: %s" % (name, " | ".join(err.split("\n")[:5])))
        if name == "man" and b"drrun" not in p.stdout:
            problems.append("man rendered nothing")
    report("man-page-renders-without-warnings", problems)


def check_verbs_and_flags(sections):
    main_c = read("engine/cli/main.c")
    table = re.search(r"verbs\[\]\s*=\s*\{(.*?)\n\};", main_c, re.S)
    verbs = re.findall(r'\{\s*"([a-z-]+)"\s*,\s*cmd_\w+\s*\}', table.group(1)) if table else []
    problems = [] if verbs else ["no verb table found in engine/cli/main.c"]
    commands = [t.split()[0] for t in tags(sections.get("COMMANDS", [])) if t]
    synopsis = "\n".join(roff_plain(l) for l in sections.get("SYNOPSIS", []))
    for v in verbs:
        if v not in commands:
            problems.append("verb '%s' is not a command in COMMANDS" % v)
        if not re.search(r"\b%s\b" % re.escape(v), synopsis):
            problems.append("verb '%s' is not in SYNOPSIS" % v)
    report("man-page-has-every-verb", problems)

    cli_c = read("engine/cli/cli.c")
    flags = re.findall(r'\{\s*"([a-z][a-z-]*)"\s*,\s*(?:no|required|optional)_argument', cli_c)
    short = re.search(r'getopt_long\([^"]*"\+?:?([a-zA-Z:]*)"', cli_c)
    problems = [] if flags else ["no option table found in engine/cli/cli.c"]
    options = set()
    for t in tags(sections.get("OPTIONS", [])):
        for word in re.split(r"[,\s]+", t):
            if word.startswith("-"):
                options.add(word.split("=")[0])
    for f in flags:
        if "--" + f not in options:
            problems.append("flag '--%s' is not an option in OPTIONS" % f)
    for s in (short.group(1).replace(":", "") if short else ""):
        if "-" + s not in options:
            problems.append("flag '-%s' is not an option in OPTIONS" % s)
    report("man-page-has-every-flag", problems)

    readme = read("README.md")
    problems = ["README.md does not describe 'drrun %s'" % v for v in verbs
                if not re.search(r"`drrun %s\b" % re.escape(v), readme)]
    problems += ["README.md's flags do not include --%s" % f for f in flags
                 if not re.search(r"^\| `--%s\b" % re.escape(f), readme, re.M) and f != "help"]
    report("readme-has-every-verb-and-flag", problems)


def check_environment_and_exits(sections):
    names = set()
    for path in glob.glob(os.path.join(ROOT, "engine/**/*.c"), recursive=True) + \
            glob.glob(os.path.join(ROOT, "plugins/**/*.c"), recursive=True) + \
            glob.glob(os.path.join(ROOT, "stdlib/**/*.lua"), recursive=True):
        with open(path, encoding="utf-8") as f:
            src = f.read()
        # comments name example variables: only code counts
        src = re.sub(r"/\*.*?\*/|//[^\n]*", "", src, flags=re.S) if path.endswith(".c") \
            else re.sub(r"--[^\n]*", "", src)
        names.update(re.findall(r'getenv\(\s*"([A-Z][A-Z0-9_]*)"\s*\)', src))
        names.update(re.findall(r'\benv\s*=\s*"(DRRUN_[A-Z0-9_]+)"', src))
    env = " ".join(tags(sections.get("ENVIRONMENT", [])))
    problems = ["variable %s is not in ENVIRONMENT" % n for n in sorted(names)
                if not re.search(r"\b%s\b" % n, env)]
    if "DRRUN_STATE_DIR" not in names:
        problems.append("found no getenv of DRRUN_STATE_DIR: is the scan broken?")
    report("man-page-has-every-environment-variable", problems)

    core_h = read("engine/core/core.h")
    codes = {int(c) for c in re.findall(r"DRR_EXIT_\w+\s*=\s*(\d+)", core_h)}
    codes |= {66}  # "not found": the verbs return the literal
    listed = {int(t) for t in tags(sections.get("EXIT STATUS", [])) if t.isdigit()}
    problems = ["exit code %d is not in EXIT STATUS" % c for c in sorted(codes - listed)]
    problems += ["EXIT STATUS lists %d, which engine/core/core.h does not define" % c
                 for c in sorted(listed - codes)]
    report("man-page-has-every-exit-code", problems)


# ---- RUNBOOKS.md and docs/modules/ ------------------------------------------


def check_error_tokens():
    h = read("include/drrun/plugin.h")
    m = re.search(r"#define\s+DRR_ERROR_TOKENS((?:[^\n]*\\\n)*[^\n]*)", h)
    code = re.findall(r'"([a-z_]+)"', m.group(1)) if m else []
    # the comment above the #define lists them too, one a line
    comment = re.search(r"/\* ---- error tokens -+(.*?)\*/", h, re.S)
    listed = re.findall(r"^\s*\*\s{3}([a-z_]+)\s", comment.group(1), re.M) if comment else []
    doc = read("RUNBOOKS.md")
    sec = re.search(r"^### Error tokens\n(.*?)(?=^#)", doc, re.S | re.M)
    table = re.findall(r"^\|\s*`([a-z_]+)`\s*\|", sec.group(1), re.M) if sec else []
    problems = []
    if not code:
        problems.append("no DRR_ERROR_TOKENS in include/drrun/plugin.h")
    if not sec:
        problems.append("RUNBOOKS.md has no '### Error tokens' section")
    if table != code:
        problems.append("RUNBOOKS.md's table %s is not DRR_ERROR_TOKENS %s" % (table, code))
    if listed != code:
        problems.append("plugin.h's comment lists %s, the #define %s" % (listed, code))
    report("error-tokens-documented-once", problems)


def builtin_modules():
    mods = {"drrun"}
    src = read("engine/lua/modules.c")
    mods.update(n for n in re.findall(r'\{\s*"(drrun\.[a-z.]+)"\s*,', src)
                if not n.endswith(".core"))
    for path in glob.glob(os.path.join(ROOT, "stdlib/drrun/**/*.lua"), recursive=True):
        rel = os.path.relpath(path, os.path.join(ROOT, "stdlib"))
        mods.add(rel[:-4].replace(os.sep, "."))
    return sorted(mods)


def check_module_pages():
    mods = builtin_modules()
    index = read("docs/modules/README.md")
    guide = read("RUNBOOKS.md")
    problems = []
    for m in mods:
        page = "docs/modules/%s.md" % m
        if not os.path.exists(os.path.join(ROOT, page)):
            problems.append("%s has no page %s" % (m, page))
        if "](%s.md)" % m not in index:
            problems.append("docs/modules/README.md does not link %s.md" % m)
        if "](%s)" % page not in guide:
            problems.append("RUNBOOKS.md does not link %s" % page)
    for page in glob.glob(os.path.join(ROOT, "docs/modules/*.md")):
        name = os.path.basename(page)[:-3]
        if name != "README" and name not in mods:
            problems.append("docs/modules/%s.md documents no built-in module" % name)
    if len(mods) < 10:
        problems.append("found only %s: is the scan broken?" % mods)
    report("every-module-has-a-page", problems)


def anchors(path):
    """GitHub's anchors for the headings of a Markdown file."""
    out, fence = set(), False
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("```"):
                fence = not fence
            elif not fence and re.match(r"^#{1,6} ", line):
                text = line.lstrip("#").strip().lower()
                out.add(re.sub(r"[^\w\- ]", "", text).replace(" ", "-"))
    return out


def markdown_docs():
    files = ["README.md", "RUNBOOKS.md"]
    files += sorted(os.path.relpath(p, ROOT) for p in
                    glob.glob(os.path.join(ROOT, "docs/**/*.md"), recursive=True) +
                    glob.glob(os.path.join(ROOT, "tests/**/README.md"), recursive=True)
                    # npm's packages (tests/deps.sh) are not the project's docs
                    if "/node_modules/" not in p)
    return files


def check_links():
    problems = []
    for f in markdown_docs():
        text = re.sub(r"```.*?```", "", read(f), flags=re.S)
        text = re.sub(r"`[^`\n]*`", "", text)
        for url in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z][a-z+.-]*:", url):
                continue
            path, _, anchor = url.partition("#")
            target = os.path.normpath(os.path.join(ROOT, os.path.dirname(f), path)) \
                if path else os.path.join(ROOT, f)
            if not os.path.exists(target):
                problems.append("%s: %s does not exist" % (f, url))
            elif anchor and target.endswith(".md") and anchor not in anchors(target):
                problems.append("%s: %s has no heading #%s" % (f, path or f, anchor))
    report("markdown-links-resolve", problems)


TOP = ("engine/", "plugins/", "stdlib/", "tests/", "runbooks/", "bench/", "docs/",
       "include/", "contrib/", ".ci/")


def expand(path):
    """tests/lua/saas_{a,b}_spec.lua -> both paths."""
    m = re.search(r"\{([^{}]*)\}", path)
    if not m:
        return [path]
    return [p for alt in m.group(1).split(",")
            for p in expand(path[:m.start()] + alt + path[m.end():])]


def check_quoted_paths():
    """`engine/cli/cli.c` in a doc names a file that must exist; generated
    places (tests/tmp/) and placeholders (NNN-slug, <name>) are not paths."""
    problems = []
    for f in markdown_docs():
        for quoted in re.findall(r"`([^`\s]+)`", read(f)):
            if not quoted.startswith(TOP) or quoted.startswith("tests/tmp/"):
                continue
            if re.search(r"NNN|<|\*|\.\.\.", quoted):
                continue
            for p in expand(quoted.rstrip(".,:;")):
                if not os.path.exists(os.path.join(ROOT, p)):
                    problems.append("%s quotes %s, which is not in the repository" % (f, p))
    report("quoted-paths-exist", problems)


def main():
    os.chdir(ROOT)
    sections = man_sections(read(MAN))
    check_render()
    check_verbs_and_flags(sections)
    check_environment_and_exits(sections)
    check_error_tokens()
    check_module_pages()
    check_links()
    check_quoted_paths()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
