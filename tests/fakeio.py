"""An in-memory PacketIO: the responder's sockets in tests, with no network and no privilege."""

from __future__ import annotations

from ironlb.speaker.fast.l2 import bpf
from ironlb.speaker.fast.l2.io import FrameHandler


class FakePacketIO:
    """Records sent frames, filters and multicast joins; lets a test inject received frames."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.joined: set[bytes] = set()
        self.filter: list[bpf.Instruction] | None = None
        self.refuse_filters = False  # as the kernel does a program over its memory limit
        self.closed = False
        self._on_frame: FrameHandler | None = None

    def start(self, on_frame: FrameHandler) -> None:
        """Remember the frame handler."""
        self._on_frame = on_frame

    def inject(self, frame: bytes) -> None:
        """Deliver a frame as if received."""
        assert self._on_frame is not None
        self._on_frame(frame)

    def send(self, frame: bytes) -> None:
        """Record a frame."""
        self.sent.append(frame)

    def set_filter(self, program: list[bpf.Instruction]) -> bool:
        """Record the filter (None, as for a pass-all one, if refusing them)."""
        self.filter = None if self.refuse_filters else program
        return not self.refuse_filters

    def join(self, mac: bytes) -> None:
        """Record a multicast join."""
        self.joined.add(mac)

    def leave(self, mac: bytes) -> None:
        """Record a multicast leave."""
        self.joined.discard(mac)

    def close(self) -> None:
        """Mark closed."""
        self.closed = True
