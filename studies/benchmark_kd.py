#!/usr/bin/env python
"""Synthetic evidence for KD-DETR: student AP with and without distillation.

``--family`` picks the detector family (dino, dab_detr, deformable_detr (plain), deformable_detr_two_stage
(with box refinement), dab_deformable_detr, conditional_detr, rtdetr (RT-DETR; ``--from-dino`` also distils its
R18 from the DINO R50 teacher), or ``all``, one after the other); configs are configs/synthetic/<family>_*.py.

1. Teacher: reuses ``--teacher`` (default output/synthetic/<family>_r50/model_final.pth) if the
   file exists, else trains it with configs/synthetic/<family>_r50.py (its ``train.max_iter``: 1000, DAB-DETR and
   Conditional DETR 4000; or ``--teacher-iters``; DINO: 21-38 min on 2 CPU cores, DAB-DETR 44 min, Conditional
   DETR 27 min) at seed 0.
2. Students, at equal iterations and schedule, for every seed: the R18 student alone
   (<family>_r18.py), with KD-DETR as configured (<family>_r50_r18.py: the sigmoid class term per image),
   for DINO with the "inconsistent" baseline of KD-DETR Table 1 (configs/synthetic/ablations/...), with
   ``--softmax`` KD-DETR with the authors' softmax class term (per image, weight 2), with ``--per-image``
   with the softmax term per image at weight 1, with ``--authors-sum`` with the authors' sum over the batch's
   images (weight 1), with ``--sigmoid`` with the sigmoid class term (the configs' now), with
   ``--detrdistill`` DETRDistill (detrdistill_<family>_r50_r18.py) and with ``--combined``
   both distillers (kd_detr_detrdistill_<family>_r50_r18.py). ``--layer-compression`` instead trains
   KD-DETR Table 3 on DAB-DETR: the R18 students with 2/2 and 1/2 encoder/decoder layers (the
   teacher's are 2/3) alone and with KD-DETR, its class term per image (configs/synthetic/layer_compression/);
   ``--fast-students`` the faster DINO students (configs/synthetic/fast_students/).
   Each run goes through train_net.py and is evaluated on synthetic_val by COCOEvaluator every
   ``--eval-period`` iterations.

Writes ``<out>/results.md`` (mean and spread over seeds), ``<out>/ap_vs_iter.png``,
``<out>/runs.json`` (with ``--family all`` also ``<out>/summary.md``, one row per family; ``--summary``
writes it from finished folders). Finished runs are reused (delete their folder to re-run). The training
cost of the same configs (FLOPs, step times) is studies/distill_cost.py's.

    .venv/bin/python studies/benchmark_kd.py --iters 300 --seeds 0 1 2
    .venv/bin/python studies/benchmark_kd.py --family all --detrdistill --no-inconsistent \
        --iters 200 --eval-period 100 --seeds 0 1 2 --output output/families   # docs/RESULTS.md family table
    .venv/bin/python studies/benchmark_kd.py --family dab_detr --per-image --iters 800 \
        --eval-period 200 --seeds 0 1 2 --output output/families/dab_detr_800   # DAB-DETR row
    .venv/bin/python studies/benchmark_kd.py --layer-compression --iters 800 --eval-period 200 --seeds 0 1 2 \
        --output output/families/dab_detr_table3   # KD-DETR Table 3 on DAB-DETR
    .venv/bin/python studies/benchmark_kd.py --summary --output docs/results/families   # one row per family
    .venv/bin/python studies/benchmark_kd.py --detrdistill --per-image --no-inconsistent --iters 200 \
        --eval-period 100 --seeds 0 1 2 --teacher-iters 500
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "projects", "KDDETR"))  # kddetr from a source checkout

FAMILIES = ["dino", "dab_detr", "deformable_detr", "deformable_detr_two_stage", "dab_deformable_detr",
            "conditional_detr", "rtdetr"]
#: the one-class synthetic data (configs/synthetic/one_class/: one class "shape"), a family of its own for
#: ``--family`` (not in ``--family all``): its pair ships the sigmoid class term, a softmax one is refused there
ONE_CLASS = "one_class/dino"
STUDENT, KD = "student only (R18)", "KD-DETR (R50 -> R18)"
DD, BOTH = "DETRDistill (R50 -> R18)", "KD-DETR + DETRDistill (R50 -> R18)"
# KD-DETR's class-term settings beside the configs' (the sigmoid term per image, T 1, weight 0.5, since
# 2026-12-08; before, the authors' softmax term per image at weight 2, the "KD-DETR (R50 -> R18)" rows of the
# records before then): the authors' softmax term at its defaults (T 10, per image at weight 2), the softmax
# term per image at weight 1, the authors' sum over the process's images at weight 1, and the sigmoid (binary
# KL) term at T 1 and weight 0.5, the weight at which it pulls the student's logits about as hard as the
# softmax term does at the start (studies/probe_points.py --class-terms: its gradient is ~3-4x the softmax
# one's at weight 1; docs/RESULTS.md); the default now, so --sigmoid only rebuilds the records before it
SOFTMAX = "KD-DETR, authors' softmax class term"
PER_IMAGE = "KD-DETR, class term per image"
AUTHORS_SUM = "KD-DETR, authors' class sum"
SIGMOID = "KD-DETR, sigmoid class term"
# KD-DETR with its boxes only (class weight 0): what the authors' softmax class term leaves on one class, where
# it is zero by construction (the arm the one-class study compares the sigmoid term with)
BOXES_ONLY = "KD-DETR, boxes only"
# --from-dino (family rtdetr): the RT-DETR R18 student distilled from the synthetic DINO R50 teacher instead of
# the RT-DETR R50 one (configs/synthetic/*dino_r50_rtdetr_r18.py), the headline pair of the real-time students
FROM_DINO = "KD-DETR from DINO R50 (-> RT-DETR R18)"
DD_FROM_DINO = "DETRDistill from DINO R50 (-> RT-DETR R18)"
DINO_TEACHER = "output/synthetic/dino_r50/model_final.pth"
CLASS_TERM_ARMS = {
    SOFTMAX: ["model.loss.class_term=softmax"],
    PER_IMAGE: ["model.loss.class_term=softmax", "model.loss.weights.cls=1.0"],
    AUTHORS_SUM: ["model.loss.class_term=softmax", "model.loss.normalization=authors", "model.loss.weights.cls=1.0"],
    SIGMOID: ["model.loss.class_term=sigmoid", "model.loss.temperature=1.0", "model.loss.weights.cls=0.5"],
    BOXES_ONLY: ["model.loss.weights.cls=0.0"],
}
#: arm -> (its command-line flag, what it trains)
CLASS_TERM_FLAGS = {
    SOFTMAX: ("--softmax", "the authors' softmax class term per image at weight 2 and T 10 (their loss at 2 "
              "images per process)"),
    PER_IMAGE: ("--per-image", "the softmax class term per image at weight 1"),
    AUTHORS_SUM: ("--authors-sum", "the authors' softmax class term, summed over the images of the process"),
    SIGMOID: ("--sigmoid", "the sigmoid class term at T 1, weight 0.5 (the configs' since 2026-12-08: the "
              "same runs as the configs' arm; kept to rebuild the records from before)"),
    BOXES_ONLY: ("--boxes-only", "its class term off: what the softmax class term leaves on one class "
                 "(--family one_class/dino)"),
}
TAGS = {STUDENT: "student", KD: "kddetr", DD: "detrdistill", BOTH: "kddetr_detrdistill", PER_IMAGE: "kddetr_per_image",
        SOFTMAX: "kddetr_softmax",
        AUTHORS_SUM: "kddetr_authors_sum", SIGMOID: "kddetr_sigmoid", BOXES_ONLY: "kddetr_boxes_only",
        FROM_DINO: "kddetr_from_dino", DD_FROM_DINO: "detrdistill_from_dino"}
#: (arm, the arm it is compared with seed by seed) in a table, beside each arm's gain over the student alone
VERSUS = [(KD, SOFTMAX), (KD, PER_IMAGE), (KD, AUTHORS_SUM), (SIGMOID, KD), (KD, BOXES_ONLY)]


def family_arms(family: str, inconsistent: bool = True, detrdistill: bool = False, combined: bool = False,
                per_image: bool = False, skip_missing: bool = False, authors_sum: bool = False,
                sigmoid: bool = False, boxes_only: bool = False, from_dino: bool = False,
                softmax: bool = False) -> dict:
    """arm -> (config, overrides) of ``family``; ``skip_missing`` (``--family all``) leaves out the
    distiller arms a family has no config for instead of refusing. ``from_dino`` (RT-DETR only): also the
    student distilled from the DINO R50 teacher (and with ``detrdistill`` by DETRDistill from it)."""
    arms = {STUDENT: (f"configs/synthetic/{family}_r18.py", []), KD: (f"configs/synthetic/{family}_r50_r18.py", [])}
    for arm, on in ((SOFTMAX, softmax), (PER_IMAGE, per_image), (AUTHORS_SUM, authors_sum), (SIGMOID, sigmoid),
                    (BOXES_ONLY, boxes_only)):
        if on:  # the pair config with KD-DETR's class term set otherwise (KDDETRLoss.normalization, class_term)
            arms[arm] = (f"configs/synthetic/{family}_r50_r18.py", CLASS_TERM_ARMS[arm])
    if family == "dino" and inconsistent:
        arms["inconsistent baseline"] = ("configs/synthetic/ablations/dino_r50_r18_inconsistent.py", [])
    distillers = ([(DD, "detrdistill")] if detrdistill else []) + ([(BOTH, "kd_detr_detrdistill")] if combined else [])
    if distillers:
        for arm, prefix in distillers:
            config = f"configs/synthetic/{prefix}_{family}_r50_r18.py"
            if not os.path.isfile(os.path.join(ROOT, config)):
                if skip_missing:
                    continue
                have = sorted(f[len(prefix) + 1:-len("_r50_r18.py")] for f in os.listdir(os.path.join(
                    ROOT, "configs/synthetic")) if f.startswith(prefix + "_") and f.endswith("_r50_r18.py"))
                raise SystemExit(f"--detrdistill/--combined: no {config} for the family '{family}' (synthetic "
                                 f"{prefix} configs exist for: {', '.join(have)})")
            arms[arm] = (config, [])
    if from_dino:
        if family != "rtdetr":
            raise SystemExit("--from-dino distils the RT-DETR student from the DINO teacher: it needs --family "
                             f"rtdetr, not {family}")
        teacher = [f"model.teacher_weights={DINO_TEACHER}"]
        arms[FROM_DINO] = ("configs/synthetic/dino_r50_rtdetr_r18.py", teacher)
        if detrdistill:
            arms[DD_FROM_DINO] = ("configs/synthetic/detrdistill_dino_r50_rtdetr_r18.py", teacher)
    return arms


# Faster DINO students (configs/synthetic/fast_students/), alone and with KD-DETR, with --fast-students:
# arm -> (config, overrides); ALONE_BASELINE names each distilled arm's student-alone arm.
FAST = {}
ALONE_BASELINE = {}
for _name, _desc in (("enc1_dec2", "R18, 1/2 enc/dec layers"), ("s16", "R18, levels from stride 16")):
    FAST[f"{_desc}, alone"] = (f"configs/synthetic/fast_students/dino_r18_{_name}.py", [])
    FAST[f"{_desc}, KD-DETR"] = (f"configs/synthetic/fast_students/dino_r50_r18_{_name}.py", [])
    ALONE_BASELINE[f"{_desc}, KD-DETR"] = f"{_desc}, alone"

# KD-DETR Table 3 on the synthetic data, with --layer-compression (DAB-DETR): R18 students with fewer
# encoder/decoder layers than the synthetic R50 teacher's 2/3 (configs/synthetic/layer_compression/: 2/2 cuts the
# decoder as the paper's 6/2 does, 1/2 both as its 2/2), alone and with KD-DETR from that teacher (its class term
# per image, set in those configs: the summed one gains nothing for the 2/3 DAB-DETR student).
COMPRESSED = {}
for _enc, _dec in ((2, 2), (1, 2)):
    _desc = f"R18, {_enc}/{_dec} enc/dec layers"
    COMPRESSED[f"{_desc}, alone"] = (f"configs/synthetic/layer_compression/dab_detr_r18_enc{_enc}_dec{_dec}.py", [])
    COMPRESSED[f"{_desc}, KD-DETR, class term per image"] = (  # at weight 1, as the records were measured
        f"configs/synthetic/layer_compression/dab_detr_r50_r18_enc{_enc}_dec{_dec}.py", CLASS_TERM_ARMS[PER_IMAGE])
    ALONE_BASELINE[f"{_desc}, KD-DETR, class term per image"] = f"{_desc}, alone"

# KD-DETR's other ablations (Tables 1 and 5), added with --ablations
ABLATIONS = {
    f"{name.replace('_', ' ')}": (f"configs/synthetic/ablations/dino_r50_r18_{name}.py", [])
    for name in ("similar_foreground", "similar_general", "general_only", "specific_only", "no_fg_weight")
}
METRICS = ["AP", "AP50", "AP75", "APs", "APm", "APl"]


def log(msg: str) -> None:
    print(f"[benchmark_kd {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def train(config: str, out: str, overrides, log_file: str) -> None:
    cmd = [sys.executable, "train_net.py", "--config-file", config, f"train.output_dir={out}", *overrides]
    log(" ".join(cmd[1:]))
    with open(log_file, "w") as f:
        proc = subprocess.run(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT,
                              env=dict(os.environ, PYTHONWARNINGS="ignore"))
    if proc.returncode != 0:
        raise SystemExit(f"training failed (exit {proc.returncode}), see {log_file}")


def evaluations(out: str, max_iter: int):
    """[(iterations trained, {AP, AP50, ...})] from a run's metrics.json (periodic evaluations are
    stored at the 0-based index of their iteration, the final one at the iteration count itself;
    both are capped at ``max_iter`` and at the iterations the run logged)."""
    with open(os.path.join(out, "metrics.json")) as f:
        records = [json.loads(line) for line in f]
    trained = [m["iteration"] + 1 for m in records if "total_loss" in m]
    cap = min(max_iter, max(trained)) if trained else max_iter
    return [(min(m["iteration"] + 1, cap), {k: m.get(f"bbox/{k}", float("nan")) for k in METRICS})
            for m in records if "bbox/AP" in m]


#: override prefixes a teacher config shares with the students' (``model.*`` keys differ between a
#: single-model config and a pair's, so they go to the students only)
SHARED_KEYS = ("train.", "optimizer.", "dataloader.", "lr_multiplier.")


def teacher_opts(opts) -> list:
    """The ``key=value`` overrides that also apply to a teacher trained here (e.g.
    ``train.init_checkpoint=""`` to train every model from scratch)."""
    return [o for o in opts if o.startswith(SHARED_KEYS)]


def run_arms(args) -> dict:
    runs = {}
    if args.fast_students:
        arms = dict(FAST)
    elif args.layer_compression:
        arms = dict(COMPRESSED)
    else:
        arms = {**family_arms(args.family, not args.no_inconsistent, args.detrdistill, args.combined, args.per_image,
                              skip_missing=args.all_families, authors_sum=args.authors_sum, sigmoid=args.sigmoid,
                              boxes_only=args.boxes_only, from_dino=args.from_dino, softmax=args.softmax),
                **(ABLATIONS if args.ablations else {})}
        if args.no_alone:
            del arms[STUDENT]
    for seed in args.seeds:
        for arm, (config, extra) in arms.items():
            named = arm in ABLATIONS or arm in FAST or arm in COMPRESSED  # tagged by their config's name
            tag = f"{os.path.basename(config)[:-3]}_seed{seed}" if named else \
                f"{TAGS.get(arm, arm.split()[0].lower())}_seed{seed}"
            out = os.path.join(args.output, tag)
            if args.rebuild:  # the committed records: metrics.json only, never train
                if not os.path.isfile(os.path.join(out, "metrics.json")):
                    raise SystemExit(f"--rebuild: no record {out}/metrics.json for {arm}, seed {seed}")
            elif os.path.isfile(os.path.join(out, "model_final.pth")) and evaluations(out, args.iters):
                refuse_stale(out, config, [*extra, *args.opts])  # reused: it must be what the arm trains
            else:
                os.makedirs(out, exist_ok=True)
                t0 = time.perf_counter()
                overrides = [f"train.max_iter={args.iters}", f"train.eval_period={args.eval_period}",
                             f"train.seed={seed}", "train.checkpointer.period=1000000", *extra, *args.opts]
                if "student" in load_config_keys(config) and not any(o.startswith("model.teacher_weights=")
                                                                     for o in extra):  # an arm's own teacher
                    overrides.append(f"model.teacher_weights={args.teacher}")
                train(config, out, overrides, os.path.join(out, "stdout.txt"))
                final = evaluations(out, args.iters)[-1][1]["AP"]
                log(f"{arm} seed {seed}: {time.perf_counter() - t0:.0f} s, final AP {final:.1f}")
            runs.setdefault(arm, {})[seed] = evaluations(out, args.iters)
    return runs


def refuse_stale(out: str, config: str, overrides) -> None:
    """A finished run whose distillation loss is no longer its arm's (e.g. trained before a default changed)
    is refused rather than reused under the arm's name."""
    from kddetr.config import loss_differences

    differences = loss_differences(out, config, overrides)
    if differences:
        raise SystemExit(f"{out} was trained with another distillation loss than its arm now trains "
                         f"({'; '.join(differences)}): delete the folder to train it again, or give another --output")


