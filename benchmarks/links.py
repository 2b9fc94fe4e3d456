"""The cost of each plant link: PLC round trip per link against the bare engine, in one run (``station.py --links``).

Each link runs the same station (``edgead run`` as its own process, same bundle, captures and reference) with its
own peer in this process, one part at a time (a trigger after each answer):

- ``ascii``: ASCII telegrams on a socat pty pair (``T<id>`` in, ``OK <id>`` out);
- ``modbus-rtu``: the station as Modbus RTU server on a pty pair; the peer is a master built on edgead's own
  codec (no pymodbus overhead): FC06 to the trigger register, then FC03 of registers 0..8 every millisecond
  until ResultValid holds its id (a PLC scanning at 1 ms);
- ``modbus-tcp``: the same master over Modbus TCP on 127.0.0.1 (MBAP framing);
- ``opcua+mqtt``: an asyncua client (Basic256Sha256 sign and encrypt, user and password) calls ``Trigger`` and
  reads ``LastResult.PartId`` every millisecond until it names the part, while ``python -m edgead.north`` publishes
  every record to a local ``mosquitto`` (QoS 1). The PLC link (Modbus TCP) is idle.

The bare engine (``engine.infer`` on one capture, in this process, the daemon idle) is measured between blocks of
50 parts of each link (25 inferences per block), so each link's row compares its p50/p99 round trip with the bare
p50/p99 of the same minutes: on a shared machine the load changes from one link to the next.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

LINKS = ("ascii", "modbus-rtu", "modbus-tcp", "opcua+mqtt")
POLL_S = 0.001
BLOCK, BARE_RUNS = 50, 25
TRIGGER, RESULT_VALID, PART_ID = 7, 1, 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    """``edgead run CONFIG`` in its own process, until :meth:`stop` (SIGTERM)."""

    def __init__(self, config: Path, tmp: Path):
        from common import start_daemon

        self.proc, self.sock, self.log = start_daemon(config, tmp)

    def stop(self) -> None:
        from common import stop_daemon

        stop_daemon(self.proc)
        self.sock.close()


class RegisterMaster:
    """A Modbus master on edgead's codec: ``transact(request) -> response`` over a pty (RTU) or a socket (TCP)."""

    def __init__(self, port=None, sock: socket.socket | None = None):
        self.port, self.sock, self.tid = port, sock, 0

    def transact(self, req):
        from edgead.plc import mbap
        from edgead.plc import modbus_rtu as rtu

        buf = b""
        if self.sock is not None:
            self.tid = (self.tid + 1) & 0xFFFF
            self.sock.sendall(mbap.encode_request(req, self.tid))
            while True:
                buf += self.sock.recv(512)
                used, resp = mbap.decode_response(buf, req, self.tid)
                if resp is not None:
                    return resp
        self.port.write(rtu.encode_request(req))
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            buf += self.port.read(64)
            used, resp = rtu.decode_response(buf, req)
            if resp is not None:
                return resp
        raise TimeoutError("no Modbus reply")

    def part(self, part_id: int) -> None:
        from edgead.plc import modbus_rtu as rtu

        self.transact(rtu.write_register(1, TRIGGER, part_id))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            regs = self.transact(rtu.read_holding_registers(1, 0, 9)).values
            if regs[RESULT_VALID] == 1 and regs[PART_ID] == part_id:
                return
            time.sleep(POLL_S)
        raise TimeoutError(f"no result for part {part_id}")


class Sampler:
    """One link's round trips (ms) after the warm-up, with the bare engine sampled after every block of parts."""

    def __init__(self, bare, warmup: int, parts: int):
        self.bare, self.warmup, self.parts = bare, warmup, parts
        self.trips: list[float] = []
        self.bare_s: list[float] = []

    @property
    def total(self) -> int:
        return self.warmup + self.parts

    def add(self, i: int, ms: float) -> None:
        if i > self.warmup:
            self.trips.append(ms)
            if (i - self.warmup) % BLOCK == 0 or (i == self.total and not self.bare_s):  # a short run: once
                self.bare_s += self.bare(BARE_RUNS)


def _times(run_part, sampler: Sampler) -> Sampler:
    for i in range(1, sampler.total + 1):
        t = time.perf_counter()
        run_part(i)
        sampler.add(i, (time.perf_counter() - t) * 1e3)
    return sampler


