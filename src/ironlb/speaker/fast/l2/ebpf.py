"""Just enough eBPF to run one program in the kernel: an assembler with labels, maps, load, tcx links.

The bpf(2) syscall through ctypes: no compiler, no libbpf and no object files, so the image needs nothing
new and the fast plane loads no extra module. Every descriptor made here is close-on-exec (the kernel's
rule for BPF objects), and the ones that matter are owned by a small object with a close().
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass

_SYS_BPF = {"x86_64": 321, "aarch64": 280}.get(os.uname().machine)
_libc = ctypes.CDLL(None, use_errno=True)
_ATTR_SIZE = 144  # large enough for every command used here; the kernel checks the tail is zero

# bpf(2) commands, map and program types, attach types (include/uapi/linux/bpf.h)
MAP_CREATE, MAP_LOOKUP_ELEM, MAP_UPDATE_ELEM, MAP_DELETE_ELEM, PROG_LOAD, LINK_CREATE = 0, 1, 2, 3, 5, 28
MAP_HASH, MAP_ARRAY = 1, 2
F_NO_PREALLOC = 1  # a hash map takes memory per entry as it is filled, not its whole size up front
PROG_SCHED_CLS = 3
TCX_INGRESS = 46
TCX_NEXT, TCX_PASS, TCX_DROP = -1, 0, 2
HELPER_MAP_LOOKUP, HELPER_KTIME_NS, HELPER_REDIRECT = 1, 5, 23
# __sk_buff fields a tc program reads
SKB_PKT_TYPE = 4
PACKET_MULTICAST = 2  # pkt_type: 0 to this host, 1 broadcast, 2 multicast; past it, another host's or our own
SKB_VLAN_PRESENT, SKB_IFINDEX, SKB_DATA, SKB_DATA_END = 20, 40, 76, 80

# Registers: r0 return value, r1-r5 arguments (clobbered by calls), r6-r9 kept across calls, r10 the frame.
R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, FP = range(11)
_SIZE = {1: 0x10, 2: 0x08, 4: 0x00, 8: 0x18}  # BPF_B, BPF_H, BPF_W, BPF_DW


class BpfError(OSError):
    """A bpf(2) call failed; `log` holds the verifier's words for a refused program."""

    def __init__(self, err: int, what: str, log: str = "") -> None:
        super().__init__(err, f"{what}: {os.strerror(err)}" + (f"\n{log}" if log else ""))
        self.log = log


def _bpf(cmd: int, attr: ctypes.Array[ctypes.c_char], what: str) -> int:
    if _SYS_BPF is None:
        raise BpfError(errno.ENOSYS, f"{what} (no bpf syscall number for {os.uname().machine})")
    result = _libc.syscall(_SYS_BPF, cmd, attr, _ATTR_SIZE)
    if result < 0:
        raise BpfError(ctypes.get_errno(), what)
    return int(result)


def _attr(fmt: str, *values: object) -> ctypes.Array[ctypes.c_char]:
    return ctypes.create_string_buffer(struct.pack(fmt, *values).ljust(_ATTR_SIZE, b"\0"), _ATTR_SIZE)


# -- the assembler ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Insn:
    """One instruction; `target` names a label for a jump, `wide` marks the two-slot 64-bit load."""

    code: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0
    target: str | None = None
    wide: bool = False


@dataclass(frozen=True)
class Label:
    """A place jumps can name."""

    name: str


def mov(dst: int, src: int) -> Insn:
    """dst = src (64-bit)."""
    return Insn(0xBF, dst, src)


def mov_imm(dst: int, imm: int) -> Insn:
    """dst = imm (64-bit, sign-extended)."""
    return Insn(0xB7, dst, imm=imm)


def add_imm(dst: int, imm: int) -> Insn:
    """dst += imm (64-bit)."""
    return Insn(0x07, dst, imm=imm)


def load(size: int, dst: int, src: int, off: int) -> Insn:
    """dst = *(size *)(src + off)."""
    return Insn(0x61 | _SIZE[size], dst, src, off)


def store(size: int, dst: int, off: int, src: int) -> Insn:
    """*(size *)(dst + off) = src."""
    return Insn(0x63 | _SIZE[size], dst, src, off)


def store_imm(size: int, dst: int, off: int, imm: int) -> Insn:
    """*(size *)(dst + off) = imm."""
    return Insn(0x62 | _SIZE[size], dst, off=off, imm=imm)


def atomic_add64(dst: int, off: int, src: int) -> Insn:
    """lock *(u64 *)(dst + off) += src."""
    return Insn(0xDB, dst, src, off, imm=0)


def jump_if(op: str, dst: int, imm: int, target: str) -> Insn:
    """if dst OP imm goto target (64-bit compare; op is ==, != or > unsigned)."""
    # The immediate is sign-extended to 64 bits: past 2**31 it could never equal a 32-bit load.
    assert -(1 << 31) <= imm < (1 << 31), imm
    return Insn({"==": 0x15, "!=": 0x55, ">": 0x25}[op], dst, imm=imm, target=target)


def jump_if_greater(dst: int, src: int, target: str) -> Insn:
    """if dst > src goto target (unsigned registers)."""
    return Insn(0x2D, dst, src, target=target)


def call(helper: int) -> Insn:
    """r0 = helper(r1, ..., r5)."""
    return Insn(0x85, imm=helper)


def exit_() -> Insn:
    """return r0."""
    return Insn(0x95)


def load_map(dst: int, map_fd: int) -> Insn:
    """dst = the map with descriptor MAP_FD (the kernel swaps the descriptor for the map's address)."""
    return Insn(0x18, dst, src=1, imm=map_fd, wide=True)