def load_config_keys(config: str):
    """The top-level keys of ``config``'s model (``student`` marks a distillation config)."""
    from detectron2.config import LazyConfig

    return set(LazyConfig.load(os.path.join(ROOT, config)).model.keys())


def fmt(values):
    values = [v for v in values if v == v]
    if not values:
        return "nan"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def seed_gains(arm: dict, baseline: dict, seeds) -> list:
    """Final AP of ``arm`` minus ``baseline``'s (seed -> evaluations) for each of ``seeds`` both ran."""
    return [arm[s][-1][1]["AP"] - baseline[s][-1][1]["AP"] for s in seeds if s in arm and s in baseline]


def table(runs, teacher_eval, iters, seeds, family="dino") -> str:
    lines = [f"{family}: synthetic shapes (synthetic_val, 200 images), students at {iters} iterations, seeds {seeds}: "
             "mean ± sample std over seeds.", "",
             "| model | " + " | ".join(METRICS) + " |", "|---" * (len(METRICS) + 1) + "|"]
    if teacher_eval:
        teacher_iters, teacher_eval = teacher_eval
        cells = " | ".join(f"{teacher_eval[k]:.1f}" for k in METRICS)
        lines.append(f"| teacher R50, configs/synthetic/{family}_r50.py (1 run, {teacher_iters} iterations) | "
                     f"{cells} |")
    for arm, by_seed in runs.items():
        finals = [rows[-1][1] for rows in by_seed.values()]
        lines.append(f"| {arm} | " + " | ".join(fmt([f[k] for f in finals]) for k in METRICS) + " |")
    comparisons = [(arm, ALONE_BASELINE[arm]) for arm in runs if arm in ALONE_BASELINE]
    comparisons += [(arm, STUDENT) for arm in (KD, SOFTMAX, PER_IMAGE, AUTHORS_SUM, SIGMOID, "inconsistent baseline",
                                               DD, BOTH, FROM_DINO, DD_FROM_DINO)
                    if arm in runs and STUDENT in runs]
    comparisons += [(arm, other) for arm, other in VERSUS if arm in runs and other in runs]
    summary = []
    for arm, baseline in comparisons:
        gains = seed_gains(runs[arm], runs[baseline], runs[arm])
        summary.append(f"{arm} - {baseline}, per seed: {', '.join(f'{g:+.1f}' for g in gains)} AP "
                       f"(mean {statistics.mean(gains):+.1f})")
    lines += ["", "; ".join(summary) + "."]
    return "\n".join(lines)


