"""An asyncua client of a running daemon's OPC UA server (Basic256Sha256, user names), and the config that admits
it: a client certificate and a users file with an operator and a viewer."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

import yaml

from edgead.opcua.certs import ensure_certificate
from edgead.opcua.config import hash_password

USERS = {"op": ("operator", "op-pass"), "view": ("viewer", "view-pass")}


def opcua_section(tmp_path: Path, port: int) -> dict:
    """The station's ``opcua`` section on 127.0.0.1:``port``, with the test client's certificate and users under
    ``tmp_path/pki``."""
    pki = tmp_path / "pki"
    ensure_certificate(pki, "urn:edgead:test-client", ["127.0.0.1"], name="client")
    users = {n: {"role": r, "password": hash_password(p, iterations=1000)} for n, (r, p) in USERS.items()}
    (pki / "users.yaml").write_text(yaml.safe_dump(users))
    return {"listen": f"127.0.0.1:{port}", "users_file": str(pki / "users.yaml"), "pki_dir": str(pki / "server")}


class OpcUaStation:
    """The daemon's OPC UA side as a client sees it."""

    def __init__(self, endpoint: str, pki: Path, station: str):
        self.endpoint, self.pki, self.station = endpoint, pki, station
        self.idx = 0

    async def connect(self, user: str | None = "op"):
        import asyncua

        client = asyncua.Client(self.endpoint, timeout=10)
        client.application_uri = "urn:edgead:test-client"
        await client.set_security_string(f"Basic256Sha256,SignAndEncrypt,{self.pki / 'client-cert.der'},"
                                         f"{self.pki / 'client-key.pem'}")
        if user:
            client.set_user(user)
            client.set_password(USERS[user][1])
        await client.connect()
        self.idx = await client.get_namespace_index(f"urn:edgead:{self.station}")
        return client

    def node(self, client, path: str):
        from asyncua import ua

        return client.get_node(ua.NodeId(f"VisionSystem.{path}" if path else "VisionSystem", self.idx))

    async def call(self, client, method: str, argument: str):
        from asyncua import ua

        return await self.node(client, "").call_method(ua.NodeId(f"VisionSystem.{method}", self.idx), argument)

    async def result(self, client, part_id: str, timeout_s: float = 60) -> dict:
        """The last result once it is part ``part_id``'s (ResultId is written last: a whole result)."""
        last = "ResultManagement.LastResult."
        deadline = time.monotonic() + timeout_s
        while True:
            if await self.node(client, last + "PartId").read_value() == part_id:
                await asyncio.sleep(0.2)  # the rest of the result lands with it; ResultId last
                return {name: await self.node(client, last + name).read_value()
                        for name in ("ResultId", "PartId", "Verdict", "Recipe", "LotId")}
            assert time.monotonic() < deadline, f"no result for part {part_id}"
            await asyncio.sleep(0.05)
