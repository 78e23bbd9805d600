"""A minimal Bacula 9.6 network client: prove a daemon answers by a full, clean cram-md5 session."""

from __future__ import annotations

import _socket
import os
import struct
import time

# The socket and hashlib modules would cost a depth-10 monitor more than the check itself
# (socket turns its constants into enums, hashlib loads OpenSSL): their C cores, _socket and
# _md5, are all this client needs. hashlib stays the fallback for a build without _md5.
TYPE_CHECKING = False
if TYPE_CHECKING:  # typeshed knows hashlib's md5, not the private module's (the same API)
    from hashlib import md5 as _md5
    from typing import Literal
else:
    try:
        from _md5 import md5 as _md5
    except ImportError:  # a build without _md5
        from hashlib import md5 as _md5


__all__ = [
    "AuthRejected",
    "NoAnswer",
    "ProtocolError",
    "TLSRequired",
    "console_probe",
    "director_probe",
]

# Wire constants, from Bacula's src/lib/bsock.h (9.6).
_EOD = -1  # end of data: the director's end of a command's output
_TERMINATE = -4  # "conversation terminated, doing close()": the polite hang-up
_SUB_PROMPT = -27  # the director waits for input: the command was interactive
_TEXT_INPUT = -28
_SELECT_INPUT = -19
_YESNO = -24
_INPUT_SIGNALS = frozenset({_SUB_PROMPT, _TEXT_INPUT, _SELECT_INPUT, _YESNO})
_COMPRESSED = 1 << 30  # LZ4 comm-line compression of this packet
_HDR_EXTEND = 1 << 29  # a 32-bit flags word follows the length
_OFFSET = 1 << 27  # data compression with an offset (job data only, never expected here)
_MAX_PACKET = 1_000_000  # what bsock.c accepts; larger means we are out of step
_HEADER = struct.Struct(">i")
_QUICKACK: int | None = getattr(_socket, "TCP_QUICKACK", None)  # Linux only
_LINGER = 2.0  # seconds we wait, at most, for the daemon to close after our hang-up

# Answers fixed by src/lib/cram-md5.c and the daemons' authenticate.c/hello.c.
_AUTH_OK = "1000 OK auth\n"
_AUTH_FAILED = "1999 Authorization failed.\n"
_REJECTIONS = ("1999 ", "2999 ", "3999 ")  # director, file daemon, storage daemon "sorry"
_GREETINGS = {"dir": "1000 OK:", "fd": "2000 OK Hello", "sd": "3000 OK Hello"}
# 11.0 and later check TLS requirements after the mutual cram-md5 (authenticatebase.cc): a daemon
# that requires TLS-PSK (`TLS Require = yes` without a certificate, so its challenge said ssl=0)
# proves the password both ways, then refuses the session: the storage and file daemons with
# this reason, the director with its plain "sorry".
_TLS_REFUSAL = "Authorization problem:"

_B64_DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


class ProtocolError(Exception):
    """The daemon answered, but not as a healthy daemon with our configuration would."""


class AuthRejected(ProtocolError):
    """The daemon answered and refused our credentials (or we refused its proof): alive."""


class TLSRequired(AuthRejected):
    """The daemon challenged us (so it is alive) but requires TLS (certificates, or TLS-PSK),
    which this client does not speak: only a client configured for TLS (bconsole) goes further."""


class NoAnswer(ProtocolError):
    """No answer from the daemon itself: refused, timed out, or closed before answering."""


# -- encoding -------------------------------------------------------------------------------


def bacula_base64(data: bytes, compatible: bool = False) -> str:
    """Bacula's bin_to_base64 (src/lib/base64.c): no padding and, unless `compatible`, its quirks.

    The default (non-compatible) form is what 9.6 daemons send and expect after an
    `auth cram-md5` challenge: bytes are sign-extended into the 32-bit register, so the
    bits of a byte >= 0x80 leak into the following digits, and the last digit holds the
    remaining bits unshifted.  Only a `cram-md5c` challenge would ask for the standard form.
    """
    reg = rem = i = 0
    out: list[str] = []
    while i < len(data):
        if rem < 6:
            byte = data[i]
            i += 1
            if not compatible and byte & 0x80:
                byte |= 0xFFFFFF00  # (int8_t) cast, then widened to uint32
            reg = ((reg << 8) | byte) & 0xFFFFFFFF
            rem += 8
        out.append(_B64_DIGITS[(reg >> (rem - 6)) & 0x3F])
        rem -= 6
    if rem:
        mask = (1 << rem) - 1
        out.append(_B64_DIGITS[((reg & mask) << (6 - rem)) if compatible else (reg & mask)])
    return "".join(out)


