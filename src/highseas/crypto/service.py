"""Interface encryption (接口加密, contract §6): the agent's switch and keys, and the codec
every endpoint that takes or returns phones applies.

Keys are sealed at rest under the server key (``highseas/sealing.py``, purpose
``ENCRYPTION_KEY``, bound to the agent). A key is made on the first enable and kept when
encryption is switched off, so a client's stored key stays valid; a rotation keeps the
previous key, which decrypts inputs for ``HIGHSEAS_ENCRYPTION_GRACE``.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from highseas import sealing
from highseas.clock import utcnow
from highseas.config import Settings
from highseas.crypto import cipher, repository
from highseas.crypto.codec import PLAIN, Codec
from highseas.crypto.schemas import EncryptionRead
from highseas.errors import HighseasError
from highseas.models import Batch, EncryptionSetting

_SEALED_AS = sealing.ENCRYPTION_KEY


# Configuration


async def read_setting(
    session: AsyncSession, agent_id: uuid.UUID, settings: Settings
) -> EncryptionRead:
    setting = await repository.setting_of(session, agent_id)
    if setting is None:
        return EncryptionRead(enabled=False, key=None, previous_valid_until=None)
    return _read(setting, _keyring(setting, settings))


async def configure(
    session: AsyncSession, agent_id: uuid.UUID, enabled: bool, settings: Settings
) -> EncryptionRead:
    """Switch encryption on or off; the first switch on makes the key."""
    setting = await repository.setting_of(session, agent_id, for_update=True)
    if setting is None:
        if not enabled:
            return EncryptionRead(enabled=False, key=None, previous_valid_until=None)
        sealed = _seal(settings, agent_id, cipher.new_key())
        await repository.add_if_missing(session, agent_id, sealed_key=sealed, enabled=True)
        setting = await repository.setting_of(session, agent_id, for_update=True)
        assert setting is not None
    setting.enabled = enabled
    await session.flush()
    return _read(setting, _keyring(setting, settings))


async def rotate(session: AsyncSession, agent_id: uuid.UUID, settings: Settings) -> EncryptionRead:
    """A new key now; the previous one still decrypts for the grace period. Works whether
    encryption is on or off (a key suspected leaked can be replaced before switching on)."""
    fresh = cipher.new_key()
    sealed = _seal(settings, agent_id, fresh)
    await repository.add_if_missing(session, agent_id, sealed_key=sealed, enabled=False)
    setting = await repository.setting_of(session, agent_id, for_update=True)
    assert setting is not None
    if setting.sealed_key != sealed:
        # A key sealed under an older server key cannot decrypt anything: nothing to keep.
        setting.previous_sealed_key = (
            setting.sealed_key if _opens(settings, agent_id, setting.sealed_key) else None
        )
        setting.sealed_key = sealed
        setting.rotated_at = utcnow()
        await session.flush()
    return _read(setting, _keyring(setting, settings))


def _read(setting: EncryptionSetting, keyring: cipher.Keyring) -> EncryptionRead:
    return EncryptionRead(
        enabled=setting.enabled,
        key=cipher.key_text(keyring.current),
        previous_valid_until=keyring.previous_valid_until(),
    )


# The codec


async def phone_codec(
    session: AsyncSession, agent_id: uuid.UUID, requested: bool, settings: Settings
) -> Codec:
    """How a request's phones travel: cipher text when it asks for encryption and the agent
    has it on; otherwise plain (``encryption: true`` with encryption off is ignored)."""
    if not requested:
        return PLAIN
    setting = await repository.setting_of(session, agent_id)
    if setting is None or not setting.enabled:
        return PLAIN
    return Codec(_keyring(setting, settings), now=utcnow())


async def batch_codec(session: AsyncSession, batch: Batch, settings: Settings) -> Codec:
    """The codec of an accepted batch, whose ``encryption`` is the effective flag at
    acceptance: its rows and its download stay cipher text even if the agent has switched
    encryption off since (the key is kept, the client still has it)."""
    if not batch.encryption:
        return PLAIN
    setting = await repository.setting_of(session, batch.agent_id)
    if setting is None:
        raise _unreadable_key()
    return Codec(_keyring(setting, settings), now=utcnow())


def _keyring(setting: EncryptionSetting, settings: Settings) -> cipher.Keyring:
    current = _unseal(settings, setting.agent_id, setting.sealed_key)
    if current is None:
        raise _unreadable_key()
    previous = (
        None
        if setting.previous_sealed_key is None
        else _unseal(settings, setting.agent_id, setting.previous_sealed_key)
    )
    return cipher.Keyring(
        current=current,
        previous=previous,
        rotated_at=setting.rotated_at if previous is not None else None,
        grace=timedelta(seconds=settings.encryption_grace),
    )


def _seal(settings: Settings, agent_id: uuid.UUID, key: bytes) -> str:
    return sealing.seal(
        settings.resolved_secret_key(),
        cipher.key_text(key),
        owner=agent_id.bytes,
        purpose=_SEALED_AS,
    )


def _unseal(settings: Settings, agent_id: uuid.UUID, sealed: str) -> bytes | None:
    try:
        text = sealing.unseal(
            settings.resolved_secret_key(), sealed, owner=agent_id.bytes, purpose=_SEALED_AS
        )
    except sealing.Unsealable:
        return None
    return cipher.key_from_text(text)


def _opens(settings: Settings, agent_id: uuid.UUID, sealed: str) -> bool:
    return _unseal(settings, agent_id, sealed) is not None


def _unreadable_key() -> HighseasError:
    return HighseasError(
        "接口加密密钥无法解密（服务器密钥 HIGHSEAS_SECRET_KEY 已更换）："
        "请调用 POST /agent-api/encryption/rotate 生成新密钥",
        reason="encryption_key_unreadable",
    )
