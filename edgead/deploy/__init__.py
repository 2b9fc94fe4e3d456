"""``edgead deploy``: releases over SSH with an atomic switch, health check and rollback; fleets via ansible-core.

Host side: :mod:`~edgead.deploy.release` (build), :mod:`~edgead.deploy.ssh` (OpenSSH client),
:mod:`~edgead.deploy.remote` (one station), :mod:`~edgead.deploy.fleet` (waves). Station side, stdlib only and
shipped in every release's ``tools/``: :mod:`~edgead.deploy.station_steps`, :mod:`~edgead.deploy.service`,
:mod:`~edgead.deploy.health`, :mod:`~edgead.deploy.manifest`. See docs/deploy.md.
"""
from edgead.deploy.release import Release, ReleaseOptions, build_release, build_wheel
from edgead.deploy.remote import StationOptions, deploy, rollback, status
from edgead.deploy.service import ServiceKind
from edgead.deploy.ssh import HostKeyPolicy, SshTarget, parse_host

__all__ = ["HostKeyPolicy", "Release", "ReleaseOptions", "ServiceKind", "SshTarget", "StationOptions",
           "build_release", "build_wheel", "deploy", "parse_host", "rollback", "status"]
