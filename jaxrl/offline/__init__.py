"""Offline RL data layer: trajectory datasets, loaders, a recorder and a sampler."""

from jaxrl.offline.dataset import (
    Dataset,
    from_flat,
    load,
    load_hdf5,
    load_npz,
    make_dataset,
    record,
    returns_to_go,
    sample,
    save_npz,
)

__all__ = [
    "Dataset",
    "from_flat",
    "load",
    "load_hdf5",
    "load_npz",
    "make_dataset",
    "record",
    "returns_to_go",
    "sample",
    "save_npz",
]
