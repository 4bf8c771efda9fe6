#!/usr/bin/env python
"""Inference cost of detectors: latency, throughput, parameters, GFLOPs and peak memory.

    .venv/bin/python tools/benchmark_inference.py --config configs/dino_r50.py configs/dino_r50_r18.py \\
        configs/dino_r50_r18_enc2_dec3.py --size 800 1333 --runs 5

For a distillation config the *student* is measured (what is deployed); for a single-model config
the model. Each config runs in its own process (so that peak memory is its own): the eval forward
of Detectron2 inputs (normalisation, backbone, encoder, decoder, top-k and rescaling), random
weights (the cost does not depend on them), ``--batch`` images of ``--size`` pixels. Reported:

* latency: median of ``--runs`` forwards after ``--warmup``, with the min-max spread; throughput =
  batch / median latency (images per second);
* parameters (millions) and forward GFLOPs (fvcore, one multiply-add = one flop; PyTorch's fused
  attention counted by ``kddetr.benchmark.sdpa_flop``, the deformable attention's bilinear
  ``grid_sample`` by fvcore's own formula);
* peak memory: the process's peak resident set (RSS, CPU) and its growth over the process before
  the model was built; on CUDA ``torch.cuda.max_memory_allocated``.

``--device cuda`` measures on a GPU (synchronised around every forward); ``--amp`` runs the forward
under autocast (bf16 on CPU, fp16 on CUDA). A config's NAME is its path under ``configs/`` without
``.py`` (``fast_students/dino_r50_r18_enc2_dec3``); ``--ap NAME=VALUE`` (``VALUE``: an AP or a
``metrics.json`` whose last ``bbox/AP`` is used) adds an AP column and ``ap_vs_latency.png``;
``--ap-alone NAME=VALUE`` the AP of the same student trained alone (plotted hollow, joined to the
distilled one).
Writes ``<output>/inference.md``, ``inference.json`` and the PNG. Speed targets live here, never
in timed tests.
"""
import argparse
import json
import os
import subprocess
import sys
from typing import Dict, List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "projects", "KDDETR"))  # kddetr from a source checkout


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB (Linux reports KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def config_name(config: str) -> str:
    """``configs/fast_students/x.py`` -> ``fast_students/x`` (the NAME of ``--ap`` and of the table)."""
    rel = os.path.relpath(os.path.abspath(config), os.path.join(ROOT, "configs"))
    return (os.path.basename(config) if rel.startswith("..") else rel)[:-3]


def measure(config: str, size: List[int], batch: int, runs: int, warmup: int, device: str, amp: bool,
            threads: int, flops: bool, opts: List[str]) -> Dict:
    """One config, in this process: the numbers of the table as a dict."""
    import statistics
    import time

    import torch
    from detectron2.config import instantiate

    from kddetr.benchmark import current_rss_mib, describe_device, gflops
    from kddetr.config import load_config

    if threads:
        torch.set_num_threads(threads)
    cfg = load_config(config, opts)
    model_cfg = cfg.model.student if "student" in cfg.model else cfg.model
    base_rss = current_rss_mib()
    torch.manual_seed(0)
    model = instantiate(model_cfg).to(device).eval()
    params = sum(p.numel() for p in model.parameters()) / 1e6
    H, W = size
    g = torch.Generator().manual_seed(0)
    inputs = [{"image": (torch.rand(3, H, W, generator=g) * 255).to(torch.uint8), "height": H, "width": W}
              for _ in range(batch)]
    is_cuda = torch.device(device).type == "cuda"
    sync = torch.cuda.synchronize if is_cuda else (lambda: None)
    dtype = torch.float16 if is_cuda else torch.bfloat16
    times = []
    if is_cuda:
        torch.cuda.reset_peak_memory_stats()
    with torch.no_grad(), torch.autocast(torch.device(device).type, dtype=dtype, enabled=amp):
        for i in range(warmup + runs):
            sync()
            t0 = time.perf_counter()
            model(inputs)
            sync()
            if i >= warmup:
                times.append(time.perf_counter() - t0)
    peak = peak_rss_mb()
    result = {
        "config": config, "name": config_name(config), "measured": "student" if model_cfg is not cfg.model
        else "model", "device": describe_device(device), "amp": amp, "size": [H, W], "batch": batch, "runs": runs,
        "warmup": warmup, "latency_s": statistics.median(times), "latency_min_s": min(times),
        "latency_max_s": max(times), "throughput_img_s": batch / statistics.median(times), "params_m": params,
        "peak_rss_mb": peak, "rss_growth_mb": peak - base_rss,
        "cuda_max_allocated_mb": torch.cuda.max_memory_allocated() / 2 ** 20 if is_cuda else None,
    }
    if flops:  # after the timing, so that fvcore's tracing does not count in the peak memory
        result["gflops"] = gflops(model, inputs[:1])
    return result


def ap_value(spec: str) -> float:
    """``VALUE`` of ``--ap NAME=VALUE``: a number, or a metrics.json whose last ``bbox/AP`` is taken."""
    if os.path.isfile(spec):
        aps = [json.loads(line)["bbox/AP"] for line in open(spec) if '"bbox/AP"' in line]
        if not aps:
            raise SystemExit(f"benchmark_inference.py: {spec} holds no bbox/AP (is it a finished run's metrics.json?)")
        return float(aps[-1])
    try:
        return float(spec)
    except ValueError:
        raise SystemExit(f"benchmark_inference.py: --ap wants NAME=AP or NAME=path/to/metrics.json, got '{spec}'")


def table(results: List[Dict], aps: Dict[str, float], alone: Dict[str, float]) -> str:
    r0 = results[0]
    ref = r0["latency_s"]
    mem = "CUDA max allocated (MiB)" if r0["cuda_max_allocated_mb"] is not None else "peak RSS (MiB) / growth"
    lines = [f"Eval forward, {r0['device']}{', autocast' if r0['amp'] else ''}, batch {r0['batch']} of "
             f"{r0['size'][0]} x {r0['size'][1]} px, median of {r0['runs']} runs after {r0['warmup']} warm-up "
             "(random weights).", "",
             f"| config (measured) | latency s (min-max) | speed-up vs first | img/s | params M | GFLOPs | {mem} |"
             + (" AP |" if aps else "") + (" AP trained alone |" if alone else ""),
             "|---|---|---|---|---|---|---|" + ("---|" if aps else "") + ("---|" if alone else "")]
    for r in results:
        mem_cell = (f"{r['cuda_max_allocated_mb']:.0f}" if r["cuda_max_allocated_mb"] is not None
                    else f"{r['peak_rss_mb']:.0f} / {r['rss_growth_mb']:.0f}")
        flops = f"{r['gflops']:.1f}" if r.get("gflops") is not None else "-"
        row = (f"| {r['name']} ({r['measured']}) | {r['latency_s']:.3f} ({r['latency_min_s']:.3f}-"
               f"{r['latency_max_s']:.3f}) | {ref / r['latency_s']:.2f}x | {r['throughput_img_s']:.2f} | "
               f"{r['params_m']:.1f} | {flops} | {mem_cell} |")
        for values in (aps, alone):
            if values:
                row += f" {values[r['name']]:.1f} |" if r["name"] in values else " - |"
        lines.append(row)
    return "\n".join(lines) + "\n"


def plot(results: List[Dict], aps: Dict[str, float], alone: Dict[str, float], path: str) -> Optional[str]:
    points = [(r["latency_s"], aps[r["name"]], r["name"]) for r in results if r["name"] in aps]
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (x, y, name) in enumerate(points):
        color = plt.get_cmap("tab10")(i % 10)
        ax.scatter(x, y, color=color, label="distilled (filled) / alone (hollow)" if i == 0 and alone else None)
        if name in alone:
            ax.scatter(x, alone[name], facecolors="none", edgecolors=color)
            ax.plot([x, x], [alone[name], y], color=color, alpha=0.5)
        ax.annotate(name, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    if alone:
        ax.legend(fontsize=7)
    r0 = results[0]
    ax.set_xlabel(f"latency (s), {r0['size'][0]} x {r0['size'][1]}, {r0['device']}")
    ax.set_ylabel("AP")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", action="append", required=True,
                        help="a config to measure (repeatable; the first is the reference of the speed-up)")
    parser.add_argument("--size", type=int, nargs=2, default=[800, 1333], metavar=("H", "W"))
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", action="store_true", help="autocast: bf16 on CPU, fp16 on CUDA")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: PyTorch's default)")
    parser.add_argument("--skip-flops", action="store_true")
    parser.add_argument("--ap", action="append", default=[], metavar="NAME=VALUE",
                        help="AP of a config (NAME: its path under configs/ without .py): a number or a metrics.json")
    parser.add_argument("--ap-alone", action="append", default=[], metavar="NAME=VALUE",
                        help="AP of the config's student trained alone (same form as --ap)")
    parser.add_argument("--output", default="output/benchmark_inference")
    parser.add_argument("--worker", default="", help=argparse.SUPPRESS)  # internal: measure one config, print JSON
    parser.add_argument("opts", nargs="*", help="key=value overrides for every config")
    args = parser.parse_args()
    os.chdir(ROOT)
    if args.worker:
        import warnings

        warnings.filterwarnings("ignore")
        result = measure(args.worker, args.size, args.batch, args.runs, args.warmup, args.device, args.amp,
                         args.threads, not args.skip_flops, args.opts)
        print("RESULT " + json.dumps(result))
        return
    missing = [c for c in args.config if not os.path.isfile(c)]
    if missing:
        raise SystemExit(f"benchmark_inference.py: no such config: {', '.join(missing)}")
    names = [config_name(c) for c in args.config]
    if len(set(names)) != len(names):
        raise SystemExit(f"benchmark_inference.py: a config is listed twice: {names}")
    aps, alone = ({}, {})
    for specs, values in ((args.ap, aps), (args.ap_alone, alone)):
        for spec in specs:
            name, sep, value = spec.partition("=")
            if not sep:
                raise SystemExit(f"benchmark_inference.py: --ap wants NAME=VALUE, got '{spec}'")
            if name not in names:
                raise SystemExit(f"benchmark_inference.py: --ap {name}=...: no measured config is named {name} "
                                 f"(names: {', '.join(names)})")
            values[name] = ap_value(value)
    results = []
    passthrough = ["--size", *map(str, args.size), "--batch", str(args.batch), "--runs", str(args.runs),
                   "--warmup", str(args.warmup), "--device", args.device, "--threads", str(args.threads)]
    passthrough += (["--amp"] if args.amp else []) + (["--skip-flops"] if args.skip_flops else [])
    for i, config in enumerate(args.config):
        print(f"[{i + 1}/{len(args.config)}] {config} ...", flush=True)
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--config", config, "--worker", config,
                               *passthrough,
                               *args.opts], capture_output=True, text=True)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        if proc.returncode or not lines:
            raise SystemExit(f"benchmark_inference.py: measuring {config} failed:\n{proc.stderr[-3000:]}")
        results.append(json.loads(lines[-1][len("RESULT "):]))
        r = results[-1]
        print(f"    {r['latency_s']:.3f} s/forward, {r['throughput_img_s']:.2f} img/s, {r['params_m']:.1f} M params",
              flush=True)
    os.makedirs(args.output, exist_ok=True)
    text = table(results, aps, alone)
    with open(os.path.join(args.output, "inference.md"), "w") as f:
        f.write(text)
    with open(os.path.join(args.output, "inference.json"), "w") as f:
        json.dump({"command": " ".join(sys.argv), "results": results, "ap": aps, "ap_alone": alone}, f, indent=1)
    png = plot(results, aps, alone, os.path.join(args.output, "ap_vs_latency.png"))
    print(text + (f"\nwrote {png}" if png else ""))


if __name__ == "__main__":
    from kddetr.errors import refusals_exit

    with refusals_exit("benchmark_inference.py"):  # the project's refusals: one message, no traceback
        main()
