"""The deployment's own PostgreSQL server: a cluster in a folder of its own, made with initdb on
first start, listening on 127.0.0.1 only, with a password generated once.

PostgreSQL refuses to run as root, so when we are root the server runs as the unprivileged
`postgres` user (Debian's postgresql package creates it), in a folder that user owns; every
folder above it must let that user pass (x permission). As any other user it runs as that
user. Debian installs the server programs in /usr/lib/postgresql/<version>/bin, off PATH.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SERVER_USER = "postgres"  # who runs the server when we are root


class PostgresError(RuntimeError):
    pass


def server_bin(program: str) -> str:
    """Where a PostgreSQL server program is: on PATH, else Debian's newest versioned folder."""
    found = shutil.which(program)
    if found:
        return found
    versions = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{program}"),
                      key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if not versions:
        raise PostgresError(
            f"PostgreSQL's {program} was not found (PATH, /usr/lib/postgresql/*/bin): install "
            "the server (`apt-get install postgresql`, which scripts/bootstrap.sh does as root) "
            "or point DAGSTER_PG_HOST at an existing server")
    return versions[-1]


def run_user() -> str | None:
    """The user the server runs as: None for ourselves, SERVER_USER when we are root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise PostgresError(f"running as root, and there is no '{SERVER_USER}' user to run "
                            "PostgreSQL as (apt-get install postgresql creates it)") from None
    return SERVER_USER


def as_server_user(cmd: list[str]) -> list[str]:
    user = run_user()
    return ["runuser", "-u", user, "--", *cmd] if user else cmd


@dataclass(frozen=True)
class LocalPostgres:
    """A PostgreSQL cluster under `folder` (data/, server.log, the socket), on 127.0.0.1:port."""

    folder: Path
    port: int
    user: str  # the superuser initdb makes, which the instance connects as
    database: str

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    @property
    def password_file(self) -> Path:
        return self.folder.parent / "postgres.password"

    def password(self) -> str:
        return self.password_file.read_text().strip()

    def initialised(self) -> bool:
        return (self.data / "PG_VERSION").exists()

    def _own(self, path: Path) -> None:
        user = run_user()
        if user:
            entry = pwd.getpwnam(user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _check_reachable(self) -> None:
        user = run_user()
        if user and subprocess.run(["runuser", "-u", user, "--", "test", "-w", str(self.folder)],
                                   capture_output=True).returncode != 0:
            raise PostgresError(
                f"the '{user}' user cannot write {self.folder}: every folder above it must be "
                "passable by other users (chmod o+x); set RECSYS_DEPLOY_DIR to such a place")

    def init(self) -> None:
        """initdb on first start: a password of its own, scram-sha-256 for every connection."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._own(self.folder)
        self._check_reachable()
        if not self.password_file.exists():
            self.password_file.write_text(secrets.token_urlsafe(24) + "\n")
            self.password_file.chmod(0o600)
        pwfile = self.folder / ".initdb-password"
        pwfile.write_text(self.password() + "\n")
        pwfile.chmod(0o600)
        self._own(pwfile)
        try:
            out = subprocess.run(as_server_user([
                server_bin("initdb"), "-D", str(self.data), "-U", self.user, "--pwfile",
                str(pwfile), "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C"]),
                capture_output=True, text=True)
        finally:
            pwfile.unlink(missing_ok=True)
        if out.returncode != 0:
            raise PostgresError(f"initdb failed: {out.stderr.strip()[-2000:]}")

    def start(self, timeout_s: float = 60) -> None:
        if not self.initialised():
            self.init()
        self._check_reachable()
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 "
                   f"-c unix_socket_directories='{self.folder}'")
        out = subprocess.run(as_server_user([
            server_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options,
            "-w", "-t", str(int(timeout_s)), "start"]), capture_output=True, text=True)
        if out.returncode != 0:
            tail = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise PostgresError(f"PostgreSQL did not start: {out.stderr.strip()} {tail}")
        self.create_database()

    def running(self) -> bool:
        if not self.initialised():
            return False
        return subprocess.run(as_server_user([server_bin("pg_ctl"), "-D", str(self.data),
                                              "status"]), capture_output=True).returncode == 0

    def stop(self) -> None:
        if self.running():
            subprocess.run(as_server_user([server_bin("pg_ctl"), "-D", str(self.data), "-m",
                                           "fast", "-w", "stop"]), capture_output=True)

    def connect(self, database: str | None = None):
        import psycopg2

        return psycopg2.connect(host="127.0.0.1", port=self.port, user=self.user,
                                password=self.password(), dbname=database or self.database,
                                connect_timeout=10)

    def create_database(self, attempts: int = 20) -> None:
        """The instance's database, made once."""
        for attempt in range(attempts):
            try:
                conn = self.connect("postgres")
                break
            except Exception:  # noqa: BLE001 - the server may still be opening its port
                if attempt == attempts - 1:
                    raise
                time.sleep(0.5)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,))
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{self.database}"')
        finally:
            conn.close()
