"""Dagster's project tooling (dg, from dagster-dg-cli) loads this repository as a project."""

import json
import os
import subprocess
import sys

from recsys_dagster.definitions import ASSETS
from recsys_dagster.paths import REPO_ROOT


def test_dg_lists_every_asset_with_its_group():
    dg = os.path.join(os.path.dirname(sys.executable), "dg")
    out = subprocess.run([dg, "list", "defs", "--json"], cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    listed = json.loads(out.stdout[out.stdout.index("{"):])
    groups = {a["asset_key"]: a["group_name"] for a in listed["assets"]}
    want = {key.to_user_string(): asset.group_names_by_key[key]
            for asset in ASSETS for key in asset.keys}
    assert groups == want
    assert {"recsys_pipeline", "retrain_and_publish"} <= {j["name"] for j in listed["jobs"]}
