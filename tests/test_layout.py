"""The house's layout: every product tool and every study is listed in its folder's index."""
import glob
import os

import pytest
from conftest import ROOT


@pytest.mark.parametrize("folder", ["tools", "studies"])
def test_every_script_is_listed_in_its_index(folder):
    index = open(os.path.join(ROOT, folder, "README.md")).read()
    scripts = [os.path.basename(p) for p in glob.glob(os.path.join(ROOT, folder, "*.py"))]
    scripts += [os.path.basename(p) for p in glob.glob(os.path.join(ROOT, folder, "*.sh"))]
    assert scripts
    for name in scripts:
        assert f"| `{name}` |" in index, f"{folder}/{name} is not in {folder}/README.md"
        assert f"{folder}/{name}" in index, f"{folder}/README.md gives no example of {name}"


def test_studies_are_not_in_tools():
    """Drivers of the docs' studies and probes live in studies/, not among the product tools."""
    study_names = ("benchmark_kd", "distill_cost", "overfit_batch", "detrex_dab_detr")
    for path in glob.glob(os.path.join(ROOT, "tools", "*.py")):
        name = os.path.basename(path)[:-3]
        assert name not in study_names and not name.startswith("probe_"), path


def _code_lines(path):
    """A config's lines of code: without imports, docstrings, comments, blank lines and closing brackets."""
    import ast

    source = open(path).read()
    skipped = set()
    for node in ast.walk(ast.parse(source)):
        docstring = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(
            node.value.value, str)
        if isinstance(node, (ast.Import, ast.ImportFrom)) or docstring:
            skipped.update(range(node.lineno, node.end_lineno + 1))
    lines = [line.split("#")[0].strip() for i, line in enumerate(source.splitlines(), 1) if i not in skipped]
    return [line for line in lines if line and line not in (")", "]", "}", "),", "],")]


def test_no_two_configs_repeat_more_than_their_imports():
    """A config that differs from another in a few keys is that config plus those keys (derived by import, as
    detrex's). Two experiment configs may share at most two lines of code: the opening of the same helper call
    (``model = kd_detr(``) and one value they choose alike (e.g. ``general=100``); configs/models and
    configs/common hold the builders they call."""
    import collections
    import itertools

    paths = [p for p in glob.glob(os.path.join(ROOT, "configs", "**", "*.py"), recursive=True)
             if os.sep + "models" + os.sep not in p and os.sep + "common" + os.sep not in p]
    assert len(paths) > 50
    lines = {p: collections.Counter(_code_lines(p)) for p in paths}
    for a, b in itertools.combinations(paths, 2):
        shared = lines[a] & lines[b]
        assert sum(shared.values()) <= 2, (os.path.relpath(a, ROOT), os.path.relpath(b, ROOT), sorted(shared))


def _slug(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped except '-' and '_', each space a '-'."""
    import re

    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path):
    """The anchors of a Markdown file's headings (outside code blocks); a repeated heading gets -1, -2, ..."""
    import re

    anchors, fenced = set(), False
    for line in open(path, encoding="utf-8"):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        heading = None if fenced else re.match(r"#{1,6} +(.*?)[ #]*$", line.rstrip("\n"))
        if heading:
            slug = base = _slug(heading.group(1))
            n = 0
            while slug in anchors:
                n += 1
                slug = f"{base}-{n}"
            anchors.add(slug)
    return anchors


def _relative_links(path):
    """The targets of a Markdown file's links and images that point into the repository (no scheme), outside code
    blocks and code spans."""
    import re

    text = re.sub(r"(?ms)^[ \t]*```.*?^[ \t]*```", "", open(path, encoding="utf-8").read())
    text = re.sub(r"`[^`\n]*`", "", text)
    targets = [m.group(1) for m in re.finditer(r"\[[^\]]*\]\(<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\)", text)]
    return [t for t in targets if not re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", t)]


def test_docs_links_resolve():
    """Every relative link of README.md and docs/*.md names a file that exists and, with a #fragment into a
    Markdown file, a heading of that file (GitHub's anchors)."""
    pages = ["README.md"] + sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))
    assert "docs/RESULTS.md" in pages and "docs/ARCHITECTURE.md" in pages, pages
    broken = []
    for page in pages:
        for target in _relative_links(os.path.join(ROOT, page)):
            name, _, fragment = target.partition("#")
            dest = os.path.normpath(os.path.join(ROOT, os.path.dirname(page), name or os.path.basename(page)))
            if not os.path.exists(dest):
                broken.append(f"{page}: {target} (no such file)")
            elif fragment and dest.endswith(".md") and fragment not in _anchors(dest):
                broken.append(f"{page}: {target} (no heading #{fragment} in {os.path.relpath(dest, ROOT)})")
    assert not broken, "links that do not resolve:\n" + "\n".join(broken)
