"""The ``api`` step's executor against a real HTTP server on 127.0.0.1, and its SSRF guard."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from stepstone.errors import ApiCallFailed, ApiTimeout, BlockedAddress, InvalidArgument
from stepstone.spec.http import blocked_reason, call_api, check_addresses

LOCAL = ["127.0.0.1"]


class Server:
    """A test server: routes by path; ``hits`` counts requests, ``release`` frees /hang."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.hits.append(f"{self.command} {self.path}")
                route = {
                    "/json": lambda: self.reply(
                        200, b'{"ok": true, "n": [1, 2]}', "application/json"
                    ),
                    "/text": lambda: self.reply(
                        404, "nope ✓".encode(), "text/plain; charset=utf-8"
                    ),
                    "/meta": lambda: self.redirect(302, "http://169.254.169.254/latest/meta-data/"),
                    "/loop": lambda: self.redirect(302, "/loop"),
                    "/hop": lambda: self.redirect(307, "/echo"),
                    "/see-other": lambda: self.redirect(303, "/echo"),
                    "/file": lambda: self.redirect(302, "file:///etc/passwd"),
                    "/hang": self.hang,
                }.get(self.path, self.echo)
                route()

            do_POST = do_PUT = do_GET

            def echo(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                seen = {
                    "method": self.command,
                    "path": self.path,
                    "body": body,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                }
                self.reply(201, json.dumps(seen).encode(), "application/json", {"X-Seen": "yes"})

            def hang(self) -> None:
                server.release.wait(10)

            def redirect(self, status: int, location: str) -> None:
                self.reply(status, b"", "text/plain", {"Location": location})

            def reply(
                self, status: int, body: bytes, ctype: str, extra: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    thread = threading.Thread(target=srv.httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.release.set()
        srv.httpd.shutdown()
        srv.httpd.server_close()


def test_loopback_is_refused_by_default_naming_host_and_address(server: Server) -> None:
    with pytest.raises(BlockedAddress) as caught:
        call_api("GET", server.url + "/json")
    assert (caught.value.host, caught.value.address) == ("127.0.0.1", "127.0.0.1")
    assert "'127.0.0.1' resolves to 127.0.0.1, a loopback address" in str(caught.value)
    assert server.hits == []


@pytest.mark.parametrize("allow", ["127.0.0.1", "127.0.0.1:{port}"])
def test_an_allowed_host_is_called_and_json_is_parsed(server: Server, allow: str) -> None:
    allow = allow.format(port=server.url.rsplit(":", 1)[1])
    result = call_api("GET", server.url + "/json", allow_hosts=[allow])
    assert result.status == 200
    assert result.json == {"ok": True, "n": [1, 2]}
    assert result.headers["content-type"] == "application/json"
    assert result.url == server.url + "/json"


def test_a_non_json_response_is_text_whatever_its_status(server: Server) -> None:
    result = call_api("GET", server.url + "/text", allow_hosts=LOCAL)
    assert (result.status, result.body_text, result.json) == (404, "nope ✓", None)


def test_a_post_sends_its_body_as_json_with_the_headers(server: Server) -> None:
    result = call_api(
        "post",
        server.url + "/things?x=1",
        headers={"Authorization": "Bearer t0k", "X-Trace": "abc"},
        body={"name": "é", "n": 1},
        allow_hosts=LOCAL,
    )
    assert result.status == 201
    assert result.headers["x-seen"] == "yes"
    seen = result.json
    assert (seen["method"], seen["path"]) == ("POST", "/things?x=1")
    assert json.loads(seen["body"]) == {"name": "é", "n": 1}
    assert seen["headers"]["content-type"] == "application/json"
    assert seen["headers"]["authorization"] == "Bearer t0k"
    assert seen["headers"]["x-trace"] == "abc"
    assert seen["headers"]["host"] == server.url.removeprefix("http://")


def test_redirects_are_followed_keeping_or_dropping_the_body_by_status(server: Server) -> None:
    kept = call_api("PUT", server.url + "/hop", body=[1], allow_hosts=LOCAL).json
    assert (kept["method"], kept["path"], kept["body"]) == ("PUT", "/echo", "[1]")
    dropped = call_api("POST", server.url + "/see-other", body=[1], allow_hosts=LOCAL).json
    assert (dropped["method"], dropped["body"]) == ("GET", "")


def test_a_redirect_to_the_metadata_address_is_refused_before_connecting(server: Server) -> None:
    started = time.monotonic()
    with pytest.raises(BlockedAddress) as caught:
        call_api("GET", server.url + "/meta", allow_hosts=LOCAL, timeout_s=20)
    error = caught.value
    assert error.address == "169.254.169.254"
    assert error.redirected_from == server.url + "/meta"
    assert "a redirect from" in str(error)
    assert "link-local" in str(error)
    assert time.monotonic() - started < 5  # no connect attempt timing out


def test_a_redirect_loop_is_capped(server: Server) -> None:
    with pytest.raises(ApiCallFailed, match="more than 3 redirects"):
        call_api("GET", server.url + "/loop", allow_hosts=LOCAL, max_redirects=3)
    assert server.hits == ["GET /loop"] * 4


def test_a_redirect_to_another_scheme_is_refused(server: Server) -> None:
    with pytest.raises(InvalidArgument, match=r"a redirect from .*not 'file'"):
        call_api("GET", server.url + "/file", allow_hosts=LOCAL)


@pytest.mark.parametrize(
    "url",
    ["http://[::1]:9/", "http://localhost:9/", "http://0.0.0.0:9/", "http://2130706433:9/"],
)
def test_loopback_in_any_spelling_is_refused(url: str) -> None:
    with pytest.raises(BlockedAddress):
        call_api("GET", url)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x", "gopher://x/"])
def test_only_http_and_https_are_called(url: str) -> None:
    with pytest.raises(InvalidArgument, match="only http and https"):
        call_api("GET", url)


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("10.1.2.3", "private"),
        ("172.31.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("240.0.0.1", "reserved"),
        ("192.0.2.1", "non-public"),
        ("::ffff:127.0.0.1", "loopback (IPv4-mapped)"),
        ("::ffff:169.254.169.254", "link-local"),
        ("64:ff9b::a9fe:a9fe", "link-local"),
        ("2002:a00:1::", "private"),
        ("::1", "loopback"),
    ],
)
def test_blocked_reason_names_each_inward_range(address: str, why: str) -> None:
    assert why in (blocked_reason(address) or "")


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:4700::1111", "1.1.1.1"])
def test_public_addresses_pass(address: str) -> None:
    assert blocked_reason(address) is None


def test_one_private_address_among_several_refuses_the_host() -> None:
    with pytest.raises(BlockedAddress) as caught:
        check_addresses("http://multi.example/", "multi.example", ["93.184.216.34", "10.0.0.7"])
    assert (caught.value.host, caught.value.address) == ("multi.example", "10.0.0.7")


def test_a_server_that_never_answers_times_out(server: Server) -> None:
    started = time.monotonic()
    with pytest.raises(ApiTimeout, match=r"no response within 0\.3s"):
        call_api("GET", server.url + "/hang", allow_hosts=LOCAL, timeout_s=0.3)
    assert time.monotonic() - started < 5


def test_a_closed_port_fails_clearly() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ApiCallFailed, match="ConnectionRefused"):
        call_api("GET", f"http://127.0.0.1:{port}/", allow_hosts=LOCAL)


def test_a_header_with_a_newline_is_refused() -> None:
    with pytest.raises(InvalidArgument):
        call_api("GET", "http://127.0.0.1:9/", headers={"X": "a\r\nEvil: 1"}, allow_hosts=LOCAL)


def _self_signed(tmp_path: Path, san: str) -> Path:
    """A certificate + key (one PEM file) for ``san``, made by the openssl command."""
    pem = tmp_path / f"{san.replace(':', '_')}.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=test", "-addext", f"subjectAltName={san}",
         "-keyout", str(pem), "-out", str(pem.with_suffix(".crt"))],
        check=True, capture_output=True,
    )  # fmt: skip
    pem.write_text(pem.read_text() + pem.with_suffix(".crt").read_text())
    return pem


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
@pytest.mark.parametrize(("san", "works"), [("IP:127.0.0.1", True), ("DNS:other.example", False)])
def test_https_verifies_the_certificate_against_the_host(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, san: str, works: bool
) -> None:
    pem = _self_signed(tmp_path, san)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pem)
    server.httpd.socket = context.wrap_socket(server.httpd.socket, server_side=True)
    url = server.url.replace("http://", "https://") + "/json"
    with pytest.raises(ApiCallFailed, match="CERTIFICATE_VERIFY_FAILED"):
        call_api("GET", url, allow_hosts=LOCAL)  # not trusted: self-signed
    monkeypatch.setenv("SSL_CERT_FILE", str(pem.with_suffix(".crt")))  # now trusted
    if works:
        assert call_api("GET", url, allow_hosts=LOCAL).json == {"ok": True, "n": [1, 2]}
    else:
        with pytest.raises(ApiCallFailed, match="match"):
            call_api("GET", url, allow_hosts=LOCAL)
