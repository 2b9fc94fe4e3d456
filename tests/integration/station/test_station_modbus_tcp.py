"""The daemon end to end with Modbus TCP: folder:// camera, alignment, ONNX Runtime, the station as Modbus TCP server on
127.0.0.1 and a pymodbus TCP client playing the PLC (trigger, wait for ResultValid with its id, read the verdict)."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import yaml

from edgead.daemon.config import load_station
from edgead.daemon.runner import Runner
from edgead.plc.register_map import decode_result
from edgead.records import RecordStore
from modbus_peers import free_port

pytest.importorskip("pymodbus", reason="pymodbus (the [modbus] extra) plays the PLC")
pytestmark = pytest.mark.timeout(300)
CODES = {1: "accept", 2: "reject", 3: "no-read", 4: "fault"}


def test_a_pymodbus_plc_gets_every_verdict_over_modbus_tcp(small_station, padim_bundle, bundle_key, tmp_path):
    from pymodbus.client import ModbusTcpClient

    port = free_port()
    path = tmp_path / "station.yaml"
    path.write_text(yaml.safe_dump({
        "camera": {"url": f"folder://{small_station.captures}?fps=0&pattern=*.png"},
        "reference": str(small_station.reference), "model": {"bundle": str(padim_bundle.bundle.root)},
        "plc": {"url": f"tcp://127.0.0.1:{port}", "protocol": "modbus-tcp-server"},
        "storage": {"database": str(tmp_path / "records.sqlite"), "images_dir": str(tmp_path / "rejects")},
        "observe": {"metrics_listen": None}, "security": bundle_key.security}))
    cfg = load_station(path)
    answers: dict[int, str] = {}
    errors: list[str] = []
    runner: Runner | None = None

    def plc_program():
        client = ModbusTcpClient("127.0.0.1", port=port, timeout=5, retries=1)
        try:
            assert client.connect()
            for part_id in range(1, 25):
                client.write_register(7, part_id, device_id=1)
                deadline = time.monotonic() + 30
                while True:
                    regs = client.read_holding_registers(0, count=9, device_id=1).registers
                    if regs[1] == 1 and regs[3] == part_id:
                        answers[part_id] = CODES[regs[0]]
                        assert decode_result(dict(enumerate(regs)), {}, cfg.plc.registers).part_id == part_id
                        break
                    if time.monotonic() > deadline:
                        errors.append(f"no result for {part_id}: {regs}")
                        return
                    time.sleep(0.005)
        except Exception as exc:  # reported by the test below
            errors.append(repr(exc))
        finally:
            client.close()
            runner.stop.set()

    plc = threading.Thread(target=plc_program, daemon=True)
    seen = []
    runner = Runner(cfg, on_part=seen.append, on_ready=plc.start)
    summary = runner.run()
    plc.join(30)
    assert not errors
    assert sorted(answers) == list(range(1, 25)) and summary.parts == 24
    truth = json.loads((small_station.captures / "truth.json").read_text())["files"]
    with RecordStore(tmp_path / "records.sqlite") as store:
        rows = list(store.query())
    assert [r.part_id for r in rows] == [str(i) for i in range(1, 25)]
    assert {int(r.part_id): r.verdict.value for r in rows} == answers  # what the PLC read is what was recorded
    accepted_defects = sum(truth[Path(o.source).name]["label"] == 1 and o.verdict.value == "accept" for o in seen)
    assert accepted_defects <= 1  # the bound of the RTU/ASCII daemon test on the same synthetic line
