"""The SliceGAN pipeline (seed 000 section 2.3): a segmented 2D section -> trained
SliceGAN -> generated 3D volume -> statistics of the volume next to the section's.

The section is a label variable of the store (``input_variable``, e.g. the ToF-SIMS
pipeline's segmentation) or, by default, a synthetic 2D electrode section. The trained
generator is stored as a table (the model file, base64) so the store stays
self-contained; training checkpoints go to ``checkpoint_dir`` (default: a cache
directory keyed by the image and the training parameters), so an interrupted run resumes
training where it stopped. With a distributed client the training runs as one task on a
GPU worker when there is one. The generated volume has the section's y/x grid (the store
holds one grid per dim) and ``depth_voxels`` along z.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.errors import InputError
from ..core.store import open_store, open_table
from .stage import Stage

PARAMETERS = {
    "input_variable": "",             # 2D label variable in the store; "" = synthetic section
    "section_size": 256,              # synthetic section: pixels per edge
    "voxel_size_um": 0.5,
    "fractions": {"pore": 0.30, "cbd": 0.15, "am": 0.55},
    "particle_radius_um": [4.0, 1.0],
    "config": "v1.1",                 # "v1.1" (reference model) or "tiny" (smoke runs)
    "steps": 3000,                    # generator steps
    "device": "auto",
    "mixed_precision": False,
    "checkpoint_dir": "",             # "" = ~/.cache/electromicro_dask/slicegan/<key>
    "checkpoint_every": 100,
    "depth_voxels": 128,              # z size of the generated volume
    "chunk_voxels": 64,               # chunk edge of the generated volume
    "tortuosity": False,              # add tortuosity factors (transport package) to validation
    "seed": 0,
}


def validate(params):
    from ..slicegan import CONFIGS

    if params["config"] not in CONFIGS:
        raise InputError("parameters.config", f"one of {sorted(CONFIGS)}, got {params['config']!r}")
    for k in ("steps", "depth_voxels", "chunk_voxels", "checkpoint_every", "section_size"):
        if params[k] < 1:
            raise InputError(f"parameters.{k}", f"a positive integer, got {params[k]}")


def make_section(section_size, voxel_size_um, fractions, particle_radius_um, seed):
    """A synthetic 2D electrode section (labels pore / cbd / am)."""
    from .. import synth

    ds = synth.electrode((section_size, section_size), voxel_size_um, fractions=fractions,
                         particle_radius_um=tuple(particle_radius_um), seed=seed)
    return ds["phases"]


def _default_checkpoint_dir(image, params):
    h = hashlib.sha256(np.ascontiguousarray(np.asarray(image.values)).tobytes())
    h.update(json.dumps(params, sort_keys=True, default=str).encode())
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "electromicro_dask" / "slicegan" / h.hexdigest()[:16]


def train_model(training_image, config, steps, device, mixed_precision, checkpoint_dir,
                checkpoint_every, seed):
    """Train SliceGAN on the section; returns the model as a table (dict)."""
    from .. import slicegan

    image = training_image.compute()
    kw = dict(phases=image.attrs.get("phases"), steps=steps, device=device, config=config,
              mixed_precision=mixed_precision, checkpoint_every=checkpoint_every, seed=seed)
    ck = checkpoint_dir or str(_default_checkpoint_dir(image, kw))
    try:
        from distributed import get_client

        client = get_client()
    except (ImportError, ValueError):
        client = None
    if client is not None:
        model = slicegan.submit_train(client, image, checkpoint=ck, **kw).result()
    else:
        model = slicegan.train(image, checkpoint=ck, **kw)
    last = model.history.iloc[-1].to_dict() if len(model.history) else {}
    return {"model": base64.b64encode(model.to_bytes()).decode("ascii"), "step": model.step,
            "config": config, "phases": model.phases, "last_log": last,
            "history": model.history.to_dict(orient="list")}


def model_from_table(table):
    """The :class:`~electromicro_dask.slicegan.SliceGANModel` stored by :func:`train_model`."""
    from ..slicegan import SliceGANModel

    return SliceGANModel.from_bytes(base64.b64decode(table["model"]))


def generate_volume(slicegan_model, training_image, depth_voxels, chunk_voxels, seed):
    """The generated volume on the section's y/x grid, lazily, chunk by chunk."""
    from .. import slicegan

    model = model_from_table(slicegan_model)
    ny, nx = training_image.shape
    vol = slicegan.generate(model, (depth_voxels, ny, nx), chunks=(chunk_voxels,) * 3, seed=seed)
    # SliceGAN makes isotropic voxels of the training image's pixel size.
    from ..core.arrays import voxel_size

    vs = voxel_size(training_image, ("y", "x"))[0]
    return vol.assign_coords(y=training_image.coords["y"].values, x=training_image.coords["x"].values,
                             z=np.arange(depth_voxels) * vs)


def validation_table(generated, training_image, tortuosity=False):
    """Volume fractions, interface area, S2 gap (and tortuosity), section vs volume."""
    from .. import slicegan

    return slicegan.validate(generated, training_image, tortuosity=tortuosity).table.reset_index()


def stages(p):
    src = p["input_variable"] or "training_image"
    out = []
    if not p["input_variable"]:
        out.append(Stage("training_image", make_section, params=dict(
            section_size=p["section_size"], voxel_size_um=p["voxel_size_um"],
            fractions=p["fractions"], particle_radius_um=p["particle_radius_um"], seed=p["seed"])))
    out += [
        Stage("slicegan_model", train_model, inputs=(src,), params=dict(
            config=p["config"], steps=p["steps"], device=p["device"],
            mixed_precision=p["mixed_precision"], checkpoint_dir=p["checkpoint_dir"],
            checkpoint_every=p["checkpoint_every"], seed=p["seed"])),
        Stage("generated", generate_volume, inputs=("slicegan_model", src), params=dict(
            depth_voxels=p["depth_voxels"], chunk_voxels=p["chunk_voxels"], seed=p["seed"] + 1)),
        Stage("validation", validation_table, inputs=("generated", src),
              params=dict(tortuosity=p["tortuosity"])),
    ]
    return out


def summarize(store, params):
    from .. import slicegan

    src = params["input_variable"] or "training_image"
    ds = open_store(store)
    val = slicegan.validate(ds["generated"], ds[src])       # figures (S2, slices, fractions)
    model = open_table(store, "slicegan_model")
    hist = pd.DataFrame(model["history"])
    table = open_table(store, "validation").set_index(["phase", "quantity"])
    summary = {
        "training_image": {"variable": src, "shape": list(ds[src].shape)},
        "generated": {"shape": list(ds["generated"].shape)},
        "model": {"config": model["config"], "steps": model["step"], "last_log": model["last_log"]},
        "volume_fractions": {ph: {"training": float(table.loc[(ph, "volume fraction"), "training"]),
                                  "generated": float(table.loc[(ph, "volume fraction"), "generated"])}
                             for ph in table.index.get_level_values(0).unique()},
        "max_fraction_difference": float(table.xs("volume fraction", level="quantity")["difference"]
                                         .abs().max()),
    }
    figures = dict(val.figures)
    if len(hist):
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3.4))
        ax.plot(hist["step"], hist["wasserstein"], label="Wasserstein estimate")
        ax.plot(hist["step"], hist["gradient_penalty"], label="gradient penalty")
        ax.set_xlabel("generator step")
        ax.legend()
        fig.tight_layout()
        figures["training"] = fig
    return summary, figures, {"validation": table.reset_index()}
