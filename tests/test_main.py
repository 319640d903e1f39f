"""The app factory: probes and API docs."""

from __future__ import annotations

import re

import httpx

from highseas.config import Settings
from highseas.main import create_app
from tests.fixtures.assertions import assert_error


async def test_probes_and_docs(client: httpx.AsyncClient) -> None:
    health = await client.get("/healthz")
    assert health.status_code == 200 and health.json()["code"] == 200
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["data"] == {"database": "ok"}
    spec = await client.get("/openapi.json")
    assert spec.status_code == 200
    assert "/agent-api/user/{user_id}/subset_users" in spec.json()["paths"]
    docs = await client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    # Its scripts come from this service, not a CDN: the docs work offline.
    scripts = re.findall(r'src="([^"]+)"', docs.text)
    assert scripts and all(src.startswith("/") for src in scripts), scripts
    for src in scripts:
        assert (await client.get(src)).status_code == 200, src
    assert "cdn." not in docs.text


async def test_readyz_is_503_when_database_is_unreachable(settings: Settings, tmp_path) -> None:
    broken = settings.model_copy(update={"database_url": f"sqlite:///{tmp_path}/missing/dir/x.db"})
    app = create_app(broken)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/readyz")
    assert_error(response, 503, "database_unavailable")
    await app.state.db.dispose()


async def test_a_database_outage_is_a_503_to_retry_not_a_500(
    settings: Settings, tmp_path, caplog
) -> None:
    broken = settings.model_copy(update={"database_url": f"sqlite:///{tmp_path}/missing/dir/x.db"})
    app = create_app(broken)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/agent-api/token", headers={"Authorization": "Bearer hs_x"})
    assert_error(response, 503, "database_unavailable")
    assert response.headers["retry-after"] == "1"
    assert "Traceback" not in caplog.text and "database unavailable" in caplog.text
    # The driver's reason, so an operator can tell a full server from a lost one.
    assert "OperationalError: unable to open database file" in caplog.text
    await app.state.db.dispose()
