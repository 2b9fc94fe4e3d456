"""Modbus peers for the integration tests (imported by name: tests/conftest.py puts this folder on sys.path)."""
from __future__ import annotations

import asyncio
import socket
import threading
import time


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for peers that cannot bind port 0 and report it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def burst_with_ack(link, plc: "PymodbusPlc", n: int = 50) -> list:
    """A PLC program that writes part ids 1..n, each after the ack of the previous one, against ``link``
    answering every trigger with accept; returns the part ids the station saw, in order."""
    from edgead.plc import PartResult
    from edgead.verdict import Verdict

    def plc_program():
        for part_id in range(1, n + 1):
            while plc.regs[8] != part_id - 1:
                time.sleep(0.001)
            plc.regs[7] = part_id

    program = threading.Thread(target=plc_program, daemon=True)
    program.start()
    seen = []
    for seq in range(1, n + 1):
        trigger = link.wait_trigger(3000)
        seen.append(trigger.part_id)
        link.send_result(PartResult(trigger.part_id, seq, Verdict.ACCEPT, 0.1))
    program.join(5)
    return seen


def wait_listening(port: int, timeout_s: float = 10) -> None:
    """Wait until something accepts connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class PymodbusPlc:
    """A pymodbus server in a thread (RTU on a serial port, or TCP on 127.0.0.1:``tcp_port``) playing the PLC.

    ``regs``/``coils`` are its live memory (coils bit-packed), ``results`` the (part id echo, counter) pairs seen
    each time ResultValid was set.
    """

    def __init__(self, port: str | None = None, tcp_port: int | None = None):
        from pymodbus import FramerType
        from pymodbus.server import ModbusSerialServer, ModbusTcpServer
        from pymodbus.simulator import DataType, SimData, SimDevice

        self.live: dict[str, list[int]] = {}
        self.results: list[tuple[int, int]] = []  # (part id echo, counter) each time ResultValid is set
        self.requests = 0
        bits = [SimData(0, count=16, values=False, datatype=DataType.BITS)]
        regs = [SimData(0, count=32, values=0, datatype=DataType.REGISTERS)]
        device = SimDevice(1, simdata=(bits, list(bits), regs, list(regs)), action=self._action)
        self.loop = asyncio.new_event_loop()
        started = threading.Event()

        async def main():
            if tcp_port is None:
                self.server = ModbusSerialServer(device, framer=FramerType.RTU, port=port, baudrate=19200,
                                                 parity="N")
            else:
                self.server = ModbusTcpServer(device, address=("127.0.0.1", tcp_port))
            started.set()
            await self.server.serve_forever()

        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(main(),), daemon=True)
        self.thread.start()
        assert started.wait(10)
        if tcp_port is None:
            time.sleep(0.2)  # serve_forever opens the port
        else:
            wait_listening(tcp_port)

    async def _action(self, fc, start, address, count, registers, values):
        self.requests += 1
        self.live.setdefault("c" if fc in (1, 5, 15) else "h", registers)
        if fc in (6, 16) and values and address <= 1 < address + count and values[1 - address] == 1:
            self.results.append((registers[3], registers[2]))
        return None

    @property
    def regs(self) -> list[int]:
        return self.live["h"]

    def coil(self, address: int) -> int:
        return (self.live["c"][address // 16] >> (address % 16)) & 1

    def close(self):
        """Stop the server (idempotent): its connections drop, as when a PLC reboots."""
        if self.loop.is_closed():
            return
        asyncio.run_coroutine_threadsafe(self.server.shutdown(), self.loop).result(10)
        self.thread.join(5)
        self.loop.close()
