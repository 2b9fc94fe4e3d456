"""``ui``: the operator page's keys in the station config (read by ``edgead ui``, ignored by the daemon)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgead.errors import ConfigError


@dataclass(frozen=True)
class UiConfig:
    """``ui``: the operator page (``edgead ui STATION.yaml``).

    Attributes:
        listen: HOST:PORT it binds to; loopback by default (a reverse proxy with TLS puts it on the line network).
        operators_file: who may label parts: one ``name:role:scrypt-hash`` line each, written by
            ``edgead ui-passwd``; without it the page is read-only.
        poll_ms: how often the page's event stream looks for new parts in the record store.
        recent_parts: how many of the last parts the page shows.
    """

    listen: str = "127.0.0.1:9819"
    operators_file: Path | None = None
    poll_ms: int = 250
    recent_parts: int = 12

    def __post_init__(self) -> None:
        from edgead.config import parse_listen

        parse_listen(self.listen, key="ui.listen")
        if not 20 <= self.poll_ms <= 5000:
            raise ConfigError(f"ui.poll_ms: {self.poll_ms} is outside 20..5000")
        if not 1 <= self.recent_parts <= 200:
            raise ConfigError(f"ui.recent_parts: {self.recent_parts} is outside 1..200")