def _ascii(base: dict, tmp: Path, sampler: Sampler) -> Sampler:
    import serial

    from edgead.demo.plc_peer import PtyPair

    with PtyPair(tmp) as pty:
        daemon = Daemon(_write(tmp, "link-ascii", base, plc={"url": pty.station, "protocol": "ascii"}), tmp)
        try:
            with serial.Serial(pty.plc, 19200, timeout=0.002) as ser:
                buf = [b""]

                def part(i: int) -> None:
                    ser.write(b"T%d\r\n" % i)
                    deadline = time.monotonic() + 10
                    while time.monotonic() < deadline:
                        buf[0] += ser.read(64)
                        while b"\n" in buf[0]:
                            line, buf[0] = buf[0].split(b"\n", 1)
                            if line.strip().partition(b" ")[2] == b"%d" % i:
                                return
                    raise TimeoutError(f"no answer for part {i}")

                return _times(part, sampler)
        finally:
            daemon.stop()


def _rtu(base: dict, tmp: Path, sampler: Sampler) -> Sampler:
    import serial

    from edgead.demo.plc_peer import PtyPair

    with PtyPair(tmp) as pty:
        daemon = Daemon(_write(tmp, "link-rtu", base, plc={"url": pty.station, "protocol": "modbus-server"}), tmp)
        try:
            with serial.Serial(pty.plc, 19200, timeout=0.002) as ser:
                return _times(RegisterMaster(port=ser).part, sampler)
        finally:
            daemon.stop()


def _tcp(base: dict, tmp: Path, sampler: Sampler) -> Sampler:
    port = free_port()
    daemon = Daemon(_write(tmp, "link-tcp", base, plc={"url": f"tcp://127.0.0.1:{port}",
                                                        "protocol": "modbus-tcp-server"}), tmp)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return _times(RegisterMaster(sock=sock).part, sampler)
    finally:
        daemon.stop()


