#!/usr/bin/env python
"""The main job on the embedded synthetic data, end to end (what `make demo` runs):

1. train a DINO R50 teacher (configs/synthetic/dino_r50.py, shortened);
2. distil it into a DINO R18 student with KD-DETR (configs/synthetic/dino_r50_r18.py);
   both are evaluated on synthetic_val by COCOEvaluator at the end of their training;
3. export the student (tools/export_student.py) and draw its detections on a validation image
   through detectron2's DefaultPredictor (tools/visualize.py);
4. print the AP table.

A finished step is reused when run again (delete output/demo to start over).
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def step(title: str, cmd) -> None:
    print(f"\n===== {title} =====\n$ {' '.join(cmd)}", flush=True)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, *cmd], cwd=ROOT, check=True, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    print(f"===== {title}: done in {time.perf_counter() - t0:.0f} s =====", flush=True)


def final_eval(out: str) -> dict:
    rows = [json.loads(line) for line in open(os.path.join(out, "metrics.json"))]
    rows = [r for r in rows if "bbox/AP" in r]
    return rows[-1] if rows else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="output/demo",
                        help="configs/synthetic/dino_r50_r18.py takes its teacher from output/demo/teacher")
    parser.add_argument("--teacher-iters", type=int, default=250)
    parser.add_argument("--student-iters", type=int, default=200)
    parser.add_argument("opts", nargs="*", help="extra key=value overrides for both trainings")
    args = parser.parse_args()
    start = time.perf_counter()
    teacher_dir, student_dir = f"{args.output}/teacher", f"{args.output}/student"
    teacher_ckpt = f"{teacher_dir}/model_final.pth"

    if not os.path.isfile(os.path.join(ROOT, teacher_ckpt)):
        step(f"1/3 teacher: DINO R50, {args.teacher_iters} iterations",
             ["train_net.py", "--config-file", "configs/synthetic/dino_r50.py", f"train.max_iter={args.teacher_iters}",
              f"train.eval_period={args.teacher_iters}", f"train.output_dir={teacher_dir}", *args.opts])
    else:
        print(f"1/3 teacher: reusing {teacher_ckpt}")
    step(f"2/3 student: DINO R18 distilled with KD-DETR, {args.student_iters} iterations",
         ["train_net.py", "--config-file", "configs/synthetic/dino_r50_r18.py", f"model.teacher_weights={teacher_ckpt}",
          f"train.max_iter={args.student_iters}", f"train.eval_period={args.student_iters}",
          f"train.output_dir={student_dir}", *args.opts])
    png = f"{args.output}/student_detections.png"
    step("3/3 export the student and draw its detections with DefaultPredictor",
         ["tools/export_student.py", "--config-file", "configs/synthetic/dino_r50_r18.py",
          "--checkpoint", f"{student_dir}/model_final.pth", "--output-dir", f"{student_dir}/export"])
    subprocess.run([sys.executable, "tools/visualize.py", "--config", f"{student_dir}/export/predictor.yaml",
                    "--output", png, "--score-threshold", "0.25"],
                   cwd=ROOT, check=True, env=dict(os.environ, PYTHONWARNINGS="ignore"))

    keys = ["AP", "AP50", "AP75", "APs", "APm"]
    print("\nCOCO bbox AP on synthetic_val (200 images):\n")
    print("| model | iterations | " + " | ".join(keys) + " |\n|---|---|" + "---|" * len(keys))
    for name, out, iters in (("teacher DINO R50", teacher_dir, args.teacher_iters),
                             ("student DINO R18 + KD-DETR", student_dir, args.student_iters)):
        r = final_eval(os.path.join(ROOT, out))
        print(f"| {name} | {iters} | " + " | ".join(f"{r.get('bbox/' + k, float('nan')):.1f}" for k in keys) + " |")
    print(f"\nstudent detections: {png}\nserve it: see {student_dir}/export/predictor.yaml and README "
          f"('Serving the student').\ndemo took {(time.perf_counter() - start) / 60:.1f} min")


if __name__ == "__main__":
    main()
