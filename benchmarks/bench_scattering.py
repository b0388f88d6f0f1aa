"""Benchmark of SWAXS-CT processing (seed 004): azimuthal integration frames/s per core
(ours per frame and batched vs a single-process pyFAI loop on the same frames), the
parallel efficiency of the batched integration over LocalCluster workers, reconstruction
time per q bin (scikit-image SART sweep, FBP) and the projected time of one seed-size slice
(1024 translations x 300 angles = 307,200 frames per detector) on N cores.

Run: python benchmarks/bench_scattering.py [--frames 32] [--size 256] [--workers 1 2]
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


def bench_parallel(n_frames, workers):
    """Batched integration of lazily made Pilatus 2M frames on LocalClusters of 1..N
    single-threaded workers: frames/s and efficiency against N x the 1-worker rate."""
    import dask.array as da
    from distributed import Client, LocalCluster
    from pyFAI.detectors import detector_factory
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    from electromicro_dask.scattering import integrate

    det = detector_factory("Pilatus2MCdTe")
    ny, nx = det.shape
    ai = AzimuthalIntegrator(dist=0.15, poni1=ny * 172e-6 / 2, poni2=nx * 172e-6 / 2,
                             detector=det, wavelength=0.16102e-10)
    cfg = ai.get_config()
    # The integration cost does not depend on the counts: a constant frame is made in a
    # few ms per block, so the workers spend their time integrating.
    data = da.full((n_frames, ny, nx), 50, dtype=np.int32, chunks=(4, ny, nx))
    fr = xr.DataArray(data[None], dims=("angle", "t", "det_y", "det_x"))
    rows = []
    for n in workers:
        with LocalCluster(n_workers=n, threads_per_worker=1, dashboard_address=None,
                          env={"OMP_NUM_THREADS": "1"}) as cluster, Client(cluster) as client:
            # each worker builds its engine (sparse matrix) once per scan: outside timing
            warm = integrate(fr.isel(t=slice(0, 4)), cfg, mask=det.mask, batched=True)
            for w in client.scheduler_info()["workers"]:
                client.compute(warm.data, workers=[w], allow_other_workers=False).result()
            lazy = integrate(fr, cfg, mask=det.mask, batched=True)
            t = time.perf_counter()
            lazy.compute()
            dt = time.perf_counter() - t
            client.close()
        rows.append((n, n_frames / dt))
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
    cases = [("sart (per sweep)", "sart", "scikit-image"), ("fbp (per q bin)", "fbp", "auto")]
    try:
        import astra  # noqa: F401

        cases.insert(1, ("sart astra CPU (per sweep)", "sart", "astra"))
    except Exception:  # noqa: BLE001 - optional extra, or its CUDA runtime libraries missing
        pass
    rows = []
    with dask.config.set(scheduler="synchronous"):
        for name, method, lib in cases:
            t = time.perf_counter()
            reconstruct(cube, method=method, iterations=1, q_chunk=1, library=lib).compute()
            rows.append((name, (time.perf_counter() - t) / n_q))
    return rows, len(ang)


def _reconstruct_only(a, argv):
    rec, n_ang = bench_reconstruct(a.size)
    base = dict(rec)["sart (per sweep)"]
    lines = ["# Reconstruction per q bin (seed 004)", "",
             f"Command: `python benchmarks/bench_scattering.py {' '.join(argv or sys.argv[1:])}`"
             f" (OMP_NUM_THREADS=1, dask synchronous scheduler; machine: {os.cpu_count()} "
             "CPUs)", "",
             f"{n_ang} interlaced angles x {a.size} translations -> {a.size}^2, one SART sweep "
             "(all angles once) or one FBP per q bin.", "",
             "| method | seconds | vs scikit-image SART |", "|---|---|---|"]
    lines += [f"| {k} | {v:.3f} | {v / base:.2f} |" for k, v in rec]
    lines += ["", "Agreement of the two SART implementations on the synthetic cell: "
              "`tests/scattering/test_scattering_swaxs.py::test_astra_and_scikit_image_sart_agree`."
              , ""]
    text = "\n".join(lines)
    print(text)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                       "scattering_reconstruct.md")
    with open(out, "w") as fh:
        fh.write(text)
    return 0


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--frames", type=int, default=32)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--parallel-frames", type=int, default=96)
    p.add_argument("--only-reconstruct", action="store_true",
                   help="only the reconstruction times (astra, scikit-image, FBP), written to "
                        "results/scattering_reconstruct.md")
    a = p.parse_args(argv)
    if a.only_reconstruct:
        return _reconstruct_only(a, argv)
    integ = bench_integrate(a.frames)
    par = bench_parallel(a.parallel_frames, a.workers)
    rec, n_ang = bench_reconstruct(a.size)
    base = dict(integ)["pyFAI loop bbox/csr"]
    lines = ["# Scattering benchmarks (seed 004)", "",
             f"Command: `python benchmarks/bench_scattering.py {' '.join(argv or sys.argv[1:])}`"
             " (single-core sections: OMP_NUM_THREADS=1, dask synchronous scheduler; "
             f"machine: {os.cpu_count()} CPUs)", "",
             "## Azimuthal integration, Pilatus 2M CdTe (1679 x 1475), 1000 bins, "
             f"{a.frames} frames", "",
             "| path | frames/s per core | vs pyFAI loop bbox/csr |", "|---|---|---|"]
    lines += [f"| {k} | {v:.1f} | {v / base:.2f} |" for k, v in integ]
    lines += ["", f"## Reconstruction per q bin, {n_ang} angles x {a.size} translations -> "
              f"{a.size}^2 (scikit-image; astra-toolbox when installed)", "",
              "| method | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.3f} |" for k, v in rec]
    one = par[0][1] / par[0][0]
    lines += ["", f"## Parallel efficiency: batched integration of {a.parallel_frames} Pilatus 2M "
              "frames on a LocalCluster (1 thread per worker)", "",
              "| workers | frames/s | per worker | efficiency |", "|---|---|---|---|"]
    lines += [f"| {n} | {f:.1f} | {f / n:.1f} | {f / (n * one):.2f} |" for n, f in par]
    # Seed-size slice: 1024 x 300 frames per detector; per q bin a 1024^2 reconstruction
    # from 300 angles, SART cost scaled from the measured size by pixels x angles.
    n_frames = 1024 * 300
    sart = dict(rec)["sart (per sweep)"] * (1024 / a.size) ** 2 * (300 / n_ang)
    fbp = dict(rec)["fbp (per q bin)"] * (1024 / a.size) ** 2 * (300 / n_ang)
    eff = par[-1][1] / (par[-1][0] * one)
    lines += ["", "## Projected time of one seed-size slice (one detector)", "",
              f"307,200 frames at the measured batched rate per core ({one:.1f} frames/s) and "
              f"the measured efficiency at {par[-1][0]} workers ({eff:.2f}, assumed to hold at "
              f"N cores); 1000 q bins reconstructed by FBP ({fbp:.2f} s each) or 10 SART "
              f"sweeps ({sart:.2f} s per sweep), times scaled from {a.size}^2 x {n_ang} "
              "angles by pixels x angles.", "",
              "| cores | integration h | FBP all q h | SART x10 all q h |", "|---|---|---|---|"]
    for n in (1, 16, 64, 256):
        e = 1.0 if n == 1 else eff
        lines.append(f"| {n} | {n_frames / (one * n * e) / 3600:.2f} | "
                     f"{1000 * fbp / (n * e) / 3600:.2f} | {10000 * sart / (n * e) / 3600:.2f} |")
    lines += ["", f"Peak RSS: {_peak_mb():.0f} MB", ""]
    text = "\n".join(lines)
    print(text)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "scattering.md")
    with open(out, "w") as fh:
        fh.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
