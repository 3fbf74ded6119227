"""Ed25519 keys and C2SP signed notes; checkpoints (c2sp.org/tlog-checkpoint) as notes.

A checkpoint body is three lines — origin, tree size, base64 root hash — followed
by auditlens' extension line ``time <ms since epoch>``. It is signed as a
c2sp.org/signed-note: a blank line, then one ``— <key name> base64(key id ‖ sig)``
line per signer. The key id is ``SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4]``.

Example:
    >>> key = SigningKey.generate("audit.example/log")
    >>> body = checkpoint_body("audit.example/log/org", 3, bytes(32), 1737369000123)
    >>> note = sign_note(body, key)
    >>> parsed = parse_note(note)
    >>> parsed.verified_by([key.verifier]), parse_checkpoint(parsed.body).size
    (['audit.example/log'], 3)
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from auditlens.errors import ConfigError, NoteFormatError

__all__ = [
    "Checkpoint",
    "Note",
    "SigningKey",
    "VerifierKey",
    "checkpoint_body",
    "generate_keys",
    "load_signing_key",
    "load_verifier",
    "parse_checkpoint",
    "parse_note",
    "sign_note",
]

_ALG_ED25519 = 0x01
_DASH = "\u2014"


def _key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([_ALG_ED25519]) + public).digest()[:4]


def _check_name(name: str) -> str:
    if not name or any(c.isspace() for c in name) or "+" in name:
        raise ConfigError(f"key name {name!r} must be non-empty, without spaces or '+'")
    return name


@dataclass(frozen=True)
class VerifierKey:
    """A named Ed25519 public key (what a verifier or auditor holds)."""

    name: str
    public: bytes

    @property
    def key_id(self) -> bytes:
        """4-byte key id of the signed-note format."""
        return _key_id(self.name, self.public)

    @property
    def vkey(self) -> str:
        """The note verifier key string ``name+hexid+base64(0x01 ‖ key)``."""
        return (
            f"{self.name}+{self.key_id.hex()}+{base64.b64encode(bytes([1]) + self.public).decode()}"
        )

    def verify(self, message: bytes, signature: bytes) -> bool:
        """True when ``signature`` is this key's Ed25519 signature of ``message``."""
        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True

    def pem(self) -> bytes:
        """The public key as PEM (SubjectPublicKeyInfo)."""
        return Ed25519PublicKey.from_public_bytes(self.public).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @classmethod
    def parse(cls, text: str) -> VerifierKey:
        """Read a ``name+hexid+base64`` verifier key string."""
        try:
            name, hex_id, b64 = text.strip().split("+", 2)
            raw = base64.b64decode(b64, validate=True)
        except ValueError:
            raise ConfigError("a verifier key looks like name+1a2b3c4d+AXk…") from None
        if len(raw) != 33 or raw[0] != _ALG_ED25519:
            raise ConfigError("the verifier key is not an Ed25519 key")
        key = cls(_check_name(name), raw[1:])
        if key.key_id.hex() != hex_id.lower():
            raise ConfigError(f"verifier key {name}: the key id does not match the key")
        return key


class SigningKey:
    """A named Ed25519 private key. Its repr never shows the key."""

    def __init__(self, name: str, private: Ed25519PrivateKey) -> None:
        self.name = _check_name(name)
        self._private = private
        raw = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.verifier = VerifierKey(self.name, raw)

    def __repr__(self) -> str:
        return f"SigningKey(name={self.name!r}, key_id={self.verifier.key_id.hex()})"

    @classmethod
    def generate(cls, name: str) -> SigningKey:
        """A new random key."""
        return cls(name, Ed25519PrivateKey.generate())

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature of ``message``."""
        return self._private.sign(message)

    def private_pem(self) -> bytes:
        """PKCS#8 PEM of the private key, with the key name in a comment line first."""
        pem = self._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return f"# auditlens signing key: {self.name}\n".encode() + pem


