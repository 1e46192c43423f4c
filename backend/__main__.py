"""Command line: `python -m backend dev | worker | sandbox-env | clean-data | export-openapi |
create-admin`."""

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from backend.config import Settings


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


def _create_admin(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from backend.config import load_settings
    from schemas.user_schemas import UserCreate

    settings = load_settings()
    try:
        account = UserCreate(email=args.email, password=args.password)
    except ValidationError as exc:
        print("; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors()), file=sys.stderr)
        return 2
    return asyncio.run(_ensure_admin(settings, account.email, account.password))


async def _ensure_admin(settings: "Settings", email: str, password: str) -> int:
    from pymongo.errors import PyMongoError

    from backend.cache import Cache
    from backend.db import Mongo
    from backend.metrics import Metrics
    from backend.redis_client import create_redis
    from backend.security import PasswordHasher
    from backend.services.credentials import Credentials

    mongo = Mongo(settings)
    # The API's own cache: the account's cached copy must go when its sessions end.
    redis = create_redis(settings.cache_redis_url or settings.redis_url, settings)
    try:
        await mongo.ping()
        await mongo.ensure_indexes()
        credentials = Credentials.on(mongo.db, Cache(settings, Metrics(), redis))
        admin = await credentials.ensure_admin(email, password, PasswordHasher())
    except (PyMongoError, TimeoutError) as exc:
        print(f"MongoDB is not reachable: {exc}", file=sys.stderr)
        return 1
    finally:
        await mongo.close()
        if redis is not None:
            await redis.aclose()
    print(f"{admin.email} is an admin (id {admin.id})")
    return 0


def _worker(args: argparse.Namespace) -> int:
    from backend.config import load_settings
    from backend.worker import run_worker

    asyncio.run(run_worker(load_settings(), args.concurrency))
    return 0


def _sandbox_env(args: argparse.Namespace) -> int:
    import os

    from backend.generation.sandbox.environments import (
        KINDS,
        EnvironmentUnavailable,
        environment,
        home_of,
    )

    # Only SANDBOX_HOME matters here: no database or secret is needed to build these.
    home, failed = home_of(os.environ.get("SANDBOX_HOME", "")), 0
    for kind in KINDS:
        try:
            print(environment(kind, home))
        except EnvironmentUnavailable as exc:
            print(f"the {kind} sandbox environment could not be built: {exc}", file=sys.stderr)
            failed = 1
    return failed


def _dev(args: argparse.Namespace) -> int:
    from backend import dev

    return dev.run(args.host, args.port, Path(args.data_dir), args.db_port)


def _clean_data(args: argparse.Namespace) -> int:
    from backend import dev

    return dev.clean_data(Path(args.data_dir))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend")
    commands = parser.add_subparsers(dest="command", required=True)
    dev = commands.add_parser("dev", help="start a local database and serve the API (make run)")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8000)
    dev.add_argument("--db-port", type=int, default=27117, help="port of the local database")
    dev.add_argument("--data-dir", default=".data", help="where the local database keeps data")
    dev.set_defaults(run=_dev)
    worker = commands.add_parser("worker", help="run generation jobs from the Redis queue")
    worker.add_argument("--concurrency", type=int, default=None, help="jobs at once")
    worker.set_defaults(run=_worker)
    sandbox = commands.add_parser(
        "sandbox-env", help="build the sandbox's dependency environment (workers do at start)"
    )
    sandbox.set_defaults(run=_sandbox_env)
    clean = commands.add_parser("clean-data", help="delete the local database's data")
    clean.add_argument("--data-dir", default=".data")
    clean.set_defaults(run=_clean_data)
    export = commands.add_parser("export-openapi", help="write the OpenAPI document as YAML")
    export.add_argument("--output", default="openapi.yaml", help="file to write, or - for stdout")
    export.set_defaults(run=_export_openapi)
    admin = commands.add_parser("create-admin", help="create or promote an admin account")
    admin.add_argument("--email", required=True)
    admin.add_argument("--password", required=True)
    admin.set_defaults(run=_create_admin)
    args = parser.parse_args(argv)
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
