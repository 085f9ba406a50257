"""The downloader against a local HTTP server on 127.0.0.1 (there is no internet here)."""

import http.server
import shutil
import socket
import threading

import pytest

from bayesmetal.errors import FetchError
from bayesmetal.fetch import fetch, fetch_file


class Handler(http.server.SimpleHTTPRequestHandler):
    """Serves files from a folder; /cut/<path> promises the full length but sends half."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path.startswith("/cut/"):
            body = (self.server.root / self.path[len("/cut/") :]).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture()
def server(tmp_path, synthetic_nhanes):
    root = tmp_path / "www"
    files = root / "2013" / "DataFiles"
    files.mkdir(parents=True)
    shutil.copy(synthetic_nhanes / "2013-2014" / "DEMO_H.XPT", files / "DEMO_H.xpt")
    shutil.copy(synthetic_nhanes / "2013-2014" / "BMX_H.XPT", files / "BMX_H.xpt")
    good = (files / "DEMO_H.xpt").read_bytes()
    (files / "SHORT_H.xpt").write_bytes(good[: len(good) - 1000])
    (files / "PAGE_H.xpt").write_text("<html><body>Page not found</body></html>")

    def handler(*args, **kwargs):
        return Handler(*args, directory=str(root), **kwargs)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.root = root
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_downloads_then_skips_present_files(server, tmp_path):
    dest = tmp_path / "nhanes"
    first = fetch(["2013-2014"], ["DEMO", "BMX"], dest, base_url=server)
    assert [r.status for r in first] == ["downloaded", "downloaded"]
    assert (dest / "2013-2014" / "DEMO_H.XPT").is_file()
    again = fetch(["2013-2014"], ["DEMO"], dest, base_url=server)
    assert again[0].status == "present"


def _no_partial_files(folder):
    return [p.name for p in folder.rglob("*") if p.is_file()]


def test_interrupted_download_leaves_nothing(server, tmp_path):
    target = tmp_path / "out" / "DEMO_H.XPT"
    with pytest.raises(FetchError, match="truncated|interrupted"):
        fetch_file(f"{server}/cut/2013/DataFiles/DEMO_H.xpt", target, timeout=10)
    assert _no_partial_files(tmp_path / "out") == []


def test_truncated_file_is_rejected(server, tmp_path):
    with pytest.raises(FetchError, match="truncated|cannot be read"):
        fetch_file(f"{server}/2013/DataFiles/SHORT_H.xpt", tmp_path / "SHORT_H.XPT", timeout=10)
    assert not (tmp_path / "SHORT_H.XPT").exists()


def test_html_instead_of_xpt_is_rejected(server, tmp_path):
    with pytest.raises(FetchError, match="not a SAS transport"):
        fetch_file(
            f"{server}/2013/DataFiles/PAGE_H.xpt", tmp_path / "got" / "PAGE_H.XPT", timeout=10
        )
    assert _no_partial_files(tmp_path / "got") == []


def test_missing_file_reports_http_status(server, tmp_path):
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch(["2013-2014"], ["DXX"], tmp_path, base_url=server, timeout=10)


def test_offline_is_a_clear_error(tmp_path):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(FetchError, match="cannot reach.*offline"):
        fetch(["2013-2014"], ["DEMO"], tmp_path, base_url=f"http://127.0.0.1:{port}", timeout=5)