def password_key(password: str) -> bytes:
    """The cram-md5 key: daemons keep MD5(clear-text password) as hex (store_password)."""
    return _md5(password.encode()).hexdigest().encode()


def _digest(challenge: str, key: bytes) -> bytes:
    """HMAC-MD5 (RFC 2104) of the challenge, as Bacula's hmac_md5 computes it."""
    if len(key) > 64:
        key = _md5(key).digest()
    key = key.ljust(64, b"\0")
    inner = _md5(bytes(b ^ 0x36 for b in key) + challenge.encode()).digest()
    return _md5(bytes(b ^ 0x5C for b in key) + inner).digest()


def _connect(address: str, port: int, timeout: float) -> _socket.socket:
    """socket.create_connection, on _socket: the first address that accepts."""
    last: OSError = OSError(f"{address} has no address")
    for family, kind, proto, _, where in _socket.getaddrinfo(address, port, 0, _socket.SOCK_STREAM):
        sock = _socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(where)
        except OSError as err:
            sock.close()
            last = err
            continue
        return sock
    raise last


def _bash_spaces(name: str) -> str:
    # Bacula's bash_spaces: a name travels as one %s token, spaces become \x01.
    return name.replace(" ", "\x01")


def _lz4_length(src: bytes, i: int, length: int) -> tuple[int, int]:
    """A 4-bit LZ4 length, extended by following bytes while it is 15 and they are 255."""
    if length == 15:
        while True:
            length += src[i]
            i += 1
            if src[i - 1] != 255:
                break
    return length, i


def _lz4_block(src: bytes, limit: int = 4 * _MAX_PACKET) -> bytes:
    """Decode one LZ4 block; daemons compress packets > 20 bytes if the peer sent a version."""
    out = bytearray()
    i, n = 0, len(src)
    try:
        while i < n:
            token = src[i]
            i += 1
            length, i = _lz4_length(src, i, token >> 4)
            if i + length > n:
                raise ProtocolError("truncated LZ4 literals")
            out += src[i : i + length]
            i += length
            if i >= n:  # the last sequence carries literals only
                break
            offset = src[i] | (src[i + 1] << 8)
            i += 2
            if not 0 < offset <= len(out):
                raise ProtocolError("bad LZ4 match offset")
            length, i = _lz4_length(src, i, token & 15)
            length += 4
            start = len(out) - offset
            for k in range(length):  # byte by byte: a match may overlap its own output
                out.append(out[start + k])
            if len(out) > limit:
                raise ProtocolError("LZ4 block too large")
    except IndexError:
        raise ProtocolError("truncated LZ4 block") from None
    return bytes(out)


# -- connection -----------------------------------------------------------------------------


