"""The results tables in docs/RESULTS.md (and in docs/RESULTS_ARCHIVE.md, the sections measured on code since
superseded) are rebuilt from the run records committed in docs/results/ (studies/benchmark_kd.py --rebuild trains
nothing), so a table that drifts from its records fails here."""
import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT

RESULTS = os.path.join(ROOT, "docs", "RESULTS.md")
#: the sections measured on code since superseded, moved verbatim from docs/RESULTS.md (records still in docs/results/)
ARCHIVE = os.path.join(ROOT, "docs", "RESULTS_ARCHIVE.md")

# records folder -> the benchmark_kd.py arguments that produced it
STUDIES = {
    "docs/results/dino_study": ["--detrdistill", "--per-image", "--no-inconsistent", "--iters", "200",
                                "--seeds", "0", "1", "2"],
    "docs/results/fast_students": ["--fast-students", "--iters", "200", "--seeds", "0"],
    "docs/results/families/deformable_detr": ["--family", "deformable_detr", "--per-image", "--detrdistill",
                                              "--iters", "200", "--seeds", "0", "1", "2"],
    "docs/results/families/deformable_detr/first_run": ["--family", "deformable_detr", "--detrdistill", "--iters",
                                                        "200", "--seeds", "0", "1", "2"],
    "docs/results/families/deformable_detr_two_stage": ["--family", "deformable_detr_two_stage", "--per-image",
                                                        "--iters", "200", "--seeds", "0", "1", "2"],
    "docs/results/families/dino": ["--family", "dino", "--per-image", "--no-inconsistent", "--iters", "200",
                                   "--seeds", "0", "1", "2"],
    "docs/results/families/dab_deformable_detr": ["--family", "dab_deformable_detr", "--per-image", "--iters", "200",
                                                  "--seeds", "0", "1", "2"],
    "docs/results/families/dab_detr": ["--family", "dab_detr", "--per-image", "--iters", "800", "--seeds", "0", "1",
                                       "2"],
    "docs/results/class_terms/dino": ["--family", "dino", "--per-image", "--sigmoid", "--no-inconsistent",
                                               "--no-alone", "--iters", "200", "--seeds", "0", "1", "2"],
    "docs/results/class_terms/deformable_detr": ["--family", "deformable_detr", "--sigmoid", "--no-inconsistent",
                                                 "--iters", "200", "--seeds", "0", "1", "2"],
    "docs/results/class_terms/one_class": ["--family", "one_class/dino", "--boxes-only", "--no-inconsistent",
                                           "--no-alone", "--iters", "200", "--seeds", "0", "1", "2"],
    "docs/results/families/dab_detr/table3": ["--layer-compression", "--iters", "800", "--seeds", "0", "1", "2"],
    "docs/results/families/conditional_detr": ["--family", "conditional_detr", "--per-image", "--detrdistill",
                                               "--iters", "800", "--seeds", "0", "1", "2"],
    "docs/results/families/dab_detr/students200": ["--family", "dab_detr", "--iters", "200", "--seeds", "0", "1", "2"],
    "docs/results/demo/teacher400_students100": ["--per-image", "--no-inconsistent", "--iters", "100",
                                                 "--seeds", "0", "1", "2"],
    "docs/results/demo/teacher300_students150": ["--per-image", "--no-inconsistent", "--iters", "150",
                                                 "--seeds", "0", "1", "2"],
    "docs/results/demo/teacher2x500_students100": ["--per-image", "--no-inconsistent", "--iters", "100",
                                                   "--seeds", "0", "1", "2"],
}
#: records folder -> the page that quotes its table, where that is not docs/RESULTS.md: the R50 demo's
#: (docs/RESULTS_ARCHIVE.md, "The R50 demo (before 2026-12-07)")
QUOTED_ON = {records: ARCHIVE for records in ("docs/results/demo/teacher400_students100",
                                              "docs/results/demo/teacher300_students150",
                                              "docs/results/demo/teacher2x500_students100")}


def _section(page: str, heading: str) -> str:
    """The text of a page's section: from its heading line (e.g. "## `make demo`") to the next heading of the same
    or a higher level (lines in code blocks are no headings)."""
    lines = open(page).read().splitlines(keepends=True)
    level = len(heading.split(" ", 1)[0])
    start = [ln.rstrip("\n") for ln in lines].index(heading)
    fenced = False
    for end in range(start + 1, len(lines)):
        if lines[end].lstrip().startswith("```"):
            fenced = not fenced
        hashes = len(lines[end]) - len(lines[end].lstrip("#"))
        if not fenced and 0 < hashes <= level and lines[end][hashes:hashes + 1] == " ":
            break
    else:
        end = len(lines)
    return "".join(lines[start:end])


