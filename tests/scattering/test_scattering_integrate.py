"""Blockwise integration against pyFAI's in-memory integrate1d, and a frame made from a
known 1D profile through a known geometry (../shared/notes/swaxs.md, sections 5 and 6)."""

import numpy as np
import pytest
import xarray as xr

pyFAI = pytest.importorskip("pyFAI")
from pyFAI.detectors import Detector  # noqa: E402
from pyFAI.integrator.azimuthal import AzimuthalIntegrator  # noqa: E402

from electromicro_dask.errors import InputError  # noqa: E402
from electromicro_dask.scattering import integrate  # noqa: E402

SHAPE = (160, 192)


@pytest.fixture(scope="module")
def ai(tmp_path_factory):
    det = Detector(pixel1=172e-6, pixel2=172e-6, max_shape=SHAPE)
    # Corner beam, 0.35 m, 77 keV (wavelength 0.161 A): q from ~0 to ~4.6 1/A.
    a = AzimuthalIntegrator(dist=0.35, poni1=0.002, poni2=0.003, rot1=0.01, rot2=-0.005,
                            detector=det, wavelength=0.161e-10)
    path = tmp_path_factory.mktemp("poni") / "det.poni"
    a.write(str(path))
    return a, path


def _profile(q, peaks, areas, fwhm=0.05):
    s = fwhm / 2.3548
    out = np.zeros_like(q) + 1.0
    for c, a in zip(peaks, areas):
        out += a * np.exp(-0.5 * ((q - c) / s) ** 2) / (s * np.sqrt(2 * np.pi))
    return out


def _frames(ai, n, rng, noise):
    q = np.linspace(0.2, 4.5, 4000)
    prof = _profile(q, [1.3, 1.865, 3.01], [30.0, 60.0, 40.0])
    tmpl = ai.calcfrom1d(q, prof, shape=SHAPE, dim1_unit="q_A^-1", correctSolidAngle=True,
                         polarization_factor=0.99)
    scale = 200.0 * (1 + 0.1 * np.arange(n))
    f = scale[:, None, None] * tmpl[None]
    if noise:
        f = rng.poisson(f).astype(np.float64)
    return f, scale, q, prof


@pytest.mark.parametrize("batched", [False, True])
def test_equals_in_memory_integrate1d(ai, batched):
    a, path = ai
    rng = np.random.default_rng(0)
    f, _, _, _ = _frames(a, 6, rng, noise=True)
    frames = xr.DataArray(f.reshape(2, 3, *SHAPE), dims=("angle", "t", "det_y", "det_x"),
                          coords={"angle": [0.0, 6.0], "t": [0.0, 50.0, 100.0]}).chunk(
        {"angle": 1, "t": 2})
    mask = np.zeros(SHAPE, np.int8)
    mask[:, 90:95] = 1  # a module gap
    out = integrate(frames, path, bins=400, mask=mask, batched=batched)
    assert out.dims == ("angle", "t", "q")
    got = out.values.reshape(6, 400)
    for i in range(6):
        ref = a.integrate1d(f[i], 400, unit="q_A^-1", correctSolidAngle=True,
                            polarization_factor=0.99, mask=mask, method=("bbox", "csr", "cython"))
        ok = ref.intensity != 0
        np.testing.assert_allclose(got[i][ok], ref.intensity[ok], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(out.q.values, ref.radial, rtol=1e-9)


@pytest.mark.parametrize("noise, tol", [(False, 0.01), (True, 0.03)])
def test_peak_positions_and_areas_from_known_profile(ai, noise, tol):
    a, path = ai
    f, scale, q, prof = _frames(a, 1, np.random.default_rng(1), noise)
    frames = xr.DataArray(f, dims=("frame", "det_y", "det_x"))
    out = integrate(frames, path, bins=800, radial_range=(0.5, 4.0)).values[0] / scale[0]
    qq = integrate(frames, path, bins=800, radial_range=(0.5, 4.0)).q.values
    dq = qq[1] - qq[0]
    for c, area in zip([1.3, 1.865, 3.01], [30.0, 60.0, 40.0]):
        win = np.abs(qq - c) < 0.15
        # Peak position: centroid of the baseline-subtracted peak (sub-bin estimate).
        w = np.clip(out[win] - 1.0, 0, None)
        peak = np.sum(qq[win] * w) / np.sum(w)
        assert abs(peak - c) <= dq / 2
        measured = np.sum(out[win] - 1.0) * dq  # baseline of the profile is 1
        assert measured == pytest.approx(area, rel=tol)


def test_monitor_and_bad_input(ai, tmp_path):
    a, path = ai
    f, scale, _, _ = _frames(a, 3, np.random.default_rng(2), noise=False)
    frames = xr.DataArray(f, dims=("frame", "det_y", "det_x"))
    mon = xr.DataArray(scale, dims=("frame",))
    out = integrate(frames, path, bins=300, monitor=mon).values
    np.testing.assert_allclose(out[0], out[2], rtol=1e-5)
    wrong = xr.DataArray(np.zeros((2, 100, 100)), dims=("frame", "det_y", "det_x"))
    with pytest.raises(InputError, match="poni"):
        integrate(wrong, path)
    with pytest.raises(InputError, match="poni"):
        integrate(frames, tmp_path / "missing.poni")
    with pytest.raises(InputError, match="radial_range"):
        integrate(frames, path, radial_range=(0.5, 40.0))
    with pytest.raises(InputError, match="mask"):
        integrate(frames, path, mask=np.zeros((3, 3)))