class _Session:
    """One bnet connection whose every operation shares one deadline."""

    def __init__(self, address: str, port: int, timeout: float) -> None:
        self._deadline = time.monotonic() + timeout
        self.answered = False  # has the daemon itself said anything yet?
        self._where = f"{address}:{port}"
        try:
            self._sock = _connect(address, port, self._left())
        except TimeoutError:
            raise NoAnswer(f"{self._where}: connect timed out") from None
        except OSError as err:
            raise NoAnswer(f"{self._where}: cannot connect: {err.strerror or err}") from None
        self._sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)

    def _left(self) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise NoAnswer(f"{self._where}: no answer within the timeout")
        return left

    def close(self) -> None:
        self._sock.close()

    def send(self, text: str, nul: bool = False) -> None:
        # cram-md5 responses carry their C string terminator (msglen = strlen + 1).
        payload = text.encode() + (b"\0" if nul else b"")
        self._sendall(_HEADER.pack(len(payload)) + payload)

    def signal(self, code: int) -> None:
        self._sendall(_HEADER.pack(code))

    def _sendall(self, data: bytes) -> None:
        try:
            self._sock.settimeout(self._left())
            self._sock.sendall(data)
        except TimeoutError:
            raise NoAnswer(f"{self._where}: send timed out") from None
        except OSError as err:
            raise self._lost(err) from None

    def _lost(self, err: OSError | None) -> ProtocolError:
        reason = f"connection lost: {err.strerror or err}" if err else "connection closed"
        if self.answered:
            return ProtocolError(f"{self._where}: {reason}")
        return NoAnswer(f"{self._where}: {reason} before any answer")

    def _read(self, size: int) -> bytes:
        chunks, got = [], 0
        while got < size:
            try:
                self._sock.settimeout(self._left())
                self._quickack()
                chunk = self._sock.recv(size - got)
            except TimeoutError:
                raise NoAnswer(f"{self._where}: no answer within the timeout") from None
            except OSError as err:
                raise self._lost(err) from None
            if not chunk:
                raise self._lost(None)
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def _quickack(self) -> None:
        # The director writes a command's output and its end-of-data signal separately;
        # with Nagle on its side and delayed ACKs on ours that costs ~40 ms per command.
        # Linux re-arms delayed ACKs, so ask again before every read.
        if _QUICKACK is not None:
            self._sock.setsockopt(_socket.IPPROTO_TCP, _QUICKACK, 1)

    def recv(self) -> str | int:
        """The next message as text, or a signal as a negative int."""
        length = int(_HEADER.unpack(self._read(4))[0])
        self.answered = True
        if length < 0:
            return length
        flags = 0
        if length & _HDR_EXTEND:
            length &= ~_HDR_EXTEND
            flags = int(_HEADER.unpack(self._read(4))[0])
        compressed = bool(length & _COMPRESSED)
        length &= ~_COMPRESSED
        if length > _MAX_PACKET or flags & _OFFSET:
            raise ProtocolError(f"{self._where}: unexpected packet ({length=}, {flags=:#x})")
        data = self._read(length) if length else b""
        if compressed:
            data = _lz4_block(data)
        # Daemons send C strings, some with their terminator: cut at the first NUL.
        return data.split(b"\0", 1)[0].decode("utf-8", "replace")

    def recv_text(self, stage: str) -> str:
        msg = self.recv()
        if isinstance(msg, int):
            if msg == _TERMINATE:
                raise ProtocolError(f"{self._where}: daemon hung up during {stage}")
            raise ProtocolError(f"{self._where}: unexpected signal {msg} during {stage}")
        return msg

    def finish(self, wait_terminate: bool) -> None:
        """Hang up the Bacula way, then wait for the daemon to close its end (best effort).

        Waiting for its close means the daemon's session thread is gone when we return,
        so a `status dir` right after a probe shows no console of ours.
        """
        # Bounded apart from the deadline too: a slow close must not stretch a good probe.
        self._deadline = min(self._deadline, time.monotonic() + _LINGER)
        try:
            self.signal(_TERMINATE)
            while True:
                msg = self.recv()
                if wait_terminate and msg == _TERMINATE:
                    break
        except ProtocolError:
            pass  # EOF or out of time: the session is over either way
        finally:
            self.close()


def _authenticate(session: _Session, hello: str, key: bytes, requires_tls: bool = False) -> None:
    """Mutual cram-md5 as the calling side (console, or director towards SD/FD), TLS off.

    A daemon that requires TLS is left at its challenge, its proof of life: with certificates
    its challenge says so (ssl=2); with TLS-PSK only the caller knows (`requires_tls`, from the
    configuration), and going on would end in a refusal that the director logs as a security
    alert (13.0.3: two lines per login)."""
    session.send(hello)
    # 1. The daemon challenges us (cram_md5_challenge on its side).
    reply = session.recv()
    if reply == _TERMINATE:
        # An SD or FD that does not know our director name sleeps 5-6 s, then hangs up.
        raise AuthRejected("the daemon hung up on our hello (unknown director name?)")
    if isinstance(reply, int):
        raise ProtocolError(f"unexpected signal {reply} in answer to our hello")
    first = reply
    words = first.split()
    if len(words) < 3 or words[0] != "auth" or words[1] not in ("cram-md5", "cram-md5c"):
        if first.startswith(_REJECTIONS):
            raise AuthRejected(f"hello rejected: {first.strip()}")
        raise ProtocolError(f"expected a cram-md5 challenge, got {first.strip()[:80]!r}")
    compatible = words[1] == "cram-md5c"
    ssl = next((w[4:] for w in words[3:] if w.startswith("ssl=")), "0")
    if ssl == "2" or requires_tls:
        raise TLSRequired("the daemon requires TLS, which this client does not speak")
    session.send(bacula_base64(_digest(words[2], key), compatible), nul=True)
    verdict = session.recv_text("authentication")
    if verdict != _AUTH_OK:
        if verdict.startswith(_REJECTIONS):
            raise AuthRejected(f"password rejected: {verdict.strip()}")
        raise ProtocolError(f"unexpected answer to our response: {verdict.strip()[:80]!r}")
    # 2. We challenge the daemon, so it proves it knows the password too, as Bacula does.
    # os.urandom, not secrets: the secrets module imports random, math and base64, a third
    # of this module's load time, for one number.
    nonce = int.from_bytes(os.urandom(4), "big")
    challenge = f"<{nonce}.{int(time.time())}@bacula-ha>"
    session.send(f"auth cram-md5 {challenge} ssl=0\n")
    answer = session.recv_text("authentication").strip()
    digest = _digest(challenge, key)
    # cram_md5_challenge accepts either base64 flavour; so do we.
    if not any(
        # A plain comparison: this is the client checking the daemon's proof, not a server
        # that a timing attack could probe.
        answer == bacula_base64(digest, flavour)
        for flavour in (False, True)
    ):
        session.send(_AUTH_FAILED)
        raise AuthRejected("the daemon's answer to our challenge is wrong (another password?)")
    session.send(_AUTH_OK)


