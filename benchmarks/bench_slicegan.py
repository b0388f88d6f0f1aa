"""SliceGAN: training throughput and peak memory against the reference, and generation.

GPU mode (``--reference PATH`` to a checkout of github.com/stke9/SliceGAN at tag
``v.1.1``, and a CUDA GPU): both implementations train the v1.1 configuration (layer
sizes, batch sizes, optimiser, 5 critic iterations per generator step) on the same
3-phase 512 x 512 synthetic section, each in its own process; reported are generator
steps per second (after warm-up) and peak GPU memory (torch.cuda.max_memory_allocated),
and their ratios. The reference runs unmodified except that its plotting helpers
(``util.test_plotter``, ``util.graph_plot``) are replaced by no-ops and its ETA printer
(``util.calc_eta``, called every 25 iterations) records the time and stops the run; its
own preprocessing (all crops preloaded) is excluded from the timing. Then a 1024^3
volume is generated with ``generate`` into a zarr store chunk by chunk; reported are
wall time, voxels per second, peak host RSS and peak GPU memory.

CPU mode (always; ``--cpu-only`` skips the GPU part): (1) the full fraction check of the
tiny configuration on a 2-phase image of known fraction (more steps than the test);
(2) v1.1 training steps per second on CPU with reduced batches (named in the table);
(3) v1.1 generation of a 256 x 256 x 128 volume into a store with peak RSS.

Usage::

    python benchmarks/bench_slicegan.py --cpu-only
    python benchmarks/bench_slicegan.py --reference /path/to/SliceGAN --steps 60
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _section(size=512, seed=0):
    from electromicro_dask import synth

    return synth.electrode((size, size), 0.5, particle_radius_um=(4.0, 1.0), seed=seed)["phases"].compute()


def _random_v11(n_phases=3):
    import torch

    from electromicro_dask.slicegan import SliceGANModel, make_config
    from electromicro_dask.slicegan.networks import Generator

    cfg = make_config("v1.1")
    torch.manual_seed(0)
    g = Generator(cfg, n_phases).train()
    with torch.no_grad():
        g(torch.randn(2, 16, 4, 4, 4))
    return SliceGANModel(cfg, g.state_dict(), {0: "pore", 1: "cbd", 2: "am"}, 0.5)


# ---------------------------------------------------------------- child processes
def child_ours_train(steps, device, amp, overrides, threads):
    import torch

    if threads:
        torch.set_num_threads(threads)
    from electromicro_dask.slicegan import train

    img = _section()
    t0 = time.perf_counter()
    m = train(img, steps=steps, device=device, mixed_precision=amp, log_every=max(1, steps // 6),
              config="v1.1", **overrides)
    wall = time.perf_counter() - t0
    h = m.history
    rate = float(h["steps_per_s"].iloc[1:].mean()) if len(h) > 1 else float(h["steps_per_s"].iloc[0])
    out = {"steps_per_s": rate, "wall_s": wall, "peak_rss_mb": _rss_mb()}
    if device.startswith("cuda"):
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


class _Stop(Exception):
    pass


def child_reference_train(reference, iterations):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import torch

    from electromicro_dask.slicegan import make_config

    sys.path.insert(0, str(reference))
    from slicegan import model, networks, util  # the reference package

    cfg = make_config("v1.1")
    tmp = Path(tempfile.mkdtemp(prefix="slicegan-ref-"))
    img = np.asarray(_section().values)
    plt.imsave(tmp / "section.png", img, cmap="gray", vmin=0, vmax=2)
    marks = []
    n_calls = max(3, iterations // 25 + 1)

    def calc_eta(steps, now, start, i, epoch, num_epochs):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        marks.append((time.perf_counter(), epoch * steps + i))
        if len(marks) >= n_calls:
            raise _Stop

    util.calc_eta = calc_eta
    util.test_plotter = lambda *a, **k: None
    util.graph_plot = lambda *a, **k: None
    nc = 3
    dk, ds, dp = cfg["d_kernels"], cfg["d_strides"], cfg["d_paddings"]
    df = [nc, *cfg["d_channels"], 1]
    gk, gs, gp = cfg["g_kernels"], cfg["g_strides"], cfg["g_paddings"]
    gf = [cfg["latent_channels"], *cfg["g_channels"], nc]
    pth = str(tmp / "ref")
    netD, netG = networks.slicegan_nets(pth, True, "nphase", dk, ds, df, dp, gk, gs, gf, gp)
    try:
        model.train(pth, "nphase", "png", [str(tmp / "section.png")], netD, netG, nc,
                    cfg["image_size"], cfg["latent_channels"], 1)
    except _Stop:
        pass
    (t0, i0), (t1, i1) = marks[0], marks[-1]
    # One reference iteration = one critic iteration; a generator step every 5.
    return {"steps_per_s": (i1 - i0) / (t1 - t0) / cfg["critic_steps"], "wall_s": t1 - t0,
            "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None,
            "peak_rss_mb": _rss_mb()}


def child_generate(shape, chunks, device, threads):
    import dask
    import torch

    if threads:
        torch.set_num_threads(threads)
    from electromicro_dask.core.store import save
    from electromicro_dask.slicegan import generate

    m = _random_v11()
    store = Path(tempfile.mkdtemp(prefix="slicegan-gen-")) / "g.zarr"
    vol = generate(m, shape, chunks=chunks, seed=0, device=device)
    workers = 4 if device.startswith("cuda") else 1
    t0 = time.perf_counter()
    with dask.config.set(scheduler="threads", num_workers=workers):
        save(vol, store, "generated")
    wall = time.perf_counter() - t0
    n = 1
    for s in shape:
        n *= s
    out = {"wall_s": wall, "voxels_per_s": n / wall, "peak_rss_mb": _rss_mb(),
           "chunk_mb": chunks[0] * chunks[1] * chunks[2] / 2**20}
    if device.startswith("cuda"):
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def child_fraction(steps, seed):
    import numpy as np
    import torch
    from scipy import ndimage

    torch.set_num_threads(1)
    from electromicro_dask.slicegan import generate, train

    f = ndimage.gaussian_filter(np.random.default_rng(seed).standard_normal((128, 128)), 2.0)
    img = (f > np.quantile(f, 0.7)).astype(np.uint8)
    t0 = time.perf_counter()
    m = train(img, phases={0: "pore", 1: "am"}, steps=steps, config="tiny", seed=seed, log_every=10)
    wall = time.perf_counter() - t0
    v = generate(m, (64, 64, 64), chunks=32, seed=seed + 1).values
    return {"target": float(img.mean()), "generated": float((v == 1).mean()), "train_s": wall,
            "steps_per_s": steps / wall}


CHILDREN = {"ours_train": child_ours_train, "reference_train": child_reference_train,
            "generate": child_generate, "fraction": child_fraction}


def _run_child(name, **kw):
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name, "--child-args", json.dumps(kw)]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if p.returncode != 0:
        return {"error": p.stderr.strip().splitlines()[-1] if p.stderr.strip() else f"rc {p.returncode}"}
    return json.loads(p.stdout.strip().splitlines()[-1])


def _fmt(x, nd=3):
    return "n/a" if x is None else (f"{x:.{nd}g}" if isinstance(x, float) else str(x))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reference", type=Path, help="checkout of stke9/SliceGAN (tag v.1.1)")
    ap.add_argument("--steps", type=int, default=60, help="generator steps timed on the GPU")
    ap.add_argument("--size", type=int, default=1024, help="edge of the generated GPU volume")
    ap.add_argument("--cpu-only", action="store_true")
    ap.add_argument("--fraction-steps", type=int, default=100)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "slicegan.md")
    ap.add_argument("--child")
    ap.add_argument("--child-args")
    a = ap.parse_args()
    if a.child:
        print(json.dumps(CHILDREN[a.child](**json.loads(a.child_args))))
        return

    import torch

    cmd = "python benchmarks/bench_slicegan.py " + " ".join(sys.argv[1:])
    lines = ["# SliceGAN benchmark\n", f"Command: `{cmd}`  ", f"Date: {time.strftime('%Y-%m-%d %H:%M')}  ",
             f"torch {torch.__version__}; CUDA available: {torch.cuda.is_available()}; "
             f"host CPUs: {os.cpu_count()}\n"]

    gpu = torch.cuda.is_available() and not a.cpu_only
    if gpu:
        lines.append(f"## GPU: {torch.cuda.get_device_name(0)}\n")
        ours = _run_child("ours_train", steps=a.steps, device="cuda", amp=False, overrides={}, threads=0)
        ours_amp = _run_child("ours_train", steps=a.steps, device="cuda", amp=True, overrides={}, threads=0)
        rows = [("ours (fp32)", ours), ("ours (bf16 autocast)", ours_amp)]
        ref = None
        if a.reference:
            ref = _run_child("reference_train", reference=str(a.reference), iterations=5 * a.steps)
            rows.append(("reference v1.1", ref))
        lines += ["### Training, v1.1 configuration, 3-phase 512^2 section\n",
                  "| implementation | generator steps/s | peak GPU MiB | steps/s ratio vs ref | memory ratio vs ref |",
                  "|---|---|---|---|---|"]
        for name, r in rows:
            if "error" in r:
                lines.append(f"| {name} | error: {r['error']} | | | |")
                continue
            ratio = mem = "n/a"
            if ref and "error" not in ref:
                ratio = _fmt(r["steps_per_s"] / ref["steps_per_s"])
                mem = _fmt(r["peak_gpu_mb"] / ref["peak_gpu_mb"])
            lines.append(f"| {name} | {_fmt(r['steps_per_s'])} | {_fmt(r.get('peak_gpu_mb'), 5)} | {ratio} | {mem} |")
        n = a.size
        g = _run_child("generate", shape=[n, n, n], chunks=[256, 256, 256], device="cuda", threads=0)
        lines += ["", f"### Generation of {n}^3 into a zarr store (v1.1 generator, chunks 256^3)\n",
                  "| wall s | voxels/s | peak host RSS MiB | peak GPU MiB |", "|---|---|---|---|",
                  f"| {_fmt(g.get('wall_s'))} | {_fmt(g.get('voxels_per_s'))} | "
                  f"{_fmt(g.get('peak_rss_mb'), 5)} | {_fmt(g.get('peak_gpu_mb'), 5)} |" if "error" not in g
                  else f"error: {g['error']}", ""]
    else:
        lines.append("## GPU: none available in this run; the reference comparison and the "
                     "1024^3 generation were not run.\n")

    lines.append("## CPU\n")
    lines += ["### Fraction check, tiny configuration (2-phase 128^2 image, fraction 0.30)\n",
              "| seed | steps | target fraction | generated (64^3) | abs. error | train s | steps/s |",
              "|---|---|---|---|---|---|---|"]
    for seed in (0, 1):
        r = _run_child("fraction", steps=a.fraction_steps, seed=seed)
        if "error" in r:
            lines.append(f"| {seed} | error: {r['error']} | | | | | |")
            continue
        lines.append(f"| {seed} | {a.fraction_steps} | {r['target']:.3f} | {r['generated']:.3f} | "
                     f"{abs(r['generated'] - r['target']):.3f} | {r['train_s']:.1f} | {r['steps_per_s']:.2f} |")
    # One step of the v1.1 networks with reduced batches and one critic iteration: a CPU
    # smoke measure of the full-size networks only (the v1.1 batches need a GPU).
    small = {"generator_batch": 2, "critic_batch": 1, "real_batch": 8, "critic_steps": 1}
    r = _run_child("ours_train", steps=1, device="cpu", amp=False, overrides=small, threads=0)
    lines += ["", "### v1.1 networks on CPU, 1 step (batches: generator 2, critic 1, real 8; "
              "1 critic iteration; includes warm-up)\n",
              "| generator steps/s | wall s (1 step) | peak RSS MiB |", "|---|---|---|",
              (f"| {_fmt(r['steps_per_s'])} | {_fmt(r['wall_s'])} | {_fmt(r['peak_rss_mb'], 5)} |"
               if "error" not in r else f"| error: {r['error']} | | |")]
    g = _run_child("generate", shape=[128, 256, 256], chunks=[128, 128, 128], device="cpu", threads=0)
    lines += ["", "### v1.1 generation on CPU, 128 x 256 x 256 into a store (chunks 128^3, 1 worker)\n",
              "| wall s | voxels/s | peak RSS MiB |", "|---|---|---|",
              (f"| {_fmt(g['wall_s'])} | {_fmt(g['voxels_per_s'])} | {_fmt(g['peak_rss_mb'], 5)} |"
               if "error" not in g else f"| error: {g['error']} | | |"), ""]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
