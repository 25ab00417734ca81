"""python -m recsys_dagster.deployment serve | stop | status (what `make serve` and `make stop`
run); settings from the environment over deploy/deployment.env."""

import argparse
import sys

from ..settings import SettingError
from .postgres import PostgresError
from .serve import Deployment


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recsys_dagster.deployment",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["serve", "stop", "status"])
    args = parser.parse_args(argv)
    try:
        deployment = Deployment.from_environment()
        if args.command == "serve":
            deployment.start()
        elif args.command == "stop":
            deployment.stop()
        else:
            for name, up in deployment.status().items():
                print(f"{name:12s} {'running' if up else 'stopped'}")
    except (SettingError, PostgresError, TimeoutError) as err:
        print(f"{args.command}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
