"""What loading the OPC 40100 Machine Vision NodeSet adds to the OPC UA server's start (issue 19).

Starts :class:`edgead.opcua.server.OpcUaServer` on 127.0.0.1 (self-signed certificate made once, before the runs)
``--runs`` times with the companion model and as many times without it (``Companion.build`` replaced by a no-op),
alternating, and prints the median and each start's seconds (until the endpoint listens), and their ratio.

Usage:
    python benchmarks/opcua_start.py [--runs 6]
"""
from __future__ import annotations

import argparse
import socket
import statistics
import tempfile
import time
from pathlib import Path

from edgead.opcua import companion
from edgead.opcua.config import OpcUaConfig
from edgead.opcua.server import OpcUaServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _no_companion(self, *args, **kwargs) -> None:
    return None


def start_seconds(pki: Path) -> float:
    cfg = OpcUaConfig(listen=f"127.0.0.1:{free_port()}", pki_dir=pki)
    t = time.perf_counter()
    server = OpcUaServer(cfg, "bench").start()
    seconds = time.perf_counter() - t
    server.stop()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=6)
    args = parser.parse_args()
    build = companion.Companion.build
    pki = Path(tempfile.mkdtemp()) / "pki"
    OpcUaServer(OpcUaConfig(listen="127.0.0.1:0", pki_dir=pki), "bench")  # the certificate, outside the timings
    times: dict[str, list[float]] = {"with NodeSet": [], "without": []}
    for _ in range(args.runs):
        for mode in times:
            companion.Companion.build = build if mode == "with NodeSet" else _no_companion
            times[mode].append(start_seconds(pki))
    companion.Companion.build = build
    for mode, values in times.items():
        print(f"{mode:13s} median {statistics.median(values):.2f} s  ({', '.join(f'{v:.2f}' for v in values)})")
    ratio = statistics.median(times["with NodeSet"]) / statistics.median(times["without"])
    print(f"ratio {ratio:.2f}; load average {open('/proc/loadavg').read().split()[0]}")


if __name__ == "__main__":
    main()
