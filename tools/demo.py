#!/usr/bin/env python
"""The main job on the embedded synthetic data, end to end (what `make demo` runs):

1. train a DINO R50 teacher (configs/synthetic/dino_r50.py, shortened);
2. train the DINO R18 student alone (configs/synthetic/dino_r18.py) and
3. distil the teacher into the same R18 with KD-DETR (configs/synthetic/dino_r50_r18.py), at equal
   iterations, schedule and data order (``--seed``); every model starts from its synthetic pretrained backbone
   (kddetr.data.backbones, trained on first use) and is evaluated on synthetic_val by
   COCOEvaluator at the end of its training. What distillation buys depends on how far the teacher is
   above the student (docs/RESULTS.md, "`make demo`"), so the teacher gets most of the time (400
   iterations) and the students 100 each, where the R18 alone is still far below it. All three train at
   batch 4: the configs' 8 costs 1.8x the step time on 2 cores for no more AP per second. The two
   cheaper teachers tried (``--teacher-batch 2 --teacher-iters 500``: 422 s; ``--teacher-freeze-at 2``:
   464 s; against 693 s) reached 15.3 AP instead of 20.3, and with the first the gain fell to the seed
   spread.
   KD-DETR as the pair config ships it (its class term per image, the default: docs/RESULTS.md);
4. export the three (tools/export_student.py) and draw their detections on the same validation
   images through detectron2's DefaultPredictor, one row per model (tools/visualize.py);
5. print the AP table.

The screen shows one progress line per stage with its ETA, then the table; everything a run prints
(environment, config, model) is in its own ``log.txt``. A finished step is reused when run again (delete
output/demo to start over).
"""
import argparse
import collections
import json
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="output/demo",
                        help="configs/synthetic/dino_r50_r18.py takes its teacher from output/demo/teacher")
    parser.add_argument("--teacher-iters", type=int, default=400)
    parser.add_argument("--student-iters", type=int, default=100)
    parser.add_argument("--teacher-batch", type=int, default=4, help="dataloader.train.total_batch_size of the teacher")
    parser.add_argument("--batch", type=int, default=4, help="dataloader.train.total_batch_size of the two students")
    parser.add_argument("--teacher-freeze-at", type=int, default=0,
                        help="model.backbone.freeze_at of the teacher (2: neither the stem nor res2 trains)")
    parser.add_argument("--seed", type=int, default=0,
                        help="train.seed of the three runs: the two students see the same data order")
    parser.add_argument("opts", nargs="*", help="extra key=value overrides for the three trainings")
    args = parser.parse_args()
    start = time.perf_counter()
    teacher_ckpt = f"{args.output}/teacher/model_final.pth"
    runs = [  # (title, config, output folder, iterations, batch, extra overrides)
        ("teacher DINO R50", "configs/synthetic/dino_r50.py", f"{args.output}/teacher", args.teacher_iters,
         args.teacher_batch, [f"model.backbone.freeze_at={args.teacher_freeze_at}"]),
        ("student DINO R18 alone", "configs/synthetic/dino_r18.py", f"{args.output}/student_alone",
         args.student_iters, args.batch, []),
        ("student DINO R18 + KD-DETR", "configs/synthetic/dino_r50_r18.py", f"{args.output}/student",
         args.student_iters, args.batch, [f"model.teacher_weights={teacher_ckpt}",
                                          f"model.teacher.backbone.freeze_at={args.teacher_freeze_at}"]),
    ]
    for i, (title, config, out, iters, batch, extra) in enumerate(runs):
        if os.path.isfile(os.path.join(ROOT, out, "model_final.pth")):
            print(f"{i + 1}/{len(runs) + 1} {title}: reusing {out}/model_final.pth")
            continue
        step(f"{i + 1}/{len(runs) + 1} {title}, {iters} iterations",
             ["train_net.py", "--config-file", config, *extra, f"train.max_iter={iters}", f"train.eval_period={iters}",
              f"train.output_dir={out}", f"train.seed={args.seed}", f"dataloader.train.total_batch_size={batch}",
              *args.opts], iters)

    png = f"{args.output}/detections.png"
    predictors = []
    last = f"{len(runs) + 1}/{len(runs) + 1}"
    for title, config, out, _, _, extra in runs:
        predictors.append(f"{out}/export/predictor.yaml")
        step(f"{last} export {title}", ["tools/export_student.py", "--config-file", config, "--checkpoint",
                                        f"{out}/model_final.pth", "--output-dir", f"{out}/export", *extra, *args.opts])
    step(f"{last} draw the three's detections with DefaultPredictor",
         ["tools/visualize.py", *[a for p in predictors for a in ("--config", p)],
          *[a for r in runs for a in ("--label", r[0])], "--images", "4", "--output", png,
          "--score-threshold", str(SCORE_THRESHOLD), "--scale", "2"])

    keys = ["AP", "AP50", "AP75", "APs", "APm"]
    print("\nCOCO bbox AP on synthetic_val (200 images):\n")
    print("| model | iterations | batch | " + " | ".join(keys) + " |\n|---|---|---|" + "---|" * len(keys))
    ap = []
    for title, _, out, iters, batch, _ in runs:
        r = final_eval(os.path.join(ROOT, out))
        ap.append(r.get("bbox/AP", float("nan")))
        cells = " | ".join(f"{r.get('bbox/' + k, float('nan')):.1f}" for k in keys)
        print(f"| {title} | {iters} | {batch} | {cells} |")
    print(f"\nwhat distillation buys the R18 at {args.student_iters} iterations: {ap[2] - ap[1]:+.1f} AP "
          f"(one seed; docs/RESULTS.md gives the spread over seeds)")
    print(f"\ndetections of the three on the same validation images (score >= {SCORE_THRESHOLD}): {png}\n"
          f"serve the student: see {args.output}/student/export/predictor.yaml and README ('Serving the student').\n"
          f"demo took {(time.perf_counter() - start) / 60:.1f} min")


if __name__ == "__main__":
    main()
