"""The README a user acts on: short, its headline table the committed records, and every command of its quick
start and of its COCO section runnable as written (on a machine without COCO, teacher or ImageNet weights,
each COCO command stops with one message naming what is missing, no traceback)."""
import os
import re
import shlex
import subprocess
import sys

import pytest
from conftest import ROOT

README = open(os.path.join(ROOT, "README.md")).read()


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end > 0 else None]


def commands(text: str) -> list:
    """The shell commands of the bash blocks of ``text``, continuation lines joined, comments dropped."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("#")[0].strip()
            if line:
                out.append(line)
    return out


def table_rows(text: str) -> dict:
    """First column -> the other cells, for every row of the markdown tables in ``text``."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) > 1 and not set(cells[1]) <= set("-"):
            rows[cells[0]] = cells[1:]
    return rows


def test_the_readme_is_short():
    assert len(README.splitlines()) <= 250


def test_the_headline_table_is_the_families_records():
    """Teacher, R18 alone, KD-DETR per image and DETRDistill of every family, as in summary.md (which
    tests/test_results_records.py rebuilds from the runs' records)."""
    summary = table_rows(open(os.path.join(ROOT, "docs", "results", "families", "summary.md")).read())
    header = summary["family"]
    headline = table_rows(README[:README.index("## Quick start")])
    families = [f for f in summary if f != "family"]
    assert families and set(families) <= set(headline)
    for family in families:
        row = dict(zip(header, summary[family]))
        teacher, alone, kd, dd, iters = headline[family]
        assert (teacher, alone, kd, dd, iters) == (row["teacher R50"], row["R18 alone"],
                                                   row["KD-DETR, class term per image"], row["DETRDistill"],
                                                   row["iterations (teacher / students)"]), family


def test_the_quick_start_commands_are_make_targets():
    """``make demo`` and ``make test`` resolve (a dry run: the demo trains for a quarter of an hour and the
    suite is this suite); the demo's command is tools/demo.py, whose run is the demo's own tests'."""
    assert commands(section("Quick start")) == ["make demo", "make test"]
    for target, runs in (("demo", "tools/demo.py"), ("test", "pytest")):
        dry = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True)
        assert dry.returncode == 0 and runs in dry.stdout, dry.stdout + dry.stderr


@pytest.mark.parametrize("command", commands(section("Distil on COCO")))
def test_each_coco_command_runs_to_the_missing_inputs_message(command, tmp_path):
    """As written, on a machine without COCO, the teacher, the ImageNet R-18 or a network: one message that
    names the missing input and how to get it, exit status 1, no traceback."""
    argv = shlex.split(command)
    assert argv[0] == ".venv/bin/python"
    env = dict(os.environ, PYTHONWARNINGS="ignore", DETECTRON2_DATASETS=str(tmp_path / "datasets"),
               TORCH_HOME=str(tmp_path / "torch"), https_proxy="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9")
    run = subprocess.run([sys.executable, *argv[1:]], cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    expected = {"tools/convert_detrex.py": "dino_r50_4scale_12ep.pth", "tools/convert_torchvision.py":
                "--input <file>"}.get(argv[1], "Missing inputs" if "--eval-only" not in argv else "model_final.pth")
    assert expected in run.stderr + run.stdout, run.stderr
