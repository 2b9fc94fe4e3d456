"""Typed errors. Each carries what went wrong and what to do; exit codes are mapped only in the CLI.

Example:
    >>> raise DataError("dataset 'parts/': train/good is empty", hint="put at least 8 good images there")
"""
from __future__ import annotations

import errno
import importlib
import os
from contextlib import contextmanager
from enum import IntEnum
from types import ModuleType
from typing import Iterator


class ExitStatus(IntEnum):
    """Process exit codes of the ``edgead`` CLI (one place, used only by ``edgead.cli``)."""

    OK = 0
    INTERNAL = 1  # a bug or an unexpected failure: report it
    USAGE = 2  # bad command line (argparse uses 2 as well)
    BAD_INPUT = 3  # config, dataset, image, bundle, calibration set
    ENGINE = 4  # engine/backend cannot load or run
    DEVICE = 5  # camera, PLC link, serial port
    GATE = 6  # the accuracy gate refused a conversion
    DEPLOY = 7  # deploy failed (and was rolled back when possible)
    RECORDS = 8  # the station's record store refused a write (disk full, read-only, I/O error)
    FAULTS = 9  # the station answered runtime.max_consecutive_faults parts in a row with a fault
    INTERRUPTED = 130


class EdgeadError(Exception):
    """Base of all edgead errors: ``message`` says what is wrong, ``hint`` what to do about it."""

    exit_status = ExitStatus.INTERNAL

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(EdgeadError):
    """A configuration file or option is invalid (names the key)."""

    exit_status = ExitStatus.BAD_INPUT


class DataError(EdgeadError):
    """A dataset is missing, empty or malformed."""

    exit_status = ExitStatus.BAD_INPUT


class ImageError(DataError):
    """An image or mask cannot be read or has the wrong size."""


class BundleError(EdgeadError):
    """A model bundle is missing, partial, tampered with, or of an unknown format version."""

    exit_status = ExitStatus.BAD_INPUT


class CalibrationError(EdgeadError):
    """A calibration set (INT8 or thresholds) is too small or wrong."""

    exit_status = ExitStatus.BAD_INPUT


class EngineError(EdgeadError):
    """An inference engine cannot be built, loaded or run (e.g. built for another GPU)."""

    exit_status = ExitStatus.ENGINE


class GateError(EdgeadError):
    """A converted artifact failed the accuracy gate."""

    exit_status = ExitStatus.GATE


class SelfTestError(GateError):
    """A release's self-test on the station: a known-good sample was not accepted or a known-defective one was not
    rejected (names the samples)."""


class CameraError(EdgeadError):
    """A camera cannot be opened, or delivered no frame in time."""

    exit_status = ExitStatus.DEVICE


class FrameError(CameraError):
    """The camera delivered a frame that cannot be used (unreadable or vanished file, corrupt data, unsupported
    depth, larger than the configured maximum). Unlike a plain :class:`CameraError` there *is* a part: it gets a
    fault verdict and a record, and the source moves on to its next frame."""


class AlignmentError(EdgeadError):
    """A frame could not be aligned to the reference (the part gets the ``no-read`` verdict)."""

    exit_status = ExitStatus.BAD_INPUT


class PlcError(EdgeadError):
    """The PLC link failed: port vanished, no reply, malformed or corrupt frame."""

    exit_status = ExitStatus.DEVICE


class RecordError(EdgeadError):
    """The part-record store refused a write, or holds too many unwritten records (the station stops)."""

    exit_status = ExitStatus.RECORDS


class FaultLimitError(EdgeadError):
    """The station answered ``runtime.max_consecutive_faults`` parts in a row with a fault and stops."""

    exit_status = ExitStatus.FAULTS


class OutputError(EdgeadError):
    """An output cannot be written where asked: it exists (nothing is overwritten without ``--force``), it is a
    directory where a file is needed, or its disk is full."""

    exit_status = ExitStatus.BAD_INPUT


class DeployError(EdgeadError):
    """A deployment step failed."""

    exit_status = ExitStatus.DEPLOY


SHOWN_PATH_CHARS = 160
"""Paths longer than this are shortened in messages (an overlong path would otherwise fill the terminal)."""

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def short_path(path: str | os.PathLike) -> str:
    """``path`` for a message: as is, or its head and tail with the length when it is longer than
    :data:`SHOWN_PATH_CHARS`.

    Example:
        >>> short_path("/x/" + "a/" * 200)[:12]
        '/x/a/a/a/a/a'
    """
    text = os.fspath(path)
    if len(text) <= SHOWN_PATH_CHARS:
        return text
    return f"{text[:60]}...{text[-60:]} ({len(text)} characters)"


@contextmanager
def writing(path: str | os.PathLike, what: str) -> Iterator[None]:
    """Turn a full disk (ENOSPC, EDQUOT) while writing ``what`` at ``path`` into an :class:`OutputError` that names
    both; other errors pass through.

    Example:
        >>> with writing("/tmp/b", "bundle"):                          # doctest: +SKIP
        ...     write_files()
    """
    try:
        yield
    except OSError as exc:
        if exc.errno not in DISK_FULL:
            raise
        where = os.path.dirname(os.path.abspath(os.fspath(path))) or "/"
        raise OutputError(f"{what} {short_path(path)}: no space left on the device ({exc.strerror})",
                          hint=f"free space on the disk holding {where} (df -h {where}), or write elsewhere"
                          ) from exc


class MissingExtraError(EdgeadError):
    """An optional dependency is not installed; the hint names the extra that provides it (``edgead.extras``)."""

    exit_status = ExitStatus.BAD_INPUT

    def __init__(self, feature: str, module: str, cause: BaseException | None = None):
        from edgead.extras import extra_for, install_hint

        why = f" ({cause})" if cause else ""
        self.extra = extra_for(module)
        super().__init__(f"{feature} needs the Python module {module!r}, which is not installed{why}",
                         hint=install_hint(self.extra))


def lazy_import(module: str, *, feature: str) -> ModuleType:
    """Import an optional dependency, or raise :class:`MissingExtraError` naming the extra that installs it.

    Args:
        module: dotted module name, e.g. ``"tensorrt"``; it must have a row in ``edgead.extras.MODULES``.
        feature: what needs it, for the message, e.g. ``"the TensorRT backend"``.

    Returns:
        The imported module.

    Raises:
        MissingExtraError: if the import fails.

    Example:
        >>> onnx = lazy_import("onnx", feature="graph rewrites")   # doctest: +SKIP
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(feature, module, exc) from exc