def _opcua_mqtt(base: dict, tmp: Path, sampler: Sampler) -> Sampler:
    from asyncua import Client, ua

    from edgead.opcua.certs import ensure_certificate
    from edgead.opcua.config import hash_password

    pki = tmp / "pki"
    ensure_certificate(pki, "urn:edgead:bench-client", ["127.0.0.1"], name="client")
    (pki / "users.yaml").write_text(yaml.safe_dump({"op": {"role": "operator",
                                                           "password": hash_password("op", iterations=1000)}}))
    broker_port, opc_port = free_port(), free_port()
    conf = tmp / "mosquitto.conf"
    conf.write_text(f"listener {broker_port} 127.0.0.1\nallow_anonymous true\n"
                    + ("user root\n" if os.geteuid() == 0 else ""))
    broker = subprocess.Popen([shutil.which("mosquitto"), "-c", str(conf)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    config = _write(tmp, "link-opcua", base, name="bench",
                    plc={"url": f"tcp://127.0.0.1:{free_port()}", "protocol": "modbus-tcp-server"},
                    opcua={"listen": f"127.0.0.1:{opc_port}", "users_file": str(pki / "users.yaml"),
                           "pki_dir": str(pki / "server")},
                    mqtt={"url": f"mqtt://127.0.0.1:{broker_port}", "poll_ms": 20})
    north = subprocess.Popen([sys.executable, "-m", "edgead.north", str(config)], stdout=subprocess.DEVNULL,
                             stderr=open(tmp / "north.log", "w"))
    daemon = Daemon(config, tmp)

    async def main() -> Sampler:
        client = Client(f"opc.tcp://127.0.0.1:{opc_port}/edgead", timeout=10)
        client.application_uri = "urn:edgead:bench-client"
        await client.set_security_string(f"Basic256Sha256,SignAndEncrypt,{pki / 'client-cert.der'},"
                                         f"{pki / 'client-key.pem'}")
        client.set_user("op")
        client.set_password("op")
        await client.connect()
        try:
            idx = await client.get_namespace_index("urn:edgead:bench")
            root = client.get_node(ua.NodeId("VisionSystem", idx))
            method = ua.NodeId("VisionSystem.Trigger", idx)
            part_id = client.get_node(ua.NodeId("VisionSystem.ResultManagement.LastResult.PartId", idx))
            for i in range(1, sampler.total + 1):
                t = time.perf_counter()
                await root.call_method(method, f"B{i}")
                deadline = time.monotonic() + 10
                while await part_id.read_value() != f"B{i}":
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"no OPC UA result for part B{i}")
                    await asyncio.sleep(POLL_S)
                sampler.add(i, (time.perf_counter() - t) * 1e3)
            return sampler
        finally:
            await client.disconnect()

    try:
        return asyncio.run(main())
    finally:
        daemon.stop()
        for proc in (north, broker):
            proc.terminate()
            proc.wait(30)


def _write(tmp: Path, stem: str, base: dict, **sections) -> Path:
    path = tmp / f"{stem}.yaml"
    data = {**base, **sections, "storage": {**base["storage"], "database": str(tmp / f"{stem}.sqlite")}}
    path.write_text(yaml.safe_dump(data))
    return path


STEMS = {"ascii": "link-ascii", "modbus-rtu": "link-rtu", "modbus-tcp": "link-tcp", "opcua+mqtt": "link-opcua"}


def daemon_totals(db: Path, warmup: int) -> list[float]:
    """The daemon's own trigger-in to result-out (``total_ms``) of the parts after the warm-up, in order."""
    import sqlite3

    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT total_ms FROM parts WHERE seq >= ? ORDER BY id", (warmup,))]


def measure_links(base: dict, tmp: Path, warmup: int, parts: int, bare, links=LINKS) -> dict:
    """Per link: the peer's round trips (ms), the daemon's own trigger-to-answer times of the same parts (ms), and
    the bare engine between blocks of parts (``bare(n)`` -> n inference times in s). A link whose peer is missing
    here is left out."""
    runs = {"ascii": _ascii, "modbus-rtu": _rtu, "modbus-tcp": _tcp, "opcua+mqtt": _opcua_mqtt}
    out = {}
    for link in links:
        if link == "opcua+mqtt" and (shutil.which("mosquitto") is None or _missing("asyncua", "paho.mqtt")):
            print(f"links: {link} skipped (mosquitto, asyncua or paho-mqtt missing)", file=sys.stderr)
            continue
        sampler = runs[link](base, tmp, Sampler(bare, warmup, parts))
        out[link] = {"trips": sampler.trips, "bare_s": sampler.bare_s,
                     "daemon": daemon_totals(tmp / f"{STEMS[link]}.sqlite", warmup)}
    return out


def _missing(*modules: str) -> bool:
    import importlib.util

    return any(importlib.util.find_spec(m.split(".")[0]) is None for m in modules)


def link_rows(samples: dict) -> tuple[dict, list[str]]:
    """Per link: the round trip's p50/p99, the link's own share (round trip minus the daemon's trigger-to-answer
    time of the same part), the bare engine of the same minutes and the ratios: the results and the docs table."""
    from common import stats_ms

    res = {}
    lines = ["| link (peer) | round trip p50 / p99 (ms) | daemon trigger-to-answer p50 / p99 (ms) | the link's share "
             "p50 / p99 (ms) | bare engine p50 / p99, same minutes (ms) | round trip / bare, p50 / p99 | parts |",
             "|---|---|---|---|---|---|---|"]
    for link, got in samples.items():
        bare = stats_ms(got["bare_s"])
        trips = np.asarray(got["trips"], np.float64)
        n = min(len(trips), len(got["daemon"]))
        daemon = np.asarray([np.nan if t is None else t for t in got["daemon"]], np.float64)
        share = trips[:n] - daemon[:n]
        d50, d99 = float(np.nanpercentile(daemon, 50)), float(np.nanpercentile(daemon, 99))
        p50, p99 = float(np.percentile(trips, 50)), float(np.percentile(trips, 99))
        s50, s99 = float(np.nanpercentile(share, 50)), float(np.nanpercentile(share, 99))
        res[link] = {"p50_ms": p50, "p99_ms": p99, "n": len(trips), "daemon_p50_ms": d50, "daemon_p99_ms": d99,
                     "link_share_p50_ms": s50,
                     "link_share_p99_ms": s99, "bare_infer_ms": bare, "ratio_p50": p50 / bare["median_ms"],
                     "ratio_p99": p99 / bare["p99_ms"]}
        lines.append(f"| {link} | {p50:.1f} / {p99:.1f} | {d50:.1f} / {d99:.1f} | {s50:.1f} / {s99:.1f} | "
                     f"{bare['median_ms']:.1f} / "
                     f"{bare['p99_ms']:.1f} | {p50 / bare['median_ms']:.2f}x / {p99 / bare['p99_ms']:.2f}x | "
                     f"{len(trips)} |")
    return res, lines
