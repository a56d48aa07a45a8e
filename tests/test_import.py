"""`import stepstone` is light: no database driver, no rich, no pydantic, and fast; the CLI's
process loads neither ssl nor OpenSSL to run a workflow."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(json.loads(out))


# jsonschema costs ~80 ms to import (jsonschema-rs ~10 ms): both come at the first schema checked
HEAVY = (
    "psycopg",
    "psycopg_pool",
    "rich",
    "pydantic",
    "jsonschema",
    "jsonschema_rs",
    "opentelemetry",
)


def test_import_stepstone_loads_no_driver_or_heavy_dependency() -> None:
    loaded = _modules_after("import stepstone")
    for heavy in (*HEAVY, "sqlite3", "asyncio"):
        assert heavy not in loaded, f"import stepstone imported {heavy}"


def test_using_the_client_loads_sqlite_but_no_other_driver() -> None:
    loaded = _modules_after("from stepstone import Client, Worker, WorkflowContext, open_store")
    assert "sqlite3" in loaded or "stepstone.store" in loaded
    for heavy in HEAVY:
        assert heavy not in loaded, f"the client imported {heavy}"


def test_sha256_gives_hashlibs_digests() -> None:
    """Code versions and ids hash with CPython's own SHA-256: the same digests as hashlib's."""
    import hashlib

    from stepstone.core.digest import sha256

    for data in (b"", b"abc", bytes(range(256)) * 40, "é\u2603".encode()):
        assert sha256(data).hexdigest() == hashlib.sha256(data).hexdigest()
        assert sha256(data).digest() == hashlib.sha256(data).digest()
    grown = sha256(b"ab")
    grown.update(b"c")
    assert grown.hexdigest() == hashlib.sha256(b"abc").hexdigest()


def test_stepstone_run_f_loads_neither_ssl_nor_openssl(tmp_path: Path) -> None:
    """A `stepstone run -f` process: the run's own step sees no ssl and no _hashlib loaded
    (asyncio's ssl is deferred, digests are CPython's; see cli/deferred_ssl.py, core/digest.py)."""
    (tmp_path / "probe.py").write_text(
        "import sys\n\n"
        "def loaded(**inputs):\n"
        "    return sorted({'ssl', '_ssl', 'hashlib', '_hashlib'} & set(sys.modules))\n"
    )
    (tmp_path / "flow.yaml").write_text(
        "schema_version: stepstone/v1\n"
        "workflow:\n"
        "  id: probe\n"
        "  steps:\n"
        "    - id: look\n"
        "      kind: python\n"
        "      function: probe:loaded\n"
        "    - id: done\n"
        "      kind: end\n"
        "      result: ${steps.look.outputs}\n"
    )
    stepstone = Path(sys.executable).parent / "stepstone"
    db = tmp_path / "s.db"
    done = subprocess.run(
        [str(stepstone), "run", "-f", "flow.yaml", "--db", str(db), "--json"],
        cwd=tmp_path,
        env={**os.environ, "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["data"]["result"] == []


TLS_ROUND_TRIP = """
import json, sys
from stepstone.cli.deferred_ssl import DeferredSsl, import_asyncio

import_asyncio()
import asyncio, asyncio.base_events, asyncio.sslproto
before = {
    "ssl_loaded": "ssl" in sys.modules,
    "deferred": isinstance(asyncio.base_events.ssl, DeferredSsl),
    "again_errors": hasattr(asyncio.sslproto, "SSLAgainErrors"),
}

async def main(pem):
    import ssl
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(pem)

    async def echo(reader, writer):
        writer.write((await reader.readline()).upper())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=server_side)
    port = server.sockets[0].getsockname()[1]
    # ssl=True: asyncio makes the default context itself (SSL_CERT_FILE trusts the test's cert)
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=True)
    writer.write(b"hello\\n")
    line = await reader.readline()
    writer.close()
    server.close()
    return line.decode().strip()

echoed = asyncio.run(main(sys.argv[1]))
print(json.dumps({
    **before,
    "echoed": echoed,
    "real_after": asyncio.base_events.ssl is sys.modules["ssl"],
    "again_after": asyncio.sslproto.SSLAgainErrors == (
        sys.modules["ssl"].SSLWantReadError, sys.modules["ssl"].SSLSyscallError),
}))
"""


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_asyncio_with_deferred_ssl_still_speaks_tls(tmp_path: Path) -> None:
    """After the CLI's import_asyncio, ssl is not loaded; the first TLS use (here ssl=True,
    where asyncio builds the context itself) loads it and TLS works as usual."""
    pem, crt = tmp_path / "key.pem", tmp_path / "cert.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=test", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(pem), "-out", str(crt)],
        check=True, capture_output=True,
    )  # fmt: skip
    pem.write_text(pem.read_text() + crt.read_text())
    done = subprocess.run(
        [sys.executable, "-c", TLS_ROUND_TRIP, str(pem)],
        env={**os.environ, "SSL_CERT_FILE": str(crt)},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "ssl_loaded": False,
        "deferred": True,
        "again_errors": False,
        "echoed": "HELLO",
        "real_after": True,
        "again_after": True,
    }


def test_run_ids_are_base32_of_their_bytes_in_the_crockford_alphabet() -> None:
    """ids.base32 writes what base64.b32encode does, in stepstone's alphabet, so ids made before
    and after it sort together."""
    import base64
    import random

    from stepstone.core.ids import _ALPHABET, base32, new_run_id

    rfc = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _ALPHABET.encode())
    chooser = random.Random(3)
    for raw in [bytes(16), b"\xff" * 16, *(chooser.randbytes(16) for _ in range(2000))]:
        assert base32(raw) == base64.b32encode(raw)[:26].translate(rfc).decode()
    first, second = new_run_id(), new_run_id()
    assert len(first) == 26 and set(first) <= set(_ALPHABET) and first != second