def generate_keys(directory: str | os.PathLike[str], name: str) -> tuple[Path, Path, Path]:
    """Write a new key pair: ``<dir>/signing.key`` (0600), ``signing.pub`` (PEM), ``signing.vkey``.

    Refuses to overwrite an existing private key.
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    private, public, vkey = folder / "signing.key", folder / "signing.pub", folder / "signing.vkey"
    if private.exists():
        raise ConfigError(f"{private} exists; refusing to overwrite a signing key")
    key = SigningKey.generate(name)
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.private_pem())
    public.write_bytes(f"# auditlens verifier key: {name}\n".encode() + key.verifier.pem())
    vkey.write_text(key.verifier.vkey + "\n")
    return private, public, vkey


def load_signing_key(path: str | os.PathLike[str] | None = None) -> SigningKey:
    """Load a signing key from ``path``, else ``$AUDITLENS_SIGNING_KEY`` (a file path)."""
    where = path or os.environ.get("AUDITLENS_SIGNING_KEY")
    if not where:
        raise ConfigError("no signing key: pass --key FILE or set AUDITLENS_SIGNING_KEY")
    p = Path(where)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the signing key {p}: {exc.strerror}") from None
    name = _comment_name(data, "signing key") or "auditlens.local/log"
    try:
        priv = serialization.load_pem_private_key(_strip_comments(data), password=None)
    except (ValueError, TypeError):
        raise ConfigError(f"{p} is not a PEM Ed25519 private key") from None
    if not isinstance(priv, Ed25519PrivateKey):
        raise ConfigError(f"{p} is not an Ed25519 key")
    return SigningKey(name, priv)


def load_verifier(path_or_text: str | os.PathLike[str]) -> VerifierKey:
    """A verifier key from a ``.vkey`` string, a ``.vkey`` file or a PEM public key file."""
    text = os.fspath(path_or_text)
    p = Path(text)
    if "+" in text and not p.exists():
        return VerifierKey.parse(text)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the verifier key {p}: {exc.strerror}") from None
    if b"BEGIN PUBLIC KEY" not in data:
        return VerifierKey.parse(data.decode())
    try:
        pub = serialization.load_pem_public_key(_strip_comments(data))
    except ValueError:
        raise ConfigError(f"{p} is not a PEM public key") from None
    if not isinstance(pub, Ed25519PublicKey):
        raise ConfigError(f"{p} is not an Ed25519 public key")
    name = _comment_name(data, "verifier key") or "auditlens.local/log"
    return VerifierKey(
        name, pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )


def _comment_name(data: bytes, label: str) -> str | None:
    for line in data.decode(errors="replace").splitlines():
        if line.startswith(f"# auditlens {label}:"):
            return line.split(":", 1)[1].strip()
    return None


def _strip_comments(data: bytes) -> bytes:
    return b"\n".join(line for line in data.splitlines() if not line.startswith(b"#")) + b"\n"


# -- signed notes --------------------------------------------------------------------
@dataclass(frozen=True)
class Note:
    """A parsed signed note: its text and its signature lines."""

    body: str
    signatures: tuple[tuple[str, bytes, bytes], ...]  # (key name, key id, signature)

    def verified_by(self, keys: list[VerifierKey]) -> list[str]:
        """Names of the known keys whose signature on the body verifies."""
        names: list[str] = []
        for name, kid, sig in self.signatures:
            for key in keys:
                if key.name == name and key.key_id == kid and key.verify(self.body.encode(), sig):
                    names.append(name)
        return names

    def failed_known(self, keys: list[VerifierKey]) -> list[str]:
        """Names of known keys (name and id match) whose signature does *not* verify."""
        bad: list[str] = []
        for name, kid, sig in self.signatures:
            for key in keys:
                if (
                    key.name == name
                    and key.key_id == kid
                    and not key.verify(self.body.encode(), sig)
                ):
                    bad.append(name)
        return bad

    def text(self) -> str:
        """The note as text."""
        lines = [
            f"{_DASH} {name} {base64.b64encode(kid + sig).decode()}"
            for name, kid, sig in self.signatures
        ]
        return self.body + "\n" + "\n".join(lines) + "\n"


def sign_note(body_or_note: str | Note, key: SigningKey) -> str:
    """Add ``key``'s signature to a note body (or to an already signed note)."""
    note = body_or_note if isinstance(body_or_note, Note) else Note(body_or_note, ())
    if not note.body.endswith("\n"):
        raise NoteFormatError("a note body must end with a newline")
    sig = key.sign(note.body.encode())
    return Note(note.body, (*note.signatures, (key.name, key.verifier.key_id, sig))).text()


def parse_note(text: str) -> Note:
    """Split a signed note into body and signatures.

    Raises:
        NoteFormatError: the text is not a signed note (a ValueError).
    """
    sep = text.rfind("\n\n")
    if sep < 0:
        raise NoteFormatError("not a signed note: no blank line before the signatures")
    body, sig_block = text[: sep + 1], text[sep + 2 :]
    sigs: list[tuple[str, bytes, bytes]] = []
    for line in sig_block.splitlines():
        if not line.startswith(_DASH + " "):
            raise NoteFormatError(f"not a signature line: {line[:40]!r}")
        try:
            _, name, b64 = line.split(" ")
            raw = base64.b64decode(b64, validate=True)
        except ValueError:
            raise NoteFormatError(f"malformed signature line: {line[:40]!r}") from None
        if len(raw) < 5:
            raise NoteFormatError("signature too short")
        sigs.append((name, raw[:4], raw[4:]))
    if not sigs:
        raise NoteFormatError("a signed note needs at least one signature")
    return Note(body, tuple(sigs))


# -- checkpoints --------------------------------------------------------------------------
@dataclass(frozen=True)
class Checkpoint:
    """The parsed body of a checkpoint."""

    origin: str
    size: int
    root: bytes
    timestamp_ms: int | None


def checkpoint_body(origin: str, size: int, root: bytes, timestamp_ms: int) -> str:
    """The checkpoint text (tlog-checkpoint, plus the ``time`` extension line)."""
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\ntime {timestamp_ms}\n"


def parse_checkpoint(body: str) -> Checkpoint:
    """Parse a checkpoint body.

    Raises:
        NoteFormatError: malformed checkpoint (a ValueError).
    """
    lines = body.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise NoteFormatError("a checkpoint has an origin, a size and a root hash line")
    origin, size_s, root_s = lines[0], lines[1], lines[2]
    if not size_s.isdigit() or (size_s != "0" and size_s.startswith("0")):
        raise NoteFormatError(f"bad tree size {size_s!r}")
    try:
        root = base64.b64decode(root_s, validate=True)
    except ValueError:
        raise NoteFormatError(f"the root hash is not base64: {root_s[:40]!r}") from None
    if len(root) != 32:
        raise NoteFormatError("the root hash must be 32 bytes")
    ts = None
    for ext in lines[3:-1]:
        if ext.startswith("time ") and ext[5:].isdigit():
            ts = int(ext[5:])
    return Checkpoint(origin, int(size_s), root, ts)
