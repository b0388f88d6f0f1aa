"""Genuine 2D detector frames (tier T1 of notes/swaxs.md 6): made from the synthetic cell's
1D profiles through a known geometry, checked against pyFAI's calcfrom1d, integrated back,
and a scan larger than the worker's memory taken end to end to a SAXS map."""

import numpy as np
import pytest

pyFAI = pytest.importorskip("pyFAI")
from pyFAI.detectors import Detector  # noqa: E402
from pyFAI.integrator.azimuthal import AzimuthalIntegrator  # noqa: E402

from electromicro_dask import scattering as sc  # noqa: E402
from electromicro_dask.errors import InputError  # noqa: E402
from electromicro_dask.synth import detector_frames, wound_cell  # noqa: E402

SHAPE = (256, 256)


def _saxs_detector():
    """Seed-like SAXS geometry (notes/swaxs.md 6, T1): 172 um pixels at 3.5 m, beam at the
    corner, 77 keV: q from 0.001 to 0.69 1/A."""
    det = Detector(pixel1=172e-6, pixel2=172e-6, max_shape=SHAPE)
    return AzimuthalIntegrator(dist=3.5, poni1=0.0, poni2=0.0, detector=det,
                               wavelength=0.161e-10)


def _cell(size=48, n_angles=36):
    c = wound_cell(size=size, pixel_um=50.0, n_angles=n_angles, subsets=3,
                   radius_um=(size / 2 - 2) * 50.0, mandrel_um=150.0,
                   n_saxs=300, n_waxs=50, chunks=1)
    return c, c.sinogram.sel(q=slice(0, 0.7))


def _bins(q):
    dq = q[1] - q[0]
    return dict(bins=len(q), radial_range=(q[0] - dq / 2, q[-1] + dq / 2))


def test_frames_equal_calcfrom1d_and_noise_is_chunk_invariant():
    ai = _saxs_detector()
    _, s = _cell(size=32, n_angles=6)
    fr = detector_frames(s, ai)
    assert fr.dims == ("angle", "t", "det_y", "det_x")
    np.testing.assert_array_equal(fr["angle"], s["angle"])
    for a, t in ((0, 3), (4, 20)):
        ref = ai.calcfrom1d(s.q.values, s.isel(angle=a, t=t).values, shape=SHAPE,
                            dim1_unit="q_A^-1", correctSolidAngle=True,
                            polarization_factor=0.99)
        np.testing.assert_allclose(fr.isel(angle=a, t=t).values, ref,
                                   rtol=1e-5, atol=1e-6 * np.abs(ref).max())
    noisy = detector_frames(s, ai, counts=50.0, seed=3)
    other = detector_frames(s.chunk({"angle": 4, "t": 7}), ai, counts=50.0, seed=3)
    a, b = noisy.isel(angle=slice(2, 5)).values, other.isel(angle=slice(2, 5)).values
    np.testing.assert_array_equal(a, b)
    assert np.std(a - fr.isel(angle=slice(2, 5)).values) > 0


def test_scan_larger_than_worker_memory_to_saxs_map():
    from distributed import Client, LocalCluster
    from distributed.diagnostics import MemorySampler

    ai = _saxs_detector()
    cell, s = _cell(size=64)
    frames = detector_frames(s, ai)
    limit = 400 * 2**20  # a worker holding pyFAI starts at about 250 MiB
    assert frames.nbytes > 1.4 * limit  # 576 MiB of frames, generated block by block
    q = s.q.values
    with LocalCluster(n_workers=1, threads_per_worker=1, memory_limit=limit,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        ms = MemorySampler()
        with ms.sample("scan", measure="process", interval=0.1):
            prof = sc.integrate(frames, ai, batched=True, **_bins(q))
            sino = sc.saxs_intensity(prof).compute()
        peak = ms.to_pandas()["scan"].max()
        n_workers = len(client.scheduler_info()["workers"])
    assert n_workers == 1 and peak < limit, f"peak {peak / 2**20:.0f} MiB"
    ref = sc.saxs_intensity(s).compute()
    # the window integral from genuine frames equals the 1D one (bins on the same centres)
    np.testing.assert_allclose(sino.values, ref.values, rtol=0.02,
                               atol=0.005 * float(np.abs(ref).max()))
    rec = sc.reconstruct(sc.assemble(sino.expand_dims(q=[0.05], axis=-1)
                                     .assign_coords(subset=cell.sinogram.subset),
                                     cell.monitor).isel(q=0), method="fbp").compute()
    rec0 = sc.reconstruct(sc.assemble(ref.expand_dims(q=[0.05], axis=-1)
                                      .assign_coords(subset=cell.sinogram.subset),
                                      cell.monitor).isel(q=0), method="fbp").compute()
    assert np.corrcoef(rec.values.ravel(), rec0.values.ravel())[0, 1] > 0.999


def test_bad_input():
    ai = _saxs_detector()
    _, s = _cell(size=32, n_angles=6)
    with pytest.raises(InputError, match="profiles"):
        detector_frames(s.transpose("t", "angle", "q"), ai)
    with pytest.raises(InputError, match="counts"):
        detector_frames(s, ai, counts=0)
    with pytest.raises(InputError, match="poni"):
        detector_frames(s, "/nonexistent.poni")
