"""kddetr.benchmark, the cost tools' helpers: the fused attention fvcore has no formula for and
the deformable attention's grid_sample are counted, timed steps take turns, batches resize;
tools/benchmark_inference.py runs."""
import json
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from conftest import ROOT, synthetic_batch
from fvcore.nn import FlopCountAnalysis

from kddetr.benchmark import interleaved_times, peak_memory_mib, resized_batches, sdpa_flop


class Attention(torch.nn.Module):
    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v)


def test_sdpa_flops_are_the_two_matrix_products():
    q, k, v = torch.randn(2, 4, 7, 8), torch.randn(2, 4, 5, 8), torch.randn(2, 4, 5, 6)
    analysis = FlopCountAnalysis(Attention(), (q, k, v)).unsupported_ops_warnings(False)
    assert analysis.total() == 0  # fvcore alone does not count it
    analysis = FlopCountAnalysis(Attention(), (q, k, v)).set_op_handle("aten::scaled_dot_product_attention", sdpa_flop)
    assert analysis.total() == 2 * 4 * 7 * 5 * (8 + 6)  # q @ k^T and attn @ v, multiply-adds


def test_interleaved_steps_take_turns_over_the_batches():
    calls = []
    steps = {name: (lambda i, name=name: calls.append((name, i))) for name in ("a", "b")}
    times = interleaved_times(steps, num_batches=2, warmup=1, iters=2, device="cpu")
    assert list(times) == ["a", "b"] and all(t >= 0 for t in times.values())
    assert calls == [("a", 0), ("b", 0), ("a", 1), ("b", 1), ("a", 0), ("b", 0)]


class Sampler(torch.nn.Module):
    def forward(self, x, grid):
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def test_fvcore_counts_the_deformable_attentions_grid_sample():
    """The deformable attention's sampling is counted by fvcore itself (bilinear: 4 per output value)."""
    x, grid = torch.randn(3, 8, 10, 12), torch.rand(3, 5, 7, 2) * 2 - 1
    analysis = FlopCountAnalysis(Sampler(), (x, grid)).unsupported_ops_warnings(False)
    assert analysis.total() == 4 * 3 * 8 * 5 * 7


def test_resized_batches_scale_images_and_boxes():
    batch = synthetic_batch(2, size=64)
    (resized,) = resized_batches([batch], (96, 160))
    for before, after in zip(batch, resized):
        assert after["image"].shape == (3, 96, 160) and after["image"].dtype == torch.uint8
        assert after["instances"].image_size == (96, 160)
        scale = torch.tensor([160 / 64, 96 / 64, 160 / 64, 96 / 64])
        torch.testing.assert_close(after["instances"].gt_boxes.tensor, before["instances"].gt_boxes.tensor * scale)
        assert torch.equal(after["instances"].gt_classes, before["instances"].gt_classes)


def test_peak_memory_of_a_cpu_step_is_what_it_allocates():
    hold = []
    mem = peak_memory_mib({"small": lambda i: None, "big": lambda i: hold.append(torch.ones(64, 2 ** 20))}, "cpu")
    assert list(mem) == ["small", "big"]
    assert mem["small"][1] < 32 and 250 < mem["big"][1] < 400  # 256 MiB touched by the step
    assert mem["big"][0] >= mem["big"][1]
    assert mem["small"][2] == 0 and mem["big"][2] == 256  # the step's own tensors, exactly


def test_live_tensors_count_each_storage_once_until_it_is_freed():
    from kddetr.benchmark import LiveTensors, held_mib

    with LiveTensors() as live:
        a = torch.ones(2 ** 18)  # 1 MiB
        view = a[10:]  # the same storage
        b = torch.ones(2 ** 19)  # 2 MiB
        del a, view
        c = torch.ones(2 ** 17)  # 0.5 MiB, after a is gone
    assert live.peak_bytes == 3 * 2 ** 20 and live.live_bytes == 2.5 * 2 ** 20
    del b, c
    assert live.live_bytes == 0
    model = torch.nn.Linear(256, 256)  # 256 x 257 float32
    opt = torch.optim.AdamW(model.parameters())
    with LiveTensors() as views:  # views and in-place results of storages made before are not new ones
        model.weight.t()
        model.weight.data.add_(0.0)
    assert views.peak_bytes == 0
    with LiveTensors() as step:  # a first step: its gradients and AdamW's two states (and its temporaries)
        opt.zero_grad()
        model(torch.ones(1, 256)).sum().backward()
        opt.step()
    n = 256 * 257 * 4  # bytes of the parameters
    assert n * 3 <= step.peak_bytes <= n * 6
    assert held_mib(model, opt) == pytest.approx(3 * n / 2 ** 20 + 8 / 2 ** 20)  # weights, states, AdamW's steps


def test_benchmark_inference_tool_writes_its_table(tmp_path):
    out = tmp_path / "bench"
    proc = subprocess.run([sys.executable, "tools/benchmark_inference.py", "--config", "configs/synthetic/dino_r50.py",
                           "--config", "configs/synthetic/dino_r50_r18.py", "--size", "64", "64", "--runs", "2",
                           "--warmup", "0", "--threads", "1", "--ap", "synthetic/dino_r50_r18=12.5",
                           "--ap-alone", "synthetic/dino_r50_r18=10.25",
                           "--output", str(out)],
                          cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads((out / "inference.json").read_text())
    teacher, student = record["results"]
    assert teacher["measured"] == "model" and student["measured"] == "student"
    assert student["params_m"] < teacher["params_m"] and student["gflops"] < teacher["gflops"]
    assert all(r["latency_s"] > 0 and r["peak_rss_mb"] > 0 for r in record["results"])
    table = (out / "inference.md").read_text()
    assert "| synthetic/dino_r50_r18 (student) |" in table and "| 12.5 | 10.2 |" in table
    assert (out / "ap_vs_latency.png").stat().st_size > 0
