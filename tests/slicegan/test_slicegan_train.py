"""Training: fractions learned on CPU, checkpoint -> SIGKILL -> resume, exact resume."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

from electromicro_dask.errors import InputError
from electromicro_dask.slicegan import generate, load_model, train
from electromicro_dask.slicegan.train import _checkpoints

PHASES = {0: "pore", 1: "am"}
TINY = dict(config="tiny")


def test_short_training_learns_the_phase_fraction(two_phase_image):
    # Ground truth: the image's 'am' fraction is 0.30 by construction. An untrained
    # generator is far from it (checked), so the test can fail.
    target = two_phase_image.mean()
    m0 = train(two_phase_image, phases=PHASES, steps=0, **TINY)
    f0 = (generate(m0, (48, 48, 48), chunks=24, seed=1).values == 1).mean()
    m = train(two_phase_image, phases=PHASES, steps=40, log_every=10, **TINY)
    vol = generate(m, (48, 48, 48), chunks=24, seed=1).values
    assert abs(f0 - target) > 0.1
    assert abs((vol == 1).mean() - target) < 0.05
    assert list(m.history["step"]) == [10, 20, 30, 40]
    assert np.isfinite(m.history[["wasserstein", "gradient_penalty", "steps_per_s"]].values).all()


def test_resume_is_exact(tmp_path, two_phase_image):
    full = train(two_phase_image, phases=PHASES, steps=4, seed=3, **TINY)
    ck = tmp_path / "ck"
    train(two_phase_image, phases=PHASES, steps=2, seed=3, checkpoint=ck, checkpoint_every=1, **TINY)
    assert [s for s, _ in _checkpoints(ck)] == [1, 2]
    resumed = train(two_phase_image, phases=PHASES, steps=4, seed=3, checkpoint=ck, **TINY)
    assert resumed.step == 4
    for k, v in full.generator_state.items():
        assert torch.equal(v, resumed.generator_state[k]), k
    assert load_model(_checkpoints(ck)[-1][1]).step == 4
    with pytest.raises(InputError, match="checkpoint"):
        train(two_phase_image, phases=PHASES, steps=5, checkpoint=ck, config="tiny", lr_g=1e-4)


def test_sigkill_then_resume_continues_from_saved_step(tmp_path, two_phase_image):
    ck = tmp_path / "ck"
    np.save(tmp_path / "img.npy", two_phase_image)
    script = textwrap.dedent(f"""
        import numpy as np, torch
        torch.set_num_threads(1)
        from electromicro_dask.slicegan import train
        img = np.load({str(tmp_path / 'img.npy')!r})
        train(img, phases={PHASES!r}, steps=10000, checkpoint={str(ck)!r}, checkpoint_every=1,
              config="tiny")
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 90
        while time.time() < deadline and not [s for s, _ in _checkpoints(ck) if s >= 2]:
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)        # mid-training, possibly mid-write
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    saved = _checkpoints(ck)[-1][0]
    assert saved >= 2 and proc.returncode == -signal.SIGKILL
    for _, f in _checkpoints(ck):                          # every visible checkpoint is whole
        assert load_model(f).step >= 1
    seen = []
    m = train(two_phase_image, phases=PHASES, steps=saved + 2, checkpoint=ck, log_every=1,
              callback=lambda r: seen.append(r["step"]), **TINY)
    assert seen == [saved + 1, saved + 2]                  # only the missing steps ran
    assert m.step == saved + 2


def test_anisotropic_and_grey_modes_run(two_phase_image):
    imgs = {"z": two_phase_image, "y": two_phase_image.T.copy(), "x": two_phase_image[::-1].copy()}
    m = train(imgs, phases=PHASES, steps=1, **TINY)
    assert m.step == 1 and m.phases == PHASES
    grey = train(two_phase_image.astype(float) * 0.5 + 0.2, grey=True, steps=1, **TINY)
    v = generate(grey, (16, 16, 16)).values
    assert v.dtype == np.float32 and 0 <= v.min() and v.max() <= 1


def test_train_rejects_bad_input(two_phase_image):
    with pytest.raises(InputError, match="steps"):
        train(two_phase_image, phases=PHASES, steps=-1, config="tiny")
    with pytest.raises(InputError, match="config"):
        train(two_phase_image, phases=PHASES, steps=1, config="v9")
    with pytest.raises(InputError, match="image"):
        train(two_phase_image[:10, :10], phases=PHASES, steps=1, config="tiny")