def assemble(program: Sequence[Insn | Label]) -> bytes:
    """The program's bytes, jumps resolved to their labels."""
    places, pc = {}, 0
    for item in program:
        if isinstance(item, Label):
            places[item.name] = pc
        else:
            pc += 2 if item.wide else 1
    out, pc = bytearray(), 0
    for item in program:
        if isinstance(item, Label):
            continue
        off = places[item.target] - pc - 1 if item.target is not None else item.off
        imm = (item.imm + (1 << 31)) % (1 << 32) - (1 << 31)  # the low 32 bits, as the signed field holds them
        out += struct.pack("<BBhi", item.code, (item.src << 4) | item.dst, off, imm)
        if item.wide:
            out += struct.pack("<BBhi", 0, 0, 0, 0)  # the high 32 bits of the immediate: zero for a map
        pc += 2 if item.wide else 1
    return bytes(out)


# -- kernel objects -------------------------------------------------------------------------------------------


class Fd:
    """A BPF object's descriptor, closed once."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def close(self) -> None:
        """Release the descriptor (the object goes when nothing else holds it)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class Map(Fd):
    """A BPF map with fixed-size keys and values, as bytes."""

    def __init__(self, kind: int, key_size: int, value_size: int, entries: int, name: str, flags: int = 0) -> None:
        attr = _attr("<IIIIIII16s", kind, key_size, value_size, entries, flags, 0, 0, name.encode()[:15])
        super().__init__(_bpf(MAP_CREATE, attr, f"creating map {name}"))
        self.key_size, self.value_size, self.name = key_size, value_size, name

    def _elem(self, cmd: int, key: bytes, value: ctypes.Array[ctypes.c_char] | None, what: str) -> int:
        keybuf = ctypes.create_string_buffer(key, self.key_size)
        attr = _attr("<IIQQQ", self.fd, 0, ctypes.addressof(keybuf),
                     ctypes.addressof(value) if value is not None else 0, 0)
        return _bpf(cmd, attr, f"{what} in map {self.name}")

    def put(self, key: bytes, value: bytes) -> None:
        """Insert or replace KEY."""
        self._elem(MAP_UPDATE_ELEM, key, ctypes.create_string_buffer(value, self.value_size), "updating")

    def _found(self, cmd: int, key: bytes, value: ctypes.Array[ctypes.c_char] | None, what: str) -> bool:
        """Run CMD on KEY; False where the map has no KEY (every other refusal raises)."""
        try:
            self._elem(cmd, key, value, what)
        except BpfError as exc:
            if exc.errno == errno.ENOENT:
                return False
            raise
        return True

    def delete(self, key: bytes) -> bool:
        """Remove KEY; False if it was not there."""
        return self._found(MAP_DELETE_ELEM, key, None, "deleting")

    def get(self, key: bytes) -> bytes | None:
        """KEY's value, or None."""
        value = ctypes.create_string_buffer(self.value_size)
        return value.raw if self._found(MAP_LOOKUP_ELEM, key, value, "reading") else None

    def slot(self, key: bytes) -> Slot:
        """KEY's value as a Slot: written again and again, each time at the cost of the system call alone."""
        return Slot(self, key)


class Slot:
    """One key of a map whose value is rewritten often (a lease): the key, the value's buffer and the call's
    arguments are made once, so a write copies the value in and makes the call."""

    def __init__(self, owner: Map, key: bytes) -> None:
        self._key = ctypes.create_string_buffer(key, owner.key_size)
        self._value = ctypes.create_string_buffer(owner.value_size)
        self._size = owner.value_size
        self._attr = _attr("<IIQQQ", owner.fd, 0, ctypes.addressof(self._key), ctypes.addressof(self._value), 0)
        self._what = f"updating in map {owner.name}"

    def put(self, value: bytes) -> None:
        """Insert or replace the key's value with VALUE (exactly the map's value size)."""
        if len(value) != self._size:
            raise ValueError(f"a value of {len(value)} bytes for a map of {self._size}-byte values")
        ctypes.memmove(self._value, value, self._size)
        _bpf(MAP_UPDATE_ELEM, self._attr, self._what)


def load_program(code: bytes, name: str, prog_type: int = PROG_SCHED_CLS,
                 attach_type: int = TCX_INGRESS) -> Fd:
    """Load a GPL program; a refusal raises BpfError carrying the verifier's log."""
    insns = ctypes.create_string_buffer(code, len(code))
    license_ = ctypes.create_string_buffer(b"GPL")
    log = ctypes.create_string_buffer(1 << 16)
    attr = _attr("<IIQQIIQII16sII", prog_type, len(code) // 8, ctypes.addressof(insns), ctypes.addressof(license_),
                 1, len(log), ctypes.addressof(log), 0, 0, name.encode()[:15], 0, attach_type)
    try:
        return Fd(_bpf(PROG_LOAD, attr, f"loading program {name}"))
    except BpfError as exc:
        raise BpfError(exc.errno or errno.EINVAL, f"loading program {name}",
                       log.value.decode(errors="replace").strip()) from None


def attach_tcx(program: Fd, ifindex: int, attach_type: int = TCX_INGRESS) -> Fd:
    """Link PROGRAM to an interface's tcx hook. The link lives while its descriptor does: when this process
    exits, however it exits, the kernel detaches the program."""
    attr = _attr("<IIII", program.fd, ifindex, attach_type, 0)
    return Fd(_bpf(LINK_CREATE, attr, f"attaching to interface {ifindex}"))
