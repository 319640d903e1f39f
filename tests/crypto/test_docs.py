"""The encrypt/decrypt examples of docs/encryption.md, run as written against the service."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from highseas.config import Settings
from highseas.db import Database
from tests.conftest import IN_CI
from tests.fixtures.encryption import garbled
from tests.fixtures.factories import make_agent, make_user, run_jobs

DOC = Path(__file__).resolve().parents[2] / "docs" / "encryption.md"
# language → (file name, first line of its code block)
EXAMPLES = {
    "python": ("highseas_crypto.py", "# highseas_crypto.py"),
    "node": ("highseas_crypto.mjs", "// highseas_crypto.mjs"),
    "go": ("highseas_crypto.go", "// highseas_crypto.go"),
    "java": ("HighseasCrypto.java", "// HighseasCrypto.java"),
}
# The contract asks for these two to be run; the others run where their toolchain exists.
REQUIRED = {"python", "node"}
PHONE = "13900000001"
COMPANY = "腾讯科技（深圳）有限公司"

Run = Callable[..., subprocess.CompletedProcess[str]]


def _example(first_line: str) -> str:
    for block in re.findall(r"```\w*\n(.*?)```", DOC.read_text(), flags=re.DOTALL):
        if block.startswith(first_line):
            return str(block)
    raise AssertionError(f"docs/encryption.md has no example starting with {first_line!r}")


def _needs(tool: str, language: str) -> None:
    if shutil.which(tool) is not None:
        return
    if language in REQUIRED and IN_CI:
        pytest.fail(f"{tool} is not installed (required under CI)")
    pytest.skip(f"{tool} is not installed")


def _command(language: str, directory: Path) -> list[str]:
    """The command that runs the example (built first where the language compiles)."""
    file_name, first_line = EXAMPLES[language]
    script = directory / file_name
    script.write_text(_example(first_line), encoding="utf-8")
    if language == "python":
        return [sys.executable, str(script)]
    if language == "node":
        _needs("node", language)
        return ["node", str(script)]
    if language == "go":
        _needs("go", language)
        binary = directory / "highseas_crypto"
        cache = Path(tempfile.gettempdir()) / "highseas-tests-gocache"
        env = {**os.environ, "GOCACHE": str(cache)}
        subprocess.run(["go", "build", "-o", str(binary), str(script)], check=True, env=env)
        return [str(binary)]
    _needs("java", language)
    if shutil.which("javac") is None:
        return ["java", str(script)]  # single-file source launch, as the doc shows
    subprocess.run(["javac", "-d", str(directory), str(script)], check=True)
    return ["java", "-cp", str(directory), "HighseasCrypto"]


def _runner(command: list[str], key: str) -> Run:
    # A UTF-8 locale: Java reads its arguments in the locale's encoding.
    env = {**os.environ, "HIGHSEAS_ENCRYPTION_KEY": key, "LC_ALL": "C.UTF-8"}

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, *args],
            env=env,
            capture_output=True,
            text=True,
            encoding="utf-8",
            check=check,
            timeout=60,
        )

    return run


@pytest.mark.parametrize("language", list(EXAMPLES))
async def test_the_documented_example_against_the_service(
    client: httpx.AsyncClient, db: Database, settings: Settings, tmp_path: Path, language: str
) -> None:
    command = _command(language, tmp_path)
    agent = await make_agent(db)
    user = await make_user(db, agent)
    base = f"/agent-api/user/{user.id}"
    switched = await client.put(
        "/agent-api/encryption", json={"enabled": True}, headers=agent.headers
    )
    run = _runner(command, switched.json()["data"]["key"])

    def encrypt(text: str) -> str:
        return run("encrypt", text).stdout.strip()

    # Rows encrypted by the example go into the pool…
    row = {"phone": encrypt(PHONE), "company": encrypt(COMPANY)}
    accepted = await client.post(
        f"{base}/async_customer", json={"data": [row], "encryption": True}, headers=agent.headers
    )
    assert accepted.status_code == 200, accepted.text
    await run_jobs(db, settings)
    done = await client.get(
        f"{base}/identification/{accepted.json()['data']['unique_id']}", headers=agent.headers
    )
    assert done.json()["data"]["data"]["created"] == 1, done.text

    # …are found by a phone the example encrypted, and come back as its cipher text.
    found = await client.post(
        f"{base}/get_customer",
        json={"phone": encrypt("+86 139 0000 0001"), "encryption": True},
        headers=agent.headers,
    )
    [customer] = found.json()["data"]
    assert customer["company"] == COMPANY
    assert customer["phone"] != PHONE
    assert run("decrypt", customer["phone"]).stdout.strip() == PHONE

    # The example refuses an altered token.
    refused = run("decrypt", garbled(customer["phone"]), check=False)
    assert refused.returncode != 0 and PHONE not in refused.stdout
