import numpy as np
import pytest

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _one_torch_thread():
    # Small networks on a shared 2-core machine: one intra-op thread avoids oversubscription.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def two_phase_image():
    """A 2D two-phase label image of known fraction 0.30 (thresholded smooth noise)."""
    from scipy import ndimage

    f = ndimage.gaussian_filter(np.random.default_rng(0).standard_normal((128, 128)), 2.0)
    return (f > np.quantile(f, 0.7)).astype(np.uint8)
