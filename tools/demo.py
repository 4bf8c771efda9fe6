#!/usr/bin/env python
"""The main job on the embedded synthetic data, end to end (what `make demo` runs), from the configs of
configs/synthetic/demo/ as they ship (no override but the output folders and the seed):

1. train the teacher, a DINO R18 with 2 encoder and 3 decoder layers (``teacher.py``, 300 iterations);
2. train the faster student alone, a DINO R18 with 1 encoder and 2 decoder layers (``student_alone.py``,
   100 iterations), and
3. distil the teacher into the same student with KD-DETR as the pair configs ship it (``student_kd.py``), at
   equal iterations, schedule and data order (``--seeds``); every model starts from its synthetic pretrained
   backbone (kddetr.data.backbones, trained on first use) and is evaluated on synthetic_val by COCOEvaluator
   at the end of its training. The teacher gets most of the time: what distillation buys grows with how far
   the teacher is above the student (docs/RESULTS.md, "`make demo`", and docs/RESULTS_ARCHIVE.md, "The R50 demo",
   say what else was tried);
4. export the three (tools/export_student.py) and draw their detections on the same validation images
   through detectron2's DefaultPredictor, one row per model (tools/visualize.py);
5. print the AP table (and, with several ``--seeds``, each student's mean and spread over them and the
   per-seed gain; the teacher is trained once, at the first seed).

The screen shows one progress line per stage with its ETA, then the table; everything a run prints
(environment, config, model) is in its own ``log.txt``. A finished step is reused when run again (delete
the output folder to start over).
"""
import argparse
import collections
import json
import os
import re
import statistics
import subprocess
import sys
import time
from typing import List, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "projects", "KDDETR"))  # kddetr from a source checkout
SCORE_THRESHOLD = 0.3  # the picture's: short-trained detectors score low (the teacher's best boxes 30-40%)


#: what a line of a run's output says about its progress: Detectron2's iteration lines, the one-time
#: backbone pretraining's, and the evaluation
_ITER = re.compile(r"eta: (\S+)\s+iter: (\d+)")
_PRETRAIN = re.compile(r"(ResNet-\d+) step (\d+)/(\d+).*eta ([0-9.]+ min)")


def progress_of(line: str, iters: int) -> str:
    """The progress ``line`` of a run's output reports ("" if none), for a run of ``iters`` iterations."""
    m = _ITER.search(line)
    if m:
        return f"iteration {int(m.group(2)) + 1}/{iters}, eta {m.group(1)}"
    m = _PRETRAIN.search(line)
    if m:
        return f"pretraining its {m.group(1)} backbone (once), step {m.group(2)}/{m.group(3)}, eta {m.group(4)}"
    if "Start inference on" in line:
        return "evaluating"
    if "Teacher check:" in line:
        return "teacher checked: " + line.split("Teacher check:", 1)[1].split("(")[0].strip()
    return ""


class Progress:
    """One line per stage: rewritten in place on a terminal, a new line at most every ``period`` s elsewhere."""

    def __init__(self, title: str, period: float = 30.0):
        self.title, self.period, self.tty, self.last = title, period, sys.stdout.isatty(), 0.0
        self.start = time.perf_counter()

    def update(self, what: str) -> None:
        now = time.perf_counter()
        if self.tty:
            print(f"\r\033[K{self.title}: {what}", end="", flush=True)
        elif now - self.last >= self.period:
            print(f"{self.title}: {what}", flush=True)
            self.last = now

    def done(self) -> None:
        text = f"{self.title}: done in {time.perf_counter() - self.start:.0f} s"
        print(f"\r\033[K{text}" if self.tty else text, flush=True)


