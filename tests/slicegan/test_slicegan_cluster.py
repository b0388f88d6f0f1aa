"""On a real LocalCluster: training as a task (no GPU worker -> CPU), generation unchanged."""

import numpy as np

from electromicro_dask.slicegan import generate, submit_train


def test_submit_train_and_generate_on_cluster(client, two_phase_image):
    fut = submit_train(client, two_phase_image, phases={0: "pore", 1: "am"}, steps=1,
                       config="tiny", device="auto")
    model = fut.result()
    assert model.step == 1 and model.phases == {0: "pore", 1: "am"}
    vol = generate(model, (20, 24, 17), chunks=(7, 24, 9), seed=2)
    on_cluster = client.compute(vol.data).result()
    import dask

    with dask.config.set(scheduler="threads"):
        local = generate(model, (20, 24, 17), chunks=(20, 24, 17), seed=2).values
    np.testing.assert_array_equal(on_cluster, local)
