"""The downloader against a local HTTP server on 127.0.0.1 (there is no internet here)."""

import errno
import http.server
import shutil
import socket
import threading

import pytest

from bayesmetal import fetch as fetch_module
from bayesmetal import xpt
from bayesmetal.errors import ConfigError, FetchError
from bayesmetal.fetch import REPLACED, fetch, fetch_file

from .test_xpt import cut_copy


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
def www(tmp_path):
    """The folder the server serves: <first year>/DataFiles/<NAME>.xpt, like CDC."""
    return tmp_path / "www"


@pytest.fixture()
def server(www, synthetic_nhanes):
    root = www
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


@pytest.fixture()
def catalogued_pbcd(synthetic_nhanes, monkeypatch):
    """Synthetic PBCD_H standing in for a catalogued CDC file."""
    full = synthetic_nhanes / "2013-2014" / "PBCD_H.XPT"
    monkeypatch.setattr(
        xpt, "catalogue", lambda: {"2013-2014/PBCD_H.XPT": xpt.catalogue_entry(full)}
    )
    return full


def test_catalogued_file_cut_at_a_record_boundary_is_not_kept(
    server, www, catalogued_pbcd, tmp_path
):
    cut_copy(catalogued_pbcd, www / "2013" / "DataFiles" / "PBCD_H.xpt", "whole")
    dest = tmp_path / "nhanes"
    with pytest.raises(
        FetchError,
        match=r"PBCD_H\.xpt is truncated: .* imply 250 observations but the CDC file has 500 "
        r".*the download was not kept",
    ):
        fetch(["2013-2014"], ["PBCD"], dest, base_url=server, timeout=10)
    assert _no_partial_files(dest) == []


def test_real_cdc_file_cut_at_a_record_boundary_is_not_kept(server, www, shared_nhanes, tmp_path):
    full = shared_nhanes / "2017-2018" / "PBCD_J.XPT"
    layout = xpt.read_layout(full)
    served = www / "2017" / "DataFiles" / "PBCD_J.xpt"
    served.parent.mkdir(parents=True)
    served.write_bytes(full.read_bytes()[: layout.data_start + 4170 * layout.row_length])
    dest = tmp_path / "nhanes"
    with pytest.raises(FetchError, match=r"4,170 observations but the CDC file has 8,366"):
        fetch(["2017-2018"], ["PBCD"], dest, base_url=server, timeout=10)
    assert _no_partial_files(dest) == []
    shutil.copy(full, served)
    [result] = fetch(["2017-2018"], ["PBCD"], dest, base_url=server, timeout=10)
    assert (result.status, result.verification) == ("downloaded", xpt.CATALOGUE_VERIFIED)


def test_present_truncated_file_is_replaced(server, www, catalogued_pbcd, tmp_path):
    shutil.copy(catalogued_pbcd, www / "2013" / "DataFiles" / "PBCD_H.xpt")
    dest = tmp_path / "nhanes"
    cut_copy(catalogued_pbcd, dest / "2013-2014" / "PBCD_H.XPT", "whole")  # looks whole
    cut_copy(catalogued_pbcd, dest / "2013-2014" / "DEMO_H.XPT", "record")  # damaged DEMO
    results = fetch(["2013-2014"], ["PBCD", "DEMO"], dest, base_url=server, timeout=10)
    assert [(r.status, r.verification) for r in results] == [
        (REPLACED, xpt.CATALOGUE_VERIFIED),
        (REPLACED, xpt.STRUCTURE_ONLY),
    ]
    assert (dest / "2013-2014" / "PBCD_H.XPT").read_bytes() == catalogued_pbcd.read_bytes()
    again = fetch(["2013-2014"], ["PBCD"], dest, base_url=server, timeout=10)
    assert (again[0].status, again[0].verification) == ("present", xpt.CATALOGUE_VERIFIED)


@pytest.mark.parametrize("component", ["../../x", "DEMO/../../X", "..", "demo", "DEMO H", ""])
def test_components_that_are_not_dataset_names_are_refused(tmp_path, component):
    with pytest.raises(ConfigError, match=r"--components"):
        fetch(["2013-2014"], [component], tmp_path / "dest", base_url="http://127.0.0.1:9")
    assert list(tmp_path.iterdir()) == []


def test_cycle_that_is_not_a_label_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown NHANES cycle '\.\./\.\./x'"):
        fetch(["../../x"], ["DEMO"], tmp_path / "dest", base_url="http://127.0.0.1:9")