NAMES = {"dino": "DINO", "dab_detr": "DAB-DETR", "deformable_detr": "Deformable DETR",
         "deformable_detr_two_stage": "Deformable DETR, two-stage", "dab_deformable_detr": "DAB-Deformable DETR",
         "conditional_detr": "Conditional DETR", "rtdetr": "RT-DETR"}


def summary(base: str) -> str:
    """The per-family table: one row per ``<base>/<family>/runs.json`` (a study's or ``--rebuild``'s):
    teacher AP (``<base>/<family>/teacher/metrics.json``, else the default teacher's,
    output/synthetic/<family>_r50, which is wrong for a study run with ``--teacher``),
    the R18 alone and each distiller (KD-DETR, with its class term per image, DETRDistill) at the
    students' last evaluation (mean ± std over seeds), and
    each distiller's per-seed gain over the student alone; families without records are named
    below the table."""
    header = ["family", "iterations (teacher / students)", "seeds", "teacher R50", "R18 alone", "KD-DETR",
              "KD-DETR - alone, per seed (mean)", "KD-DETR, class term per image", "per image - alone, per seed (mean)",
              "DETRDistill", "DETRDistill - alone, per seed (mean)"]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    missing = []
    for family in FAMILIES:
        path = os.path.join(base, family, "runs.json")
        if not os.path.isfile(path):
            missing.append(NAMES[family])
            continue
        with open(path) as f:
            runs = json.load(f)
        teacher = os.path.join(base, family, "teacher")
        if not os.path.isfile(os.path.join(teacher, "metrics.json")):
            teacher = os.path.join("output", "synthetic", f"{family}_r50")
        teacher_eval = evaluations(teacher, 10**9)[-1] if os.path.isfile(os.path.join(teacher, "metrics.json")) \
            else (0, {"AP": float("nan")})
        alone = runs[STUDENT]
        seeds = sorted(alone, key=int)  # JSON keys: "0", "1", ...
        iters = {rows[-1][0] for rows in alone.values()}
        cells = [NAMES[family], f"{teacher_eval[0] or '?'} / {', '.join(map(str, sorted(iters)))}",
                 ", ".join(seeds), f"{teacher_eval[1]['AP']:.1f}", fmt([alone[s][-1][1]["AP"] for s in seeds])]
        for arm in (KD, PER_IMAGE, DD):
            if arm not in runs:
                cells += ["not run", "-"]
                continue
            gains = seed_gains(runs[arm], alone, seeds)
            cells += [fmt([r[-1][1]["AP"] for r in runs[arm].values()]),
                      f"{', '.join(f'{g:+.1f}' for g in gains)} ({statistics.mean(gains):+.1f})"]
        lines.append("| " + " | ".join(cells) + " |")
    if len(lines) == 2:
        raise SystemExit(f"--summary: no <family>/runs.json under {base} (families: {', '.join(FAMILIES)})")
    lines += ["", "COCO AP on synthetic_val; mean ± sample std over seeds; a gain is the distilled student's AP "
              "minus the student alone's of the same seed."]
    if missing:
        lines.append(f"Not measured: {', '.join(missing)}.")
    return "\n".join(lines) + "\n"


