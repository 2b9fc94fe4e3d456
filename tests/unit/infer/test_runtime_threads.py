"""The runtime's threads are set deliberately: model.intra_op_threads and model.thread_wait reach ONNX Runtime."""
from __future__ import annotations

import dataclasses

import pytest

from edgead.daemon.config import StationConfig
from edgead.daemon.model import cpu_options
from edgead.infer import BackendKind, open_backend
from edgead.infer.threads import ThreadWait, usable_cores


@pytest.mark.parametrize("wait, entry", [(ThreadWait.BLOCK, "0"), (ThreadWait.SPIN, "1")])
def test_thread_wait_sets_onnxruntime_spinning(padim_bundle, wait, entry):
    with open_backend(padim_bundle.bundle.root, intra_op_threads=1, thread_wait=wait) as eng:
        opts = eng._session.get_session_options()  # noqa: SLF001
        assert opts.get_session_config_entry("session.intra_op.allow_spinning") == entry
        assert opts.intra_op_num_threads == 1


def test_the_station_names_its_thread_count(padim_bundle):
    bundle = padim_bundle.bundle
    cfg = StationConfig()
    assert cpu_options(cfg, bundle) == {"intra_op_threads": usable_cores(), "thread_wait": ThreadWait.BLOCK}
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, intra_op_threads=3,
                                                             thread_wait=ThreadWait.SPIN))
    assert cpu_options(cfg, bundle) == {"intra_op_threads": 3, "thread_wait": ThreadWait.SPIN}
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, backend=BackendKind.TENSORRT))
    assert cpu_options(cfg, bundle) == {}  # TensorRT has no CPU threads to set