@pytest.mark.parametrize("records", list(STUDIES))
def test_committed_table_is_rebuilt_from_its_records(records, tmp_path):
    src = os.path.join(ROOT, records)
    out = tmp_path / "records"
    shutil.copytree(src, out)
    proc = subprocess.run([sys.executable, "studies/benchmark_kd.py", "--rebuild", "--output", str(out),
                           *STUDIES[records]], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rebuilt = (out / "results.md").read_text()
    assert rebuilt == open(os.path.join(src, "results.md")).read()
    # and the table quoted in docs/RESULTS.md (docs/RESULTS_ARCHIVE.md for an archived section) is that one
    page = QUOTED_ON.get(records, RESULTS)
    results_doc = open(page).read()
    for line in rebuilt.splitlines():
        if line.startswith("| "):
            assert line in results_doc, f"docs/{os.path.basename(page)} lacks the row {line!r} of {records}/results.md"


def test_family_summary_is_rebuilt_from_the_family_records(tmp_path):
    """docs/results/families/summary.md (one row per family) is what ``--summary`` writes from the
    committed family records, and docs/RESULTS.md quotes its rows."""
    out = tmp_path / "families"
    shutil.copytree(os.path.join(ROOT, "docs", "results", "families"), out)
    (out / "summary.md").unlink()
    proc = subprocess.run([sys.executable, "studies/benchmark_kd.py", "--summary", "--output", str(out)], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rebuilt = (out / "summary.md").read_text()
    assert rebuilt == open(os.path.join(ROOT, "docs", "results", "families", "summary.md")).read()
    rows = [line for line in rebuilt.splitlines() if line.startswith("| ") and not line.startswith("| family")]
    assert len(rows) == len([d for d in os.listdir(out) if (out / d / "runs.json").is_file()]) >= 3
    results_doc = open(os.path.join(ROOT, "docs", "RESULTS.md")).read()
    for line in rows:
        assert line in results_doc, f"docs/RESULTS.md lacks the summary row {line!r}"


def test_summary_refuses_a_folder_without_family_records(tmp_path):
    proc = subprocess.run([sys.executable, "studies/benchmark_kd.py", "--summary", "--output", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "--summary: no <family>/runs.json under" in proc.stderr


def test_rebuild_refuses_a_missing_record(tmp_path):
    (tmp_path / "teacher").mkdir()
    proc = subprocess.run([sys.executable, "studies/benchmark_kd.py", "--rebuild", "--output", str(tmp_path),
                           "--seeds", "0", "--no-inconsistent"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode != 0 and "--rebuild: no record" in proc.stderr


def _metrics_rows(metrics_json: str) -> list:
    """Every row of a Detectron2 metrics.json (one JSON object per line), in file order."""
    with open(metrics_json) as f:
        return [json.loads(line) for line in f]


def _evaluations(run: str) -> list:
    """[(iterations trained, {AP, AP50, ...})] of a run folder, as studies/benchmark_kd.py reads them."""
    sys.path.insert(0, os.path.join(ROOT, "studies"))
    from benchmark_kd import evaluations

    return evaluations(run, 10**9)


def _ap_cells(run: str) -> list:
    """The AP of each evaluation of a run folder, as docs/RESULTS.md quotes them (one decimal)."""
    return [f"{m['AP']:.1f}" for _, m in _evaluations(run)]


def _final_evaluation(metrics_json: str) -> dict:
    """The last row of a Detectron2 metrics.json that holds an evaluation (``bbox/AP``)."""
    return [r for r in _metrics_rows(metrics_json) if "bbox/AP" in r][-1]


def test_demo_teachers_are_quoted_with_their_records():
    """Every demo teacher recorded in docs/results/demo (with or without students) is quoted with its final AP
    in the "`make demo`" section of docs/RESULTS.md or, for the demo before 2026-12-07, in "The R50 demo (before
    2026-12-07)" of docs/RESULTS_ARCHIVE.md, and its record's last evaluation is at the iterations its folder
    name gives."""
    import re

    folder = os.path.join(ROOT, "docs", "results", "demo")
    section = (_section(RESULTS, "## `make demo`") + "\n"
               + _section(ARCHIVE, "## The R50 demo (before 2026-12-07)"))
    settings = [d for d in sorted(os.listdir(folder)) if os.path.isdir(os.path.join(folder, d))]
    assert "teacher400_freeze_at2" in settings, settings
    for setting in settings:
        final = _final_evaluation(os.path.join(folder, setting, "teacher", "metrics.json"))
        iters = int(re.match(r"teacher(?:\dx)?(\d+)", setting).group(1))
        assert final["iteration"] == iters, (setting, final["iteration"])
        assert f"{final['bbox/AP']:.1f} AP" in section or f"| {final['bbox/AP']:.1f} |" in section, setting


def test_the_latest_make_demo_table_is_its_records():
    """The table of the last timed `make demo` in docs/RESULTS.md is the one tools/demo.py prints from the
    committed records of its runs (final AP, AP50, AP75, APs, APm; the gain line too), and so is its summary
    over three seeds."""
    import statistics

    folder = os.path.join(ROOT, "docs", "results", "demo", "teacher300_r18_demo")
    section = _section(RESULTS, "## `make demo`")
    ap = {}
    for title, run, iters in [("teacher DINO R18 (2 enc / 3 dec)", "teacher", 300),
                              ("student DINO R18 (1 enc / 2 dec) alone", "student_alone", 100),
                              ("student DINO R18 (1 enc / 2 dec) + KD-DETR", "student", 100)]:
        final = _final_evaluation(os.path.join(folder, run, "metrics.json"))
        assert final["iteration"] == iters, (run, final["iteration"])
        ap[run] = final["bbox/AP"]
        cells = " | ".join(f"{final['bbox/' + k]:.1f}" for k in ("AP", "AP50", "AP75", "APs", "APm"))
        assert f"| {title} | {iters} | 8 | {cells} |" in section, (title, cells)
    assert f"buys the student at 100 iterations: {ap['student'] - ap['student_alone']:+.1f} AP" in section
    seeds = {run: [_final_evaluation(os.path.join(folder, run + suffix, "metrics.json"))["bbox/AP"]
                   for suffix in ("", "_seed1", "_seed2")] for run in ("student_alone", "student")}
    spread = {run: f"{statistics.mean(v):.1f} ± {statistics.stdev(v):.1f}" for run, v in seeds.items()}
    assert f"alone {spread['student_alone']} AP, + KD-DETR {spread['student']} AP" in section
    gains = ", ".join(f"{kd - alone:+.1f}" for kd, alone in zip(seeds["student"], seeds["student_alone"]))
    assert f"per seed: {gains} AP" in section


def test_pretrained_backbone_rows_are_their_records():
    """Every record of docs/results/pretrained_backbones is quoted in docs/RESULTS.md, in the
    row that starts with its name, with its final AP."""

    folder = os.path.join(ROOT, "docs", "results", "pretrained_backbones")
    runs = sorted(os.listdir(folder))
    assert len(runs) >= 6, runs
    lines = open(os.path.join(ROOT, "docs", "RESULTS.md")).read().splitlines()
    for run in runs:
        ap = _final_evaluation(os.path.join(folder, run, "metrics.json"))["bbox/AP"]
        named = [ln for ln in lines if ln.startswith(f"| `{run}` |")]
        assert len(named) == 1, f"docs/RESULTS.md has {len(named)} rows for the record {run}"
        assert f"| {ap:.1f} |" in named[0], f"{run}: final AP {ap:.1f} is not in {named[0]!r}"


def test_single_scale_comparison_rows_are_their_records():
    """The side-by-side of our DAB-DETR and detrex's quotes each record's losses and APs."""
    folder = os.path.join(ROOT, "docs", "results", "single_scale")
    doc = open(os.path.join(ROOT, "docs", "RESULTS.md")).read()
    curves = {}
    for run in ("dab_detr_r50", "detrex_dab_detr_r50"):
        rows = _metrics_rows(os.path.join(folder, run, "metrics.json"))
        curves[run] = {}
        for r in rows:
            if "loss_class" in r:
                curves[run].setdefault(r["iteration"] + 1, (r["loss_class"], r["loss_giou"]))
    for it in (10, 50, 100, 200, 300, 400, 500):
        cells = " | ".join(f"{c:.3f} / {g:.3f}" for c, g in (curves[run][it] for run in curves))
        assert f"| {it} | {cells} |" in doc, f"iteration {it}: {cells}"
    ours = {r["iteration"] + 1: r for r in _metrics_rows(os.path.join(folder, "dab_detr_r50", "metrics.json"))
            if "bbox/AP" in r}
    detrex = json.load(open(os.path.join(folder, "detrex_dab_detr_r50", "eval.json")))["bbox"]
    assert (f"| ours | {ours[500]['bbox/AP']:.2f} / {ours[500]['bbox/AP50']:.2f} | "
            f"{ours[1000]['bbox/AP']:.2f} / {ours[1000]['bbox/AP50']:.2f} |") in doc
    assert f"| detrex | {detrex['AP']:.2f} / {detrex['AP50']:.2f} | not run |" in doc


def test_single_scale_probe_rows_are_their_records():
    """Every run of docs/results/single_scale/probes has its row in docs/RESULTS.md with its class / GIoU
    terms at iterations 400 and 800 and its last AP / AP50."""
    folder = os.path.join(ROOT, "docs", "results", "single_scale", "probes")
    runs = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
    assert len(runs) >= 8, runs
    lines = open(os.path.join(ROOT, "docs", "RESULTS.md")).read().splitlines()
    for run in runs:
        rows = _metrics_rows(os.path.join(folder, run, "metrics.json"))
        terms = {r["iteration"] + 1: (r["loss_class"], r["loss_giou"]) for r in rows if "loss_class" in r}
        last = [r for r in rows if "bbox/AP" in r][-1]
        cells = [f"{terms[it][0]:.3f} / {terms[it][1]:.3f}" for it in (400, 800)]
        cells.append(f"{last['bbox/AP']:.2f} / {last['bbox/AP50']:.2f}")
        named = [ln for ln in lines if ln.startswith(f"| `probes/{run}` |")]
        assert len(named) == 1, f"docs/RESULTS.md has {len(named)} rows for the probe {run}"
        assert named[0].endswith(" | " + " | ".join(cells) + " |"), (named[0], cells)


@pytest.mark.parametrize("family,arms,probes", [("dab_detr", 3, 0), ("dab_detr/table3", 4, 2),
                                                ("conditional_detr", 4, 0)])
def test_single_scale_row_evaluations_are_their_records(family, arms, probes):
    """docs/RESULTS.md quotes every evaluation (200, 400, 600, 800) of each run of the DAB-DETR and
    Conditional DETR rows and of DAB-DETR's Table 3 students (three seeds per arm; one-seed probes in a
    ``probes/`` folder beside them: Table 3's literal 6/2 student, alone and distilled)."""
    folder = os.path.join(ROOT, "docs", "results", "families", family)
    runs = sorted(d for d in os.listdir(folder) if "_seed" in d)
    assert len(runs) == 3 * arms, runs
    probed = os.path.join(folder, "probes")
    runs += [f"probes/{d}" for d in sorted(os.listdir(probed)) if "_seed" in d] if os.path.isdir(probed) else []
    assert len(runs) == 3 * arms + probes, runs
    lines = open(os.path.join(ROOT, "docs", "RESULTS.md")).read().splitlines()
    for run in runs:
        cells = _ap_cells(os.path.join(folder, run))
        assert len(cells) == 4, (run, cells)
        named = [ln for ln in lines if ln.startswith(f"| `{family}/{run}` |")]
        assert len(named) == 1 and named[0] == f"| `{family}/{run}` | {' | '.join(cells)} |", (run, cells, named)


def test_table3_literal_6_2_terms_are_their_records():
    """The last-layer terms of Table 3's 6/2 probe and of the seed-0 2/2 runs beside it in docs/RESULTS.md
    are those of their committed records (class / GIoU at 200, 400 and 800; KD-DETR's terms at 200 and 800)."""
    folder = os.path.join(ROOT, "docs", "results", "families", "dab_detr", "table3")
    doc = open(os.path.join(ROOT, "docs", "RESULTS.md")).read()
    for label, run in [("6/2 alone", "probes/dab_detr_r18_enc6_dec2_seed0"),
                       ("2/2 alone", "dab_detr_r18_enc2_dec2_seed0"),
                       ("6/2 KD-DETR", "probes/dab_detr_r50_r18_enc6_dec2_seed0"),
                       ("2/2 KD-DETR", "dab_detr_r50_r18_enc2_dec2_seed0")]:
        terms = {r["iteration"] + 1: r for r in _metrics_rows(os.path.join(folder, run, "metrics.json"))
                 if "loss_class" in r}
        cells = [f"{terms[it]['loss_class']:.3f} / {terms[it]['loss_giou']:.3f}" for it in (200, 400, 800)]
        cells += [f"{terms[it]['loss_kd_cls']:.3f} / {terms[it]['loss_kd_giou']:.3f}" if "KD" in label else "-"
                  for it in (200, 800)]
        assert f"| {label} | {' | '.join(cells)} |" in doc, (label, cells)


def test_the_longer_deformable_detr_teacher_is_its_record():
    """The AP-per-evaluation row of the 2,000-iteration plain Deformable DETR teacher in docs/RESULTS.md is
    its committed record's."""
    cells = " | ".join(_ap_cells(os.path.join(ROOT, "docs", "results", "families", "deformable_detr", "teacher_2000")))
    assert f"| AP, 2,000-iteration schedule | {cells} |" in open(os.path.join(ROOT, "docs", "RESULTS.md")).read()


@pytest.mark.parametrize("family,name", [("dab_detr", "DAB-DETR"), ("conditional_detr", "Conditional DETR")])
def test_single_scale_teacher_curves_are_their_records(family, name):
    """The AP-per-evaluation row of "A <family> R50 teacher in this setting" in docs/RESULTS.md is the
    committed teacher record's."""
    evals = [(it, m["AP"]) for it, m in _evaluations(os.path.join(ROOT, "docs", "results", "families", family,
                                                                    "teacher"))]
    doc = open(os.path.join(ROOT, "docs", "RESULTS.md")).read()
    section = doc.split(f"### A {name} R50 teacher in this setting", 1)[1].split("\n### ", 1)[0]
    assert f"| iteration | {' | '.join(str(it) for it, _ in evals)} |" in section, evals
    assert f"| AP | {' | '.join(f'{ap:.1f}' for _, ap in evals)} |" in section, evals
    rerun = os.path.join(ROOT, "docs", "results", "families", family, "table3", "teacher")
    if os.path.isdir(rerun):  # DAB-DETR's: the same command again, the Table 3 students' teacher
        cells = " | ".join(_ap_cells(rerun))
        assert f"| AP, the same command again (fresh machine, session 12) | {cells} |" in section


def test_single_scale_probe_printout_is_quoted():
    """The feature scales and box spreads docs/RESULTS.md quotes are those of the committed printout of
    studies/probe_single_scale.py."""
    import re

    text = open(os.path.join(ROOT, "docs", "results", "single_scale", "probes", "probe_single_scale.txt")).read()
    section = open(os.path.join(ROOT, "docs", "RESULTS.md")).read().split("### What the single-scale models read")[1]
    projections = re.findall(r"^projection std ([0-9.]+)", text, re.M)
    spreads = re.findall(r"^box std across images ([0-9.]+), across queries ([0-9.]+)", text, re.M)
    assert len(projections) == len(spreads) == 4, text
    for std in projections[:3]:
        assert f"{float(std):.1f}" in section, std
    for across_images, across_queries in spreads:
        assert across_images in section and across_queries in section, (across_images, across_queries)


def diagnosis_row(name: str, folder: str) -> str:
    """The row docs/RESULTS.md gives a diagnostic run: AP at its two evaluations, and its ground-truth
    GIoU and KD-DETR terms (last decoder layer) at its last logged iteration."""
    rows = _metrics_rows(os.path.join(folder, "metrics.json"))
    ap = [r["bbox/AP"] for r in sorted(rows, key=lambda r: r["iteration"]) if "bbox/AP" in r]
    last = [r for r in rows if "total_loss" in r][-1]
    cells = [f"`{name}`", *(f"{a:.1f}" for a in ap)]
    terms = ("loss_giou", "loss_kd_cls", "loss_kd_l1", "loss_kd_giou")
    cells += [f"{last[k]:.2f}" if k in last else "-" for k in terms]
    return "| " + " | ".join(cells) + " |"


def test_dab_deformable_diagnosis_rows_are_their_records():
    """The DAB-Deformable DETR diagnosis in docs/RESULTS.md quotes each seed-0 run's committed record."""
    base = os.path.join(ROOT, "docs", "results", "families", "dab_deformable_detr")
    names = ["student_seed0", "kddetr_seed0", "kddetr_per_image_seed0"]
    names += [f"diagnosis/{d}" for d in sorted(os.listdir(os.path.join(base, "diagnosis")))]
    results_doc = open(os.path.join(ROOT, "docs", "RESULTS.md")).read()
    lines = results_doc.splitlines()
    for name in names:
        row = diagnosis_row(name, os.path.join(base, name))
        name_cell, numbers = row.split(" | ", 1)
        quoted = [ln for ln in lines if ln.startswith(name_cell + " |")]  # then a "what changed" column
        assert quoted and quoted[0].endswith(" | " + numbers), f"docs/RESULTS.md lacks the diagnosis row {row!r}"
