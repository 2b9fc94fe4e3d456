"""The pyserial I/O shell: open any pyserial URL, read with a deadline, write, set lines, close.

Every failure becomes :class:`~edgead.errors.PlcError` naming the port and what to check. Reads never block
longer than the timeout they are given.
"""
from __future__ import annotations

import os
import time

import serial

from edgead.errors import PlcError
from edgead.plc.config import Line, SerialConfig, split_url

_PARITY = {"N": serial.PARITY_NONE, "E": serial.PARITY_EVEN, "O": serial.PARITY_ODD, "M": serial.PARITY_MARK,
           "S": serial.PARITY_SPACE}
try:  # a vanished pty/USB port raises termios.error from tcflush/tcsetattr, which is no OSError
    import termios
    from termios import error as _TermiosError
except ImportError:  # pragma: no cover - not POSIX
    termios = None
    _TermiosError = OSError
_IO_ERRORS = (serial.SerialException, OSError, _TermiosError, TypeError, AttributeError)
_HINT = "check the cable/USB adapter, that the device exists, and that the user is in the 'dialout' group"


class SerialPort:
    """A serial port opened from a pyserial URL (``/dev/ttyUSB0``, ``loop://``, ``spy://``, ``socket://``).

    Args:
        url: the port URL; ``baud``/``parity``/``stopbits``/``bytesize`` query parameters override ``settings``.
        settings: line settings from the config.

    Raises:
        PlcError: if the port cannot be opened.

    Example:
        >>> with SerialPort("loop://", SerialConfig()) as port:
        ...     port.write(b"hi")
        ...     port.read_some(16, timeout_ms=100)
        b'hi'
    """

    def __init__(self, url: str, settings: SerialConfig):
        self.url = url
        clean, self.settings = split_url(url, settings)
        try:
            port = serial.serial_for_url(clean, do_not_open=True)
            port.baudrate = self.settings.baudrate
            port.parity = _PARITY[self.settings.parity]
            port.stopbits = self.settings.stopbits
            port.bytesize = self.settings.bytesize
            port.timeout = 0
            port.write_timeout = 1.0
            port.rts = False  # modem lines low from the moment the port opens: no spurious pass pulse
            port.dtr = False
            port.open()
        except _IO_ERRORS + (ValueError,) as exc:
            raise PlcError(f"PLC port {url!r} cannot be opened: {exc}", hint=_HINT) from exc
        self._port = port
        self._woken = False
        self._posix = termios is not None and type(port) is serial.Serial and hasattr(port, "fd")  # see write()

    @property
    def wakeable(self) -> bool:
        """Whether :meth:`wake` can end a read in progress (pyserial's POSIX ports and ``loop://`` can, ``socket://``
        cannot)."""
        return hasattr(self._port, "cancel_read")

    def wake(self) -> None:
        """Make a :meth:`read_some` in progress, or the next one, return ``b""`` now (any thread; pyserial's
        ``cancel_read``: a byte on the pipe its read also waits on)."""
        self._woken = True
        cancel = getattr(self._port, "cancel_read", None)
        if cancel is not None:
            try:
                cancel()
            except (OSError, TypeError):  # the port closed meanwhile: nothing waits on it
                pass

    def take_wake(self) -> bool:
        """Whether :meth:`wake` was called since the last call (and forget it)."""
        woken, self._woken = self._woken, False
        return woken

    @property
    def is_open(self) -> bool:
        """True until :meth:`close`."""
        return self._port is not None and self._port.is_open

    def _fail(self, what: str, exc: BaseException) -> PlcError:
        return PlcError(f"PLC port {self.url!r}: {what} failed ({exc}); the port vanished or is in use",
                        hint=_HINT)

    def read_some(self, max_bytes: int, timeout_ms: float) -> bytes:
        """Up to ``max_bytes`` bytes: whatever is waiting, else wait at most ``timeout_ms`` for the first ones.

        Returns:
            The bytes read (``b""`` on timeout).

        Raises:
            PlcError: if the port vanished.
        """
        port = self._require()
        deadline = time.monotonic() + max(0.0, timeout_ms) / 1000
        try:
            while True:
                waiting = port.in_waiting
                if waiting:
                    return port.read(min(waiting, max_bytes))
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._woken:
                    return b""
                port.timeout = remaining
                data = port.read(1)
                if data:  # and the rest of what arrived with it: a trigger's line in one read, not two
                    rest = port.in_waiting
                    return data + port.read(min(rest, max_bytes - 1)) if rest and max_bytes > 1 else data
        except _IO_ERRORS as exc:
            raise self._fail("read", exc) from exc

    def write(self, data: bytes) -> None:
        """Write all of ``data`` and wait until it is sent.

        Raises:
            PlcError: if the port vanished or the write timed out.
        """
        port = self._require()
        try:
            if self._posix:  # one write(2) and tcdrain(3): what pyserial does, less its select(2) after every write
                try:
                    sent = os.write(port.fd, data)
                except BlockingIOError:  # the output buffer is full: pyserial's write waits (write_timeout)
                    sent = 0
                if sent < len(data):
                    port.write(data[sent:])
                termios.tcdrain(port.fd)
            else:
                port.write(data)
                port.flush()
        except _IO_ERRORS as exc:
            raise self._fail("write", exc) from exc

    def set_line(self, line: Line, level: bool) -> None:
        """Drive a modem-control output (RTS or DTR).

        Raises:
            PlcError: if the port does not support it or vanished.
        """
        port = self._require()
        try:
            setattr(port, line.value, level)
        except _IO_ERRORS as exc:
            raise self._fail(f"setting {line.value.upper()}", exc) from exc

    def get_input(self, name: str) -> bool:
        """Read a modem-status input (``cts``, ``dsr``, ``ri``, ``cd``)."""
        try:
            return bool(getattr(self._require(), name))
        except _IO_ERRORS as exc:
            raise self._fail(f"reading {name.upper()}", exc) from exc

    def reset_input(self) -> None:
        """Drop bytes received but not read yet."""
        try:
            self._require().reset_input_buffer()
        except _IO_ERRORS as exc:
            raise self._fail("flushing input", exc) from exc

    def _require(self) -> serial.SerialBase:
        if self._port is None:
            raise PlcError(f"PLC port {self.url!r} is closed", hint="open the link again")
        return self._port

    def close(self) -> None:
        """Close the port (idempotent, never raises)."""
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except _IO_ERRORS:
                pass

    def __enter__(self) -> "SerialPort":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