def plot(runs, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    cmap = plt.get_cmap("tab10")
    for i_arm, (arm, by_seed) in enumerate(runs.items()):
        color = cmap(i_arm % 10)
        for i, rows in enumerate(by_seed.values()):
            ax.plot([r[0] for r in rows], [r[1]["AP"] for r in rows], "o-", color=color, alpha=0.7,
                    label=arm if i == 0 else None)
    ax.set_xlabel("iteration")
    ax.set_ylabel("COCO AP on synthetic_val")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", default="", choices=FAMILIES + ["all", ONE_CLASS],
                        help="default: dino (with --layer-compression: dab_detr)")
    parser.add_argument("--teacher", default="", help="default: output/synthetic/<family>_r50/model_final.pth")
    parser.add_argument("--teacher-iters", type=int, default=0, help="train a missing teacher this long (default: "
                        "the config's train.max_iter: 1000, DAB-DETR and Conditional DETR 4000)")
    parser.add_argument("--iters", type=int, default=300)
    parser.add_argument("--eval-period", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--output", default="", help="default: output/benchmark_kd (DINO) or "
                        "output/benchmark_kd/<family>; with --family all, <output>/<family> for each")
    parser.add_argument("--ablations", action="store_true",
                        help="also train the other ablation configs (similar foreground/general, general/specific "
                        "only, no foreground weight)")
    parser.add_argument("--no-inconsistent", action="store_true", help="skip DINO's inconsistent-baseline arm")
    parser.add_argument("--no-alone", action="store_true",
                        help="skip the student-alone arm (comparing distillers' settings only; run again without "
                        "it to add the alone runs: finished runs are reused)")
    parser.add_argument("--detrdistill", action="store_true",
                        help="also train DETRDistill students (dino, deformable_detr, conditional_detr)")
    parser.add_argument("--combined", action="store_true", help="also train KD-DETR + DETRDistill students (DINO)")
    parser.add_argument("--from-dino", action="store_true",
                        help="with --family rtdetr: also distil the RT-DETR R18 from the DINO R50 teacher "
                        f"({DINO_TEACHER}, trained by --family dino; with --detrdistill also by DETRDistill)")
    for arm, (flag, what) in CLASS_TERM_FLAGS.items():
        parser.add_argument(flag, action="store_true",
                            help=f"also train KD-DETR with {what} ({' '.join(CLASS_TERM_ARMS[arm])})")
    parser.add_argument("--fast-students", action="store_true",
                        help="instead of the family's arms, train the faster DINO students of "
                        "configs/synthetic/fast_students/ alone and with KD-DETR (default output: "
                        "output/benchmark_kd/fast_students)")
    parser.add_argument("--layer-compression", action="store_true",
                        help="instead of the family's arms, train KD-DETR Table 3 on DAB-DETR: the R18 students "
                        "with 2/2 and 1/2 encoder/decoder layers (the teacher's: 2/3) alone and with KD-DETR "
                        "(configs/synthetic/layer_compression/; default output: output/benchmark_kd/layer_compression)")
    parser.add_argument("--rebuild", action="store_true",
                        help="rebuild results.md, runs.json and the plot from the runs' metrics.json in --output "
                        "(the teacher's in <output>/teacher/), training nothing: e.g. from the records committed "
                        "in docs/results/")
    parser.add_argument("opts", nargs="*", help="extra key=value overrides for every student run; those of "
                        "train.*, optimizer.*, dataloader.* and lr_multiplier.* also for a teacher trained here")
    parser.add_argument("--summary", action="store_true",
                        help="write <output>/summary.md, one row per family, from every <output>/<family>/runs.json "
                        "(e.g. docs/results/families; default output/benchmark_kd, as --family all), training "
                        "nothing; only --output is read")
    args = parser.parse_args()
    os.chdir(ROOT)
    if args.summary:
        return write_summary(args.output or "output/benchmark_kd")  # --family all's default folder
    if args.fast_students and args.layer_compression:
        raise SystemExit("--fast-students and --layer-compression are two studies: run one at a time")
    for mode, family, what in (("fast_students", "dino", "the faster DINO students"),
                               ("layer_compression", "dab_detr", "the DAB-DETR students of KD-DETR Table 3")):
        if not getattr(args, mode):
            continue
        class_terms = [(flag, getattr(args, flag[2:].replace("-", "_"))) for flag, _ in CLASS_TERM_FLAGS.values()]
        others = [flag for flag, on in (("--family " + args.family, args.family not in ("", family)), *class_terms,
                                        ("--detrdistill", args.detrdistill),
                                        ("--combined", args.combined), ("--ablations", args.ablations),
                                        ("--no-inconsistent", args.no_inconsistent)) if on]
        if others:
            raise SystemExit(f"--{mode.replace('_', '-')} trains only {what}; drop {', '.join(others)}")
        args.family = family
    args.family = args.family or "dino"
    families = FAMILIES if args.family == "all" else [args.family]
    if len(families) > 1 and args.teacher:
        raise SystemExit("--family all picks each family's teacher (output/synthetic/<family>_r50); drop --teacher")
    base = args.output or "output/benchmark_kd"  # with --family all: one folder per family under it
    reports = [run_family(argparse.Namespace(**{**vars(args), "family": f, "all_families": len(families) > 1,
                                                "output": os.path.join(base, f) if len(families) > 1 else args.output}))
               for f in families]
    if len(families) > 1:
        path = os.path.join(base, "families.md")
        with open(path, "w") as f:
            f.write("\n\n".join(reports) + "\n")
        log(f"wrote {path}")
        write_summary(base)


