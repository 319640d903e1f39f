"""What interface encryption does to one request's phones. Pure: no I/O.

A request that asks for encryption while its agent has it on gets a codec with the agent's
keys: phone inputs are decrypted (422 ``undecryptable`` naming the field when they do not
open) and phone outputs encrypted. Every other request gets ``PLAIN``, which passes text
through, so callers handle both cases with the same two calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from highseas.crypto.cipher import ALGORITHM, Keyring, Undecryptable
from highseas.errors import ValidationFailed

_SHOWN_CHARACTERS = 60


@dataclass(frozen=True, slots=True)
class Codec:
    keyring: Keyring | None = None
    # When the request arrived: the previous key's grace is judged at this moment.
    now: datetime | None = None

    @property
    def active(self) -> bool:
        return self.keyring is not None

    def encrypt(self, plain: str) -> str:
        return plain if self.keyring is None else self.keyring.encrypt(plain)

    def open(self, token: str) -> str | None:
        """The plain text of ``token``; None when it does not decrypt."""
        if self.keyring is None:
            return token
        assert self.now is not None
        try:
            return self.keyring.decrypt(token, now=self.now)
        except Undecryptable:
            return None

    def decrypt(self, field: str, token: str) -> str:
        """The plain text of the input ``field``, else 422 ``undecryptable`` naming it."""
        plain = self.open(token)
        if plain is None:
            raise ValidationFailed.field(field, undecryptable_message(field, token), reason=REASON)
        return plain


PLAIN = Codec()
REASON = "undecryptable"


def undecryptable_message(field: str, token: str) -> str:
    # Only the cipher text as received is shown: an error never carries decrypted text.
    shown = repr(token) if len(token) <= _SHOWN_CHARACTERS else repr(token[:57] + "...")
    return (
        f"参数 {field} 无效：{shown} 无法用接口加密密钥解密；应为 {ALGORITHM} 密文："
        "标准 base64 编码的 nonce(12 字节) ‖ 密文 ‖ tag(16 字节)"
    )
