"""The new tools' refusals: each names the problem and exits non-zero before doing any work."""
import os
import subprocess
import sys

from conftest import ROOT


def run(args):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONWARNINGS="ignore"))


def test_export_size_is_refused_for_the_checkpoint_format(tmp_path):
    proc = run(["tools/export_student.py", "--config-file", "configs/synthetic/dino_r50_r18.py", "--checkpoint",
                str(tmp_path / "x.pth"), "--output-dir", str(tmp_path), "--size", "64", "64"])
    assert proc.returncode != 0 and "--size sets the input size of an onnx/torchscript graph" in proc.stderr


def test_benchmark_inference_refuses_an_ap_of_an_unmeasured_config(tmp_path):
    proc = run(["tools/benchmark_inference.py", "--config", "configs/synthetic/dino_r18.py", "--ap", "dino_r50=1",
                "--output", str(tmp_path)])
    assert proc.returncode != 0 and "no measured config is named dino_r50" in proc.stderr


def test_benchmark_inference_refuses_a_config_listed_twice(tmp_path):
    proc = run(["tools/benchmark_inference.py", "--config", "configs/synthetic/dino_r18.py", "--config",
                "configs/synthetic/dino_r18.py", "--output", str(tmp_path)])
    assert proc.returncode != 0 and "a config is listed twice" in proc.stderr


def test_benchmark_kd_fast_students_refuses_the_family_arms(tmp_path):
    proc = run(["tools/benchmark_kd.py", "--fast-students", "--per-image", "--output", str(tmp_path)])
    assert proc.returncode != 0 and "drop --per-image" in proc.stderr
