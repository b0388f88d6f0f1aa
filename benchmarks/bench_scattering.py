"""Benchmark of SWAXS-CT processing (seed 004): azimuthal integration frames/s per core
(ours per frame and batched vs a single-process pyFAI loop on the same frames) and
reconstruction time per q bin (scikit-image SART sweep, FBP).

Run: python benchmarks/bench_scattering.py [--frames 32] [--size 256]
Writes benchmarks/results/scattering.md. Set-up as ../shared/notes/swaxs.md section 5:
Pilatus 2M CdTe, 77 keV, 0.15 m, PONI at the detector centre, Poisson(50) int32 frames,
1000 bins in q_A^-1, polarisation 0.99, solid angle; one OpenMP thread.
"""

import argparse
import os
import resource
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import dask  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402


def _peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_integrate(n_frames):
    from pyFAI.detectors import detector_factory
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    from electromicro_dask.scattering import integrate

    det = detector_factory("Pilatus2MCdTe")
    ny, nx = det.shape
    ai = AzimuthalIntegrator(dist=0.15, poni1=ny * 172e-6 / 2, poni2=nx * 172e-6 / 2,
                             detector=det, wavelength=0.16102e-10)
    rng = np.random.default_rng(0)
    frames = rng.poisson(50, size=(n_frames, ny, nx)).astype(np.int32)
    kw = dict(unit="q_A^-1", correctSolidAngle=True, polarization_factor=0.99, mask=det.mask)
    rows = []
    for method in [("bbox", "csr", "cython"), ("no", "csc", "cython")]:
        ai.integrate1d(frames[0], 1000, method=method, **kw)  # engine set-up outside timing
        t = time.perf_counter()
        for f in frames:
            ai.integrate1d(f, 1000, method=method, **kw)
        dt = time.perf_counter() - t
        rows.append((f"pyFAI loop {method[0]}/{method[1]}", n_frames / dt))
    fr = xr.DataArray(frames[None], dims=("angle", "t", "det_y", "det_x"))
    fr = fr.chunk({"t": 8})
    cfg = ai.get_config()
    for label, batched, method in [("ours per frame bbox/csr", False, ("bbox", "csr", "cython")),
                                   ("ours per frame no/csc", False, ("no", "csc", "cython")),
                                   ("ours batched CSR (bbox)", True, ("bbox", "csr", "cython"))]:
        with dask.config.set(scheduler="synchronous"):
            integrate(fr.isel(t=slice(0, 8)), cfg, mask=det.mask, method=method,
                      batched=batched).compute()  # warm the per-worker engine cache
            # Graph construction (geometry check, q axis) happens once per scan, not per
            # frame: time the computation only.
            lazy = integrate(fr, cfg, mask=det.mask, method=method, batched=batched)
            t = time.perf_counter()
            lazy.compute()
            dt = time.perf_counter() - t
        rows.append((label, n_frames / dt))
    return rows


def bench_reconstruct(size, n_q=4):
    from skimage.transform import radon

    from electromicro_dask.scattering import reconstruct

    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(yy - size / 2, xx - size / 2)
    spiral = np.sin(r / 3 + np.arctan2(yy - size / 2, xx - size / 2)) > 0
    img = ((r > 0.42 * size) & (r < 0.45 * size)) * 1.5 + ((r < 0.4 * size) & spiral)
    ang = np.concatenate([s * 3.6 / 3 + np.arange(50) * 3.6 for s in range(3)])
    ang = np.sort(ang)
    sino = radon(img.astype(float), ang, circle=True).T
    cube = xr.DataArray(np.repeat(sino[:, :, None], n_q, axis=2).astype(np.float32),
                        dims=("angle", "t", "q"),
                        coords={"angle": ang, "t": np.arange(size) * 1.0,
                                "q": np.arange(n_q) * 1.0})
    rows = []
    with dask.config.set(scheduler="synchronous"):
        for method, it in (("sart", 1), ("fbp", 1)):
            t = time.perf_counter()
            reconstruct(cube, method=method, iterations=it, q_chunk=1).compute()
            rows.append((f"{method} ({'per sweep' if method == 'sart' else 'per q bin'})",
                         (time.perf_counter() - t) / n_q))
    return rows, len(ang)


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--frames", type=int, default=32)
    p.add_argument("--size", type=int, default=256)
    a = p.parse_args(argv)
    integ = bench_integrate(a.frames)
    rec, n_ang = bench_reconstruct(a.size)
    base = dict(integ)["pyFAI loop bbox/csr"]
    lines = ["# Scattering benchmarks (seed 004)", "",
             f"Command: `python benchmarks/bench_scattering.py --frames {a.frames} --size {a.size}`"
             " (one core: OMP_NUM_THREADS=1, dask synchronous scheduler)", "",
             "## Azimuthal integration, Pilatus 2M CdTe (1679 x 1475), 1000 bins, "
             f"{a.frames} frames", "",
             "| path | frames/s per core | vs pyFAI loop bbox/csr |", "|---|---|---|"]
    lines += [f"| {k} | {v:.1f} | {v / base:.2f} |" for k, v in integ]
    lines += ["", f"## Reconstruction per q bin, {n_ang} angles x {a.size} translations -> "
              f"{a.size}^2 (scikit-image)", "", "| method | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.3f} |" for k, v in rec]
    lines += ["", f"Peak RSS: {_peak_mb():.0f} MB", ""]
    text = "\n".join(lines)
    print(text)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "scattering.md")
    with open(out, "w") as fh:
        fh.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