def test_target_outside_dest_is_refused(tmp_path):
    (tmp_path / "dest").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "dest" / "2013-2014").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ConfigError, match=r"2013-2014/DEMO would be written outside --dest"):
        fetch(["2013-2014"], ["DEMO"], tmp_path / "dest", base_url="http://127.0.0.1:9")


@pytest.mark.parametrize("base_url", ["notaurl", "ftp://x", "http://", "http://[::1", "file:///x"])
def test_bad_base_url_is_a_named_error(tmp_path, base_url):
    with pytest.raises(FetchError, match=r"--base-url"):
        fetch(["2013-2014"], ["DEMO"], tmp_path, base_url=base_url)


def test_url_that_urllib_refuses_is_a_named_error(tmp_path):
    with pytest.raises(FetchError, match=r"is not a valid address: nonnumeric port"):
        fetch(["2013-2014"], ["DEMO"], tmp_path, base_url="http://127.0.0.1:port")


def test_full_disk_is_a_named_error_and_leaves_nothing(server, tmp_path, monkeypatch):
    real_open = open

    class FullDisk:
        """A file on a disk that fills up after the first bytes."""

        def __init__(self, path, mode):
            self.file = real_open(path, mode)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

        def write(self, block):
            self.file.write(block[:100])
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fetch_module, "open", FullDisk, raising=False)
    dest = tmp_path / "nhanes"
    with pytest.raises(
        FetchError,
        match=r"disk is full: cannot write \S*nhanes/2013-2014/DEMO_H\.XPT \(downloading",
    ):
        fetch(["2013-2014"], ["DEMO"], dest, base_url=server, timeout=10)
    assert _no_partial_files(dest) == []


def test_cli_prints_the_verification_and_refuses_a_bad_url(server, tmp_path, capsys):
    from bayesmetal.cli import fetch_main

    args = ["--cycles", "2013-2014", "--components", "DEMO", "--dest", str(tmp_path)]
    assert fetch_main([*args, "--base-url", server]) == 0
    assert f"bytes, {xpt.OTHER_RELEASE})" in capsys.readouterr().out
    assert fetch_main([*args, "--base-url", "notaurl"]) == 2
    assert "error: --base-url 'notaurl'" in capsys.readouterr().err


def test_cli_lists_files_fetched_before_a_failure(server, tmp_path, capsys):
    """The downloader used to print nothing when a later file failed."""
    from bayesmetal.cli import fetch_main

    args = ["--cycles", "2013-2014", "--components", "DEMO", "DXX", "--dest", str(tmp_path)]
    assert fetch_main([*args, "--base-url", server]) == 2  # DXX is not served
    printed = capsys.readouterr()
    assert "DEMO_H.XPT" in printed.out and "downloaded" in printed.out
    assert "DXX_H" in printed.err and "404" in printed.err


def test_damaged_present_file_is_removed_and_a_failed_download_says_so(
    server, synthetic_nhanes, tmp_path
):
    dest = tmp_path / "nhanes"
    target = cut_copy(
        synthetic_nhanes / "2013-2014" / "DXX_H.XPT", dest / "2013-2014" / "DXX_H.XPT", "record"
    )
    with pytest.raises(
        FetchError,
        match=r"HTTP 404 .*; the damaged copy that was at \S*DXX_H\.XPT failed its checks and "
        r"was removed$",
    ):
        fetch(["2013-2014"], ["DXX"], dest, base_url=server, timeout=10)  # not served
    assert not target.exists()


def test_present_file_that_cannot_be_read_is_kept(server, synthetic_nhanes, tmp_path, monkeypatch):
    dest = tmp_path / "nhanes"
    target = dest / "2013-2014" / "DEMO_H.XPT"
    target.parent.mkdir(parents=True)
    shutil.copy(synthetic_nhanes / "2013-2014" / "DEMO_H.XPT", target)
    before = target.read_bytes()

    def denied(path):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(xpt, "sha256", denied)
    with pytest.raises(
        FetchError,
        match=r"cannot read \S*DEMO_H\.XPT to check it \(.*Permission denied.*\); "
        "it was left as it is",
    ):
        fetch(["2013-2014"], ["DEMO"], dest, base_url=server, timeout=10)
    assert target.read_bytes() == before


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf")])
def test_timeout_must_be_positive(tmp_path, timeout):
    with pytest.raises(FetchError, match="--timeout must be a positive number of seconds"):
        fetch(["2013-2014"], ["DEMO"], tmp_path / "dest", timeout=timeout)
    assert list(tmp_path.iterdir()) == []
