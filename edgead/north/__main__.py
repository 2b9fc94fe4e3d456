"""``python -m edgead.north STATION.yaml``: publish the station's records to its ``mqtt`` broker until SIGTERM.

Exit codes as the CLI's: 0 on SIGTERM/SIGINT, 3 for a bad config (or ``mqtt.url`` not set), 1 never on purpose.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from edgead.errors import ConfigError, EdgeadError


def main(argv: list[str] | None = None) -> int:
    """Run the publisher of STATION.yaml's ``mqtt`` section; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m edgead.north", description=__doc__.splitlines()[0])
    parser.add_argument("config", help="the station config (its mqtt, name and storage.database keys)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from edgead.daemon.config import load_station
    from edgead.north.mqtt import MqttPublisher

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        cfg = load_station(args.config)
        if not cfg.mqtt.enabled:
            raise ConfigError("mqtt.url: not set, nothing to publish", hint="set mqtt.url: mqtt://HOST:1883")
        with MqttPublisher(cfg.mqtt, cfg.name, cfg.storage.database):
            stop.wait()
    except EdgeadError as exc:
        print(f"edgead north: {exc}", file=sys.stderr)
        return int(exc.exit_status)
    return 0


if __name__ == "__main__":
    sys.exit(main())
