"""Command line: `python -m backend export-openapi [--output FILE]`."""

import argparse
import sys
from pathlib import Path


def _export_openapi(args: argparse.Namespace) -> int:
    from backend.config import Settings
    from backend.main import create_app
    from backend.openapi_export import openapi_yaml

    # The schema depends on code only, never on this machine's environment.
    text = openapi_yaml(create_app(Settings(_env_file=None)))
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend")
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export-openapi", help="write the OpenAPI document as YAML")
    export.add_argument("--output", default="openapi.yaml", help="file to write, or - for stdout")
    export.set_defaults(run=_export_openapi)
    args = parser.parse_args(argv)
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
