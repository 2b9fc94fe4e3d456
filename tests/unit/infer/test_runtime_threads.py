"""The runtime's threads are set deliberately: model.intra_op_threads and model.thread_wait reach ONNX Runtime."""
from __future__ import annotations

import dataclasses

import pytest

from edgead.config import from_dict
from edgead.daemon.config import StationConfig
from edgead.daemon.model import cpu_options
from edgead.errors import ConfigError
from edgead.infer import BackendKind, open_backend
from edgead.infer.threads import ThreadCount, ThreadWait, engine_threads, usable_cores


@pytest.mark.parametrize("wait, entry, stop", [(ThreadWait.BLOCK, "0", False), (ThreadWait.SPIN, "1", False),
                                              (ThreadWait.SPIN_IN_RUN, "1", True)])
def test_thread_wait_sets_onnxruntime_spinning(padim_bundle, wait, entry, stop):
    with open_backend(padim_bundle.bundle.root, intra_op_threads=1, thread_wait=wait) as eng:
        opts = eng._session.get_session_options()  # noqa: SLF001
        assert opts.get_session_config_entry("session.intra_op.allow_spinning") == entry
        if stop:  # spin_in_run: the workers stop spinning when a run returns
            assert opts.get_session_config_entry("session.force_spinning_stop") == "1"
        else:
            with pytest.raises(Exception, match="force_spinning_stop"):  # ONNX Runtime: no such entry
                opts.get_session_config_entry("session.force_spinning_stop")
        assert opts.intra_op_num_threads == 1


def test_further_session_entries_reach_onnxruntime(padim_bundle):
    """What benchmarks/engine_settings.py measures beside the station's settings is set by the same backend."""
    from edgead.infer.onnxrt import OnnxRuntimeBackend

    with OnnxRuntimeBackend(padim_bundle.bundle.onnx_path, providers=["CPUExecutionProvider"], intra_op_threads=2,
                            thread_wait=ThreadWait.BLOCK, session_entries={"session.dynamic_block_base": "4"}) as eng:
        opts = eng._session.get_session_options()  # noqa: SLF001
        assert opts.get_session_config_entry("session.dynamic_block_base") == "4"
        assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_the_station_names_its_thread_count(padim_bundle):
    bundle = padim_bundle.bundle
    cfg = StationConfig()
    assert cpu_options(cfg, bundle) == {"intra_op_threads": usable_cores(), "thread_wait": ThreadWait.BLOCK}
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, intra_op_threads=3,
                                                             thread_wait=ThreadWait.SPIN))
    assert cpu_options(cfg, bundle) == {"intra_op_threads": 3, "thread_wait": ThreadWait.SPIN}
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, backend=BackendKind.TENSORRT))
    assert cpu_options(cfg, bundle) == {}  # TensorRT has no CPU threads to set


@pytest.mark.parametrize("setting, cores, threads", [
    (ThreadCount.CORES, 4, 4), (ThreadCount.CORES_LEFT, 4, 3), (ThreadCount.CORES_LEFT, 2, 1),
    (ThreadCount.CORES_LEFT, 1, 1), (None, 2, 2), (3, 2, 3), ("cores_left", 8, 7)])
def test_a_thread_rule_resolves_on_the_usable_cores(setting, cores, threads):
    assert engine_threads(setting, cores=cores) == threads


def test_cores_left_leaves_the_loop_a_core_of_this_process_s_affinity(padim_bundle, monkeypatch):
    from edgead.infer import threads as threads_mod

    monkeypatch.setattr(threads_mod, "usable_cores", lambda: 4)
    cfg = StationConfig()
    assert cfg.model.intra_op_threads is ThreadCount.CORES  # the default, spelled out
    assert cpu_options(cfg, padim_bundle.bundle)["intra_op_threads"] == 4
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, intra_op_threads=ThreadCount.CORES_LEFT))
    assert cpu_options(cfg, padim_bundle.bundle)["intra_op_threads"] == 3


@pytest.mark.parametrize("value, got", [("cores", ThreadCount.CORES), ("cores_left", ThreadCount.CORES_LEFT),
                                        (2, 2), (None, None)])
def test_the_config_takes_a_number_or_a_rule(value, got):
    assert from_dict(StationConfig, {"model": {"intra_op_threads": value}}).model.intra_op_threads == got


@pytest.mark.parametrize("value", ["two", "auto", 0, 2000, True, 1.5])
def test_the_config_refuses_other_thread_counts_naming_the_key_and_the_rules(value):
    with pytest.raises(ConfigError, match=r"model\.intra_op_threads") as err:
        from_dict(StationConfig, {"model": {"intra_op_threads": value}})
    if isinstance(value, str):
        assert "'cores', 'cores_left'" in err.value.message
