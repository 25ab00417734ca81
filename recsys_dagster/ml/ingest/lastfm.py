"""The Last.fm HetRec 2011 data (lastfm-2k) for anyone: a configured folder that holds it is
read as it is; otherwise the public archive is downloaded once into a cache folder, and the two
files the project reads are checked against the checksums below before they are used.

The data: GroupLens, "HetRec 2011 Last.fm dataset", released for the 2nd International
Workshop on Information Heterogeneity and Fusion in Recommender Systems (HetRec 2011).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile

LASTFM_URL = "https://files.grouplens.org/datasets/hetrec2011/hetrec2011-lastfm-2k.zip"
# SHA-256 of the files as GroupLens publishes them (computed from the copy the project was
# developed with). A file that differs is refused: another file would give other results.
CHECKSUMS = {
    "user_artists.dat": "650cd69d5a68db24b439042557aa539aec47e473273e12cdfdca2cd944b3773a",
    "artists.dat": "c173881362c6b28551368fecb3c0be5a6a30a6cd859e1f5775413dfe46d48648",
}
DOWNLOAD_TIMEOUT_SECONDS = 60


class ChecksumError(ValueError):
    """A file of the archive is not the published one."""


class DownloadError(ConnectionError):
    """The archive could not be fetched (no network, the server down)."""


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def has_data(folder: str) -> bool:
    return os.path.isfile(os.path.join(folder, "user_artists.dat"))


def lastfm_folder(folder: str, cache: str, url: str = LASTFM_URL) -> str:
    """The folder to read: `folder` when it holds user_artists.dat; else `cache`, filled from
    `url` the first time (the checked files only; a failed download leaves nothing there)."""
    if has_data(folder):
        return folder
    if all(os.path.isfile(os.path.join(cache, name)) for name in CHECKSUMS):
        return cache
    os.makedirs(os.path.dirname(os.path.abspath(cache)), exist_ok=True)
    work = tempfile.mkdtemp(prefix=".lastfm-", dir=os.path.dirname(os.path.abspath(cache)))
    try:
        archive = os.path.join(work, "archive.zip")
        fetch(url, archive, folder)
        extracted = os.path.join(work, "files")
        extract_checked(archive, extracted)
        shutil.rmtree(cache, ignore_errors=True)
        os.replace(extracted, cache)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return cache


def fetch(url: str, dst: str, folder: str) -> None:
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response, \
                open(dst, "wb") as out:
            shutil.copyfileobj(response, out)
    except (urllib.error.URLError, OSError) as exc:
        raise DownloadError(
            f"no Last.fm data in {folder} (no user_artists.dat), and the archive could not be "
            f"downloaded from {url}: {exc}. On a machine without network, download that "
            f"archive elsewhere, unzip it, and set the source's lastfm_dir to the folder that "
            f"holds user_artists.dat and artists.dat") from exc


def extract_checked(archive: str, dst: str) -> None:
    """The files of CHECKSUMS from the archive (at its root or in one folder) into dst."""
    os.makedirs(dst)
    try:
        with zipfile.ZipFile(archive) as zf:
            members = {os.path.basename(n): n for n in zf.namelist() if not n.endswith("/")}
            for name, expected in CHECKSUMS.items():
                if name not in members:
                    raise ChecksumError(f"the Last.fm archive has no {name}")
                path = os.path.join(dst, name)
                with zf.open(members[name]) as src, open(path, "wb") as out:
                    shutil.copyfileobj(src, out)
                got = sha256(path)
                if got != expected:
                    raise ChecksumError(f"{name} from the Last.fm archive has SHA-256 {got}, "
                                        f"not the published file's {expected}: refused")
    except zipfile.BadZipFile as exc:
        raise ChecksumError(f"the Last.fm download is not a zip archive: {exc}") from exc
