"""A seccomp filter for contained commands: no kernel keyrings.

Keyrings are not namespaced: a command inherits gitteam's session keyring through every namespace bubblewrap
makes, and reads whatever is linked into it (a Kerberos ticket cache, a cached passphrase). The filter makes
`add_key`, `request_key` and `keyctl` fail with EPERM, as Docker's default profile does; everything else is
allowed. It is a classic BPF program (struct sock_filter, as bubblewrap's --seccomp reads it), checked per
architecture so a 32-bit process on a 64-bit kernel cannot reach the same calls by their other numbers.
"""

from __future__ import annotations

import struct

# struct seccomp_data: int nr; __u32 arch; ...
_NR, _ARCH = 0, 4
_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_RET_K = 0x06  # BPF_RET | BPF_K
_ALLOW = 0x7FFF0000  # SECCOMP_RET_ALLOW
_EPERM = 0x00050000 | 1  # SECCOMP_RET_ERRNO | EPERM
_X32 = 0x40000000  # x32 system calls are the x86-64 numbers with this bit set

# add_key, request_key, keyctl by audit architecture
KEYRING_CALLS: dict[int, tuple[int, ...]] = {
    0xC000003E: (248, 249, 250, _X32 | 248, _X32 | 249, _X32 | 250),  # x86-64 (and x32)
    0x40000003: (286, 287, 288),  # i386
    0xC00000B7: (217, 218, 219),  # aarch64
    0x40000028: (309, 310, 311),  # arm
    0xC00000F3: (217, 218, 219),  # riscv64
    0x80000016: (278, 279, 280),  # s390x
    0xC0000015: (269, 270, 271),  # ppc64le
}


def _op(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def keyring_filter() -> bytes:
    """The program: per known architecture, the keyring calls return EPERM; all else (any other architecture
    too) is allowed."""
    to_deny = -1  # a jump target resolved once the program's length is known
    program: list[tuple[int, int, int, int]] = [(_LD_W_ABS, _ARCH, 0, 0)]
    for arch, calls in KEYRING_CALLS.items():
        program.append((_JEQ_K, arch, 0, 1 + len(calls) + 1))  # not this one: skip its block
        program.append((_LD_W_ABS, _NR, 0, 0))
        program += [(_JEQ_K, call, to_deny, 0) for call in calls]
        program.append((_RET_K, _ALLOW, 0, 0))
    program.append((_RET_K, _ALLOW, 0, 0))
    deny = len(program)
    program.append((_RET_K, _EPERM, 0, 0))
    # jumps count the instructions after the current one
    return b"".join(_op(code, k, deny - index - 1 if jt == to_deny else jt, jf)
                    for index, (code, k, jt, jf) in enumerate(program))