def _greeting(session: _Session, daemon: Literal["dir", "sd", "fd"]) -> str:
    line = session.recv_text("greeting").strip()
    if line.startswith(_GREETINGS[daemon]):
        return line
    if line.startswith(_TLS_REFUSAL) and "TLS" in line:
        raise TLSRequired(f"the daemon requires TLS: {line[:100]}")
    if line.startswith(_REJECTIONS):
        # Both sides have just proven the password: what is refused now is a session in clear.
        raise TLSRequired(f"session refused after authentication (TLS required?): {line}")
    raise ProtocolError(f"unexpected greeting {line[:80]!r}")


def _run_command(session: _Session, command: str) -> str:
    session.send(command)
    parts: list[str] = []
    while True:
        msg = session.recv()
        if msg == _EOD:
            return "".join(parts)
        if isinstance(msg, str):
            parts.append(msg)
        elif msg in _INPUT_SIGNALS:
            session.finish(wait_terminate=False)  # the terminate also ends its prompt
            raise ProtocolError(f"command {command.split()[0]!r} asks for input")
        elif msg == _TERMINATE:
            raise ProtocolError("the director hung up during the command")
        # Other signals (polls, "messages pending") carry no output: skip them.


def _console(
    address: str,
    port: int,
    password: str,
    timeout: float,
    console_name: str,
    command: str | None,
    ua_version: int | None,
    requires_tls: bool = False,
) -> str:
    # No version after "calling": the director then never LZ4-compresses its answers
    # (it does for ua_version >= 1); the form is one the 9.6 director accepts as is.
    version = "" if ua_version is None else f" {ua_version}"
    session = _Session(address, port, timeout)
    try:
        _authenticate(
            session,
            f"Hello {_bash_spaces(console_name)} calling{version}\n",
            password_key(password),
            requires_tls,
        )
        result = _greeting(session, "dir")
        if command is not None:
            result = _run_command(session, command)
    except BaseException:
        session.close()
        raise
    session.finish(wait_terminate=False)
    return result


def console_probe(
    address: str,
    port: int,
    password: str,
    timeout: float,
    console_name: str = "*UserAgent*",
    command: str | None = None,
    requires_tls: bool = False,
) -> str:
    """Log in to a director as a console, run `command` if given, hang up cleanly.

    Returns the command's output, or without a command the director's greeting
    (`1000 OK: 103 <name> Version: ...`).  `password` is the clear text from the
    configuration (the director's own for `*UserAgent*`, else the named Console's).
    Raises NoAnswer, AuthRejected or ProtocolError; `timeout` bounds the whole session.
    A director that requires TLS (ssl=2 in its challenge, or `requires_tls`: its resource
    says `TLS Require = yes`) raises TLSRequired once it challenged us.
    """
    return _console(address, port, password, timeout, console_name, command, None, requires_tls)


def director_probe(
    address: str,
    port: int,
    director_name: str,
    password: str,
    timeout: float,
    daemon: Literal["sd", "fd"],
    requires_tls: bool = False,
) -> str:
    """Authenticate to a storage or file daemon as director `director_name`, hang up cleanly.

    Returns the daemon's greeting (9.6.7: `3000 OK Hello 306` / `2000 OK Hello 214`).  `password`
    is the clear text of the daemon's Director resource.  Raises like console_probe.
    """
    if daemon not in ("sd", "fd"):
        raise ValueError(f"daemon must be 'sd' or 'fd', not {daemon!r}")
    # Without a version the daemon neither compresses nor expects newer commands;
    # both 9.6 daemons accept this form of the Hello that bacula-dir sends.
    prefix = "SD: Bacula " if daemon == "sd" else ""
    hello = f"Hello {prefix}Director {_bash_spaces(director_name)} calling\n"
    session = _Session(address, port, timeout)
    try:
        _authenticate(session, hello, password_key(password), requires_tls)
        greeting = _greeting(session, daemon)
    except BaseException:
        session.close()
        raise
    # Both daemons answer our terminate with their own before closing: wait for it, so
    # the session is over in the daemon when we return.
    session.finish(wait_terminate=True)
    return greeting
