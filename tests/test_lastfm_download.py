"""Last.fm for anyone: without a local copy, the lastfm_hetrec source downloads the HetRec 2011
archive once into its cache and checks the files against the recorded checksums. The archive
is made from the local copy and served from a loopback HTTP server: the suite never leaves the
machine."""

import functools
import os
import threading
import zipfile
from http.server import HTTPServer, SimpleHTTPRequestHandler

import pytest
from spark_cluster import free_port

from recsys_dagster.ml.ingest import lastfm, sources


class Quiet(SimpleHTTPRequestHandler):
    requests: list = []

    def do_GET(self):  # noqa: N802 - http.server's name
        Quiet.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


def make_archive(path, lastfm_dir, change=None):
    """The published layout (the files at the archive's root); `change` replaces a file's
    first byte to make it another file."""
    with zipfile.ZipFile(path, "w") as zf:
        for name in ("user_artists.dat", "artists.dat"):
            data = open(os.path.join(lastfm_dir, name), "rb").read()
            if name == change:
                data = b"#" + data[1:]
            zf.writestr(name, data)
        zf.writestr("readme.txt", "HetRec 2011 Last.fm, as the suite serves it")


@pytest.fixture
def served(tmp_path, lastfm_dir):
    """URLs of a good archive and of one with another user_artists.dat, on loopback."""
    root = tmp_path / "www"
    root.mkdir()
    make_archive(root / "good.zip", lastfm_dir)
    make_archive(root / "changed.zip", lastfm_dir, change="user_artists.dat")
    server = HTTPServer(("127.0.0.1", 0),
                        functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Quiet.requests = []
    base = f"http://127.0.0.1:{server.server_port}"
    yield {"good": f"{base}/good.zip", "changed": f"{base}/changed.zip", "server": server}
    server.shutdown()
    server.server_close()


def test_a_missing_folder_is_filled_once_from_the_archive(tmp_path, served, lastfm_dir):
    cache = str(tmp_path / "cache" / "lastfm-2k")
    got = lastfm.lastfm_folder(str(tmp_path / "absent"), cache, served["good"])
    assert got == cache and Quiet.requests == ["/good.zip"]
    for name in ("user_artists.dat", "artists.dat"):
        assert open(os.path.join(cache, name), "rb").read() == \
            open(os.path.join(lastfm_dir, name), "rb").read()
    assert sorted(os.listdir(tmp_path / "cache")) == ["lastfm-2k"]  # no work files left
    served["server"].shutdown()  # from now on, no network
    assert lastfm.lastfm_folder(str(tmp_path / "absent"), cache, served["good"]) == cache
    assert Quiet.requests == ["/good.zip"]


def test_a_folder_with_the_data_is_read_as_it_is(tmp_path, lastfm_dir):
    nowhere = f"http://127.0.0.1:{free_port()}/none.zip"
    assert lastfm.lastfm_folder(lastfm_dir, str(tmp_path / "cache"), nowhere) == lastfm_dir
    assert not (tmp_path / "cache").exists()


def test_a_changed_file_is_refused_and_nothing_is_cached(tmp_path, served):
    cache = tmp_path / "cache" / "lastfm-2k"
    with pytest.raises(lastfm.ChecksumError, match="user_artists.dat .* not the published"):
        lastfm.lastfm_folder(str(tmp_path / "absent"), str(cache), served["changed"])
    assert os.listdir(tmp_path / "cache") == []


def test_no_network_says_what_to_do(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/hetrec2011-lastfm-2k.zip"  # nothing listens
    with pytest.raises(lastfm.DownloadError) as err:
        lastfm.lastfm_folder(str(tmp_path / "absent"), str(tmp_path / "cache"), url)
    message = str(err.value)
    assert url in message and "lastfm_dir" in message and "absent" in message
    assert os.listdir(tmp_path) == []  # no cache, no work files


def test_the_source_reads_the_downloaded_copy(spark, tmp_path, served, monkeypatch):
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path / "data"))
    params = sources.PlaySource(source="lastfm_hetrec", lastfm_dir=str(tmp_path / "absent"),
                                lastfm_url=served["good"])
    raw, names, has_plays, where = sources.read_source(spark, params)
    assert where == str(tmp_path / "data" / "_downloads" / "lastfm-2k") and has_plays
    assert raw.count() == 92834 and raw.where("_reason is not null").count() == 0
    assert names.count() == 17632
