"""A download link's key is never stored: not in the batch's result, not in its callback
message (contract §3: "stored hashed"); it is put in where the link is shown."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy import text

from highseas.config import Settings
from highseas.db import Database
from tests.fixtures.receiver import Receiver
from tests.imports.scenario import callbacks_of, finish, make_scenario


async def test_the_key_is_in_the_callback_and_the_identification_only(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    scenario = await make_scenario(
        client, db, receiver, tmp_path, [{"phone": "13012121212", "operator": 1}]
    )
    accepted = await client.post(
        scenario.url(), json={"operator": [1]}, headers=scenario.agent.headers
    )
    unique_id = accepted.json()["data"]["unique_id"]
    await finish(db, settings)
    [callback] = callbacks_of(receiver)
    url = callback["data"]["url"]
    [key] = parse_qs(urlsplit(url).query)["key"]
    download = await client.get(url.removeprefix("http://testserver"))
    assert download.json() == {"numbers": ["13012121212"]}

    view = await client.get(
        f"{scenario.base}/identification/{unique_id}", headers=scenario.agent.headers
    )
    assert view.json()["data"]["data"]["url"] == url  # shown with the key, as sent

    async with db.sessions() as session:
        stored = [
            str(value)
            for query in (
                "SELECT result FROM batches",
                "SELECT body FROM callback_messages",
                "SELECT key_hash FROM download_keys",
            )
            for (value,) in (await session.execute(text(query))).all()
        ]
    assert stored and not [value for value in stored if key in value]
