"""Server-side key backups (spec: Server-side key backups): versions and their room keys.

Keys may only be written to the newest version; reading and deleting work on any version that
still exists. Of two uploads for the same session the server keeps the better one by the
spec's rule (`is_better`), so a device with a worse copy cannot spoil a good backup.
"""

from __future__ import annotations

from typing import Any

from homeserver.errors import Codes, MatrixError, bad_json, not_found
from storage.key_backup import BackupVersion, RoomKey, RoomKeys
from storage.store import Storage

WRONG_ROOM_KEYS_VERSION = "M_WRONG_ROOM_KEYS_VERSION"


def is_better(new: RoomKey, old: RoomKey) -> bool:
    """Whether `new` replaces `old`: verified beats unverified, then the lower first message
    index wins, then the lower forwarded count; a tie keeps the stored key."""
    if new.is_verified != old.is_verified:
        return new.is_verified
    if new.first_message_index != old.first_message_index:
        return new.first_message_index < old.first_message_index
    return new.forwarded_count < old.forwarded_count


class KeyBackupService:
    def __init__(self, storage: Storage) -> None:
        self.store = storage.e2ee.backup

    # Versions -------------------------------------------------------------------------------------

    async def create_version(self, user_id: str, body: dict[str, Any]) -> dict[str, Any]:
        algorithm, auth_data = _algorithm_and_auth_data(body)
        version = await self.store.create_version(user_id, algorithm, auth_data)
        return {"version": str(version)}

    async def get_version(self, user_id: str, version: str | None) -> dict[str, Any]:
        """The given version, or the newest when None (404 when there is none)."""
        number = _parse_version(version) if version is not None else None
        info = await self.store.get_version(user_id, number)
        if info is None:
            raise not_found(
                "No current backup version" if version is None else "Unknown backup version"
            )
        return _version_json(info)

    async def update_version(self, user_id: str, version: str, body: dict[str, Any]) -> None:
        number = _parse_version(version)
        algorithm, auth_data = _algorithm_and_auth_data(body)
        if "version" in body and body["version"] != version:
            raise MatrixError(400, Codes.INVALID_PARAM, "The version in the body does not match")
        info = await self.store.get_version(user_id, number)
        if info is None:
            raise not_found("Unknown backup version")
        if algorithm != info.algorithm:
            raise MatrixError(400, Codes.INVALID_PARAM, "Algorithm does not match")
        await self.store.update_auth_data(user_id, number, auth_data)

    async def delete_version(self, user_id: str, version: str) -> None:
        number = _parse_version(version)
        # The spec: deleting a version deleted before succeeds; one that never was is 404.
        if not await self.store.version_existed(user_id, number):
            raise not_found("Unknown backup version")
        await self.store.delete_version(user_id, number)

    # Keys -----------------------------------------------------------------------------------------

    async def put_keys(self, user_id: str, version: str | None, keys: RoomKeys) -> dict[str, Any]:
        version = _required(version)
        current = await self.store.get_version(user_id, None)
        if current is None:
            raise not_found("Unknown backup version")
        if version != str(current.version):
            raise _wrong_version(current)
        updated = await self.store.put_keys(user_id, current.version, keys, is_better)
        if updated is None:
            # The version was replaced or deleted while the keys were being written.
            latest = await self.store.get_version(user_id, None)
            if latest is None:
                raise not_found("Unknown backup version")
            raise _wrong_version(latest)
        return _update_json(updated)

    async def get_keys(
        self, user_id: str, version: str | None, room_id: str | None, session_id: str | None
    ) -> RoomKeys:
        number = await self._existing(user_id, version)
        return await self.store.get_keys(user_id, number, room_id, session_id)

    async def delete_keys(
        self, user_id: str, version: str | None, room_id: str | None, session_id: str | None
    ) -> dict[str, Any]:
        number = await self._existing(user_id, version)
        updated = await self.store.delete_keys(user_id, number, room_id, session_id)
        if updated is None:
            raise not_found("Unknown backup version")
        return _update_json(updated)

    async def _existing(self, user_id: str, version: str | None) -> int:
        number = _parse_version(_required(version))
        if await self.store.get_version(user_id, number) is None:
            raise not_found("Unknown backup version")
        return number


def parse_room_key(value: Any, where: str) -> RoomKey:
    """A KeyBackupData object from a request body (400 M_BAD_JSON unless well-formed)."""
    if not isinstance(value, dict):
        raise bad_json(f"{where} must be an object")
    numbers = {}
    for field in ("first_message_index", "forwarded_count"):
        number = value.get(field)
        # bool is an int in Python, but not in JSON.
        if not isinstance(number, int) or isinstance(number, bool) or number < 0:
            raise bad_json(f"{where}.{field} must be a non-negative integer")
        numbers[field] = number
    if not isinstance(value.get("is_verified"), bool):
        raise bad_json(f"{where}.is_verified must be true or false")
    if not isinstance(value.get("session_data"), dict):
        raise bad_json(f"{where}.session_data must be an object")
    return RoomKey(
        numbers["first_message_index"],
        numbers["forwarded_count"],
        value["is_verified"],
        value["session_data"],
    )


def _algorithm_and_auth_data(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    algorithm = body.get("algorithm")
    if not isinstance(algorithm, str) or not algorithm:
        raise bad_json("algorithm must be a string")
    auth_data = body.get("auth_data")
    if not isinstance(auth_data, dict):
        raise bad_json("auth_data must be an object")
    return algorithm, auth_data


def _required(version: str | None) -> str:
    if version is None:
        raise MatrixError(400, Codes.MISSING_PARAM, "Missing required query parameter: version")
    return version


def _parse_version(version: str) -> int:
    # Versions are opaque strings to clients; ours are decimal numbers, so anything else is
    # simply a version that does not exist.
    if not version.isascii() or not version.isdigit() or len(version) > 18:
        raise not_found("Unknown backup version")
    return int(version)


def _wrong_version(current: BackupVersion) -> MatrixError:
    return MatrixError(
        403,
        WRONG_ROOM_KEYS_VERSION,
        "Wrong backup version",
        extra={"current_version": str(current.version)},
    )


def _version_json(info: BackupVersion) -> dict[str, Any]:
    return {
        "version": str(info.version),
        "algorithm": info.algorithm,
        "auth_data": info.auth_data,
        "etag": str(info.etag),
        "count": info.count,
    }


def _update_json(info: BackupVersion) -> dict[str, Any]:
    return {"etag": str(info.etag), "count": info.count}