def step(title: str, cmd, iters: int = 0) -> None:
    """Run ``python cmd`` at the repository root, showing its progress on one line; its output is kept
    (the run's log.txt has it all) and its last lines are shown only if it fails."""
    progress = Progress(title)
    progress.update("starting")
    tail = collections.deque(maxlen=40)
    proc = subprocess.Popen([sys.executable, *cmd], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    for line in proc.stdout:
        tail.append(line)
        what = progress_of(line, iters)
        if what:
            progress.update(what)
    if proc.wait() != 0:
        print()
        raise SystemExit(f"{title} failed (exit {proc.returncode}): $ python {' '.join(cmd)}\n{''.join(tail)}")
    progress.done()


def final_eval(out: str) -> dict:
    rows = [json.loads(line) for line in open(os.path.join(out, "metrics.json"))]
    rows = [r for r in rows if "bbox/AP" in r]
    return rows[-1] if rows else {}


CONFIGS = "configs/synthetic/demo"
#: (title, config, output folder under --output), in training order
RUNS = [("teacher DINO R18 (2 enc / 3 dec)", f"{CONFIGS}/teacher.py", "teacher"),
        ("student DINO R18 (1 enc / 2 dec) alone", f"{CONFIGS}/student_alone.py", "student_alone"),
        ("student DINO R18 (1 enc / 2 dec) + KD-DETR", f"{CONFIGS}/student_kd.py", "student")]


def run_folder(output: str, folder: str, seed: int, first_seed: int) -> str:
    """A run's output folder: the teacher's and the first seed's students' without a suffix."""
    return f"{output}/{folder}" if folder == "teacher" or seed == first_seed else f"{output}/{folder}_seed{seed}"


def settings(config: str, opts: List[str]) -> Tuple[int, int]:
    """(iterations, batch) of a demo config with the run's ``key=value`` overrides."""
    from kddetr.config import load_config

    cfg = load_config(os.path.join(ROOT, config), opts)
    return cfg.train.max_iter, cfg.dataloader.train.total_batch_size


def spread(values: List[float]) -> str:
    """Mean ± sample standard deviation of two or more values."""
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="output/demo",
                        help="configs/synthetic/demo/student_kd.py takes its teacher from output/demo/teacher")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="train.seed of the runs: the two students of a seed see the same data order")
    parser.add_argument("opts", nargs="*", help="extra key=value overrides for every training")
    args = parser.parse_args()
    start = time.perf_counter()
    first = args.seeds[0]
    teacher_ckpt = f"{run_folder(args.output, 'teacher', first, first)}/model_final.pth"
    sizes = {config: settings(config, args.opts) for _, config, _ in RUNS}  # (iterations, batch), read once
    # the distilled student's teacher is the one trained here (the config's default is output/demo's)
    extra = {config: [f"model.teacher_weights={teacher_ckpt}"] if folder == "student" else []
             for _, config, folder in RUNS}
    plan = [(title, config, run_folder(args.output, folder, seed, first), seed)
            for seed in args.seeds for title, config, folder in RUNS if folder != "teacher" or seed == first]
    for i, (title, config, out, seed) in enumerate(plan):
        iters, _ = sizes[config]
        label = f"{i + 1}/{len(plan) + 1} {title}" + (f", seed {seed}" if len(args.seeds) > 1 else "")
        if os.path.isfile(os.path.join(ROOT, out, "model_final.pth")):
            print(f"{label}: reusing {out}/model_final.pth")
            continue
        step(f"{label}, {iters} iterations",
             ["train_net.py", "--config-file", config, *extra[config], f"train.output_dir={out}", f"train.seed={seed}",
              *args.opts], iters)

    png = f"{args.output}/detections.png"
    shown = plan[:len(RUNS)]  # the teacher and the first seed's students
    last = f"{len(plan) + 1}/{len(plan) + 1}"
    for title, config, out, _ in shown:
        step(f"{last} export {title}", ["tools/export_student.py", "--config-file", config, "--checkpoint",
                                        f"{out}/model_final.pth", "--output-dir", f"{out}/export", *extra[config],
                                        *args.opts])
    step(f"{last} draw the three's detections with DefaultPredictor",
         ["tools/visualize.py", *[a for r in shown for a in ("--config", f"{r[2]}/export/predictor.yaml")],
          *[a for r in shown for a in ("--label", r[0])], "--images", "4", "--output", png,
          "--score-threshold", str(SCORE_THRESHOLD), "--scale", "2"])

    keys = ["AP", "AP50", "AP75", "APs", "APm"]
    print(f"\nCOCO bbox AP on synthetic_val (200 images), seed {first}:\n")
    print("| model | iterations | batch | " + " | ".join(keys) + " |\n|---|---|---|" + "---|" * len(keys))
    for title, config, out, _ in shown:
        r = final_eval(os.path.join(ROOT, out))
        cells = " | ".join(f"{r.get('bbox/' + k, float('nan')):.1f}" for k in keys)
        print(f"| {title} | {' | '.join(str(v) for v in sizes[config])} | {cells} |")
    ap = {folder: [final_eval(os.path.join(ROOT, run_folder(args.output, folder, s, first))).get("bbox/AP",
                                                                                                   float("nan"))
                   for s in args.seeds] for _, _, folder in RUNS[1:]}
    gains = [kd - alone for kd, alone in zip(ap["student"], ap["student_alone"])]
    iters, _ = sizes[RUNS[2][1]]
    if len(args.seeds) == 1:
        print(f"\nwhat distillation buys the student at {iters} iterations: {gains[0]:+.1f} AP "
              f"(one seed; docs/RESULTS.md gives the spread over seeds)")
    else:
        print(f"\nover seeds {' '.join(map(str, args.seeds))}: alone {spread(ap['student_alone'])} AP, "
              f"+ KD-DETR {spread(ap['student'])} AP (mean ± sample standard deviation)\n"
              f"what distillation buys the student at {iters} iterations, per seed: "
              f"{', '.join(f'{g:+.1f}' for g in gains)} AP (mean {statistics.mean(gains):+.1f})")
    print(f"\ndetections of the three on the same validation images (score >= {SCORE_THRESHOLD}): {png}\n"
          f"serve the student: see {shown[2][2]}/export/predictor.yaml and README ('Serving the student').\n"
          f"demo took {(time.perf_counter() - start) / 60:.1f} min")


if __name__ == "__main__":
    main()