def write_summary(base: str) -> None:
    text = summary(base)
    path = os.path.join(base, "summary.md")
    with open(path, "w") as f:
        f.write(text)
    print(text)
    log(f"wrote {path}")


def run_family(args) -> str:
    family = args.family
    args.teacher = args.teacher or f"output/synthetic/{family}_r50/model_final.pth"
    default_out = "output/benchmark_kd/fast_students" if args.fast_students else \
        "output/benchmark_kd/layer_compression" if args.layer_compression else \
        "output/benchmark_kd" if family == "dino" else f"output/benchmark_kd/{family}"
    args.output = args.output or default_out
    os.makedirs(args.output, exist_ok=True)
    if args.rebuild:  # the teacher's record sits beside the students' when rebuilt from committed records
        args.teacher = os.path.join(args.output, "teacher", "model_final.pth")
    elif not os.path.isfile(args.teacher):
        config = f"configs/synthetic/{family}_r50.py"
        log(f"no teacher at {args.teacher}: training one with {config}")
        out = os.path.dirname(args.teacher)
        overrides = [f"train.max_iter={args.teacher_iters}"] if args.teacher_iters else []
        overrides += ["train.seed=0", *teacher_opts(args.opts)]  # a teacher that can be trained again
        train(config, out, overrides, os.path.join(args.output, "teacher_stdout.txt"))
    teacher_rows = evaluations(os.path.dirname(args.teacher), 10**9) if os.path.isfile(
        os.path.join(os.path.dirname(args.teacher), "metrics.json")) else []
    runs = run_arms(args)
    text = table(runs, teacher_rows[-1] if teacher_rows else None, args.iters, args.seeds, family) + "\n"
    plot(runs, os.path.join(args.output, "ap_vs_iter.png"))
    with open(os.path.join(args.output, "runs.json"), "w") as f:
        json.dump(runs, f, indent=1)
    with open(os.path.join(args.output, "results.md"), "w") as f:
        f.write(text)
    print(text)
    return text


if __name__ == "__main__":
    from kddetr.errors import refusals_exit

    with refusals_exit("benchmark_kd.py"):  # the project's refusals: one message, no traceback
        main()
