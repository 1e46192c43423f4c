"""Record the commands the app really sends to MongoDB and ask the server how it plans them."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pymongo import MongoClient, monitoring

# Commands that read or pick documents by a filter, and where that filter lives in each.
_FILTERED = {"find", "findAndModify", "aggregate", "count", "update", "delete"}


class _Recorder(monitoring.CommandListener):
    def __init__(self) -> None:
        self.database: str | None = None
        self.commands: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.database_name == self.database and event.command_name in _FILTERED:
            self.commands.append(dict(event.command))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


_recorder = _Recorder()
# Global listeners apply to clients created afterwards, i.e. to every app a test builds.
monitoring.register(_recorder)


@contextmanager
def recorded_commands(database: str) -> Iterator[list[dict[str, Any]]]:
    """Every filtered command sent to `database` inside the block."""
    _recorder.database, _recorder.commands = database, []
    try:
        yield _recorder.commands
    finally:
        _recorder.database = None


def _find_shapes(command: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(collection, find command) for each filter a command applies."""
    name = next(iter(command))
    collection = command[name]
    if name == "find":
        yield collection, {"filter": command.get("filter", {}), "sort": command.get("sort")}
    elif name == "findAndModify":
        yield collection, {"filter": command.get("query", {}), "sort": command.get("sort")}
    elif name == "count":
        yield collection, {"filter": command.get("query", {})}
    elif name == "aggregate":
        first = command["pipeline"][0] if command["pipeline"] else {}
        if "$changeStream" not in first:  # a change stream reads the oplog, not the collection
            yield collection, {"filter": first.get("$match", {})}
    elif name == "update":
        for update in command["updates"]:
            yield collection, {"filter": update["q"]}
    elif name == "delete":
        for delete in command["deletes"]:
            yield collection, {"filter": delete["q"]}


def _stages(plan: dict[str, Any]) -> Iterator[str]:
    yield plan.get("stage", "")
    for key in ("inputStage", "outerStage", "innerStage"):
        if key in plan:
            yield from _stages(plan[key])
    for child in plan.get("inputStages", []):
        yield from _stages(child)


def _index_prefix(filter: dict[str, Any], keys: list[list[str]]) -> dict[str, Any]:
    """The part of `filter` on the leading fields of the index that covers most of them."""
    best: dict[str, Any] = {}
    for key in keys:
        prefix: dict[str, Any] = {}
        for field in key:
            if field not in filter:
                break
            prefix[field] = filter[field]
        if len(prefix) > len(best):
            best = prefix
    return best or filter


def plan_stages(url: str, database: str, commands: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(query, stages of the winning plan) for each filter the commands applied.

    Every filter is explained as the equivalent `find`: that is the question "can the server
    find these documents through an index", whatever the command then does with them.

    SecantusDB's planner (not MongoDB's) reports COLLSCAN for any filter that also tests a
    field outside the index it would use (`{_id, owner_id}`, `{token_hash, used_at}`), though
    it executes the `_id` ones by key; MongoDB uses the index and filters the rest. On that
    engine the filter is explained by its indexed prefix instead, which a MongoDB planner
    would choose; a filter with no indexed prefix is still explained whole and fails.
    """
    results = []
    with MongoClient(url) as client:
        db = client[database]
        is_secantus = "secantusVersion" in client.admin.command("buildInfo")
        for command in commands:
            for collection, shape in _find_shapes(command):
                filter = shape["filter"]
                if is_secantus:
                    keys = [["_id"]] + [
                        [field for field, _ in index["key"]]
                        for index in db[collection].index_information().values()
                    ]
                    filter = _index_prefix(filter, keys)
                find = {"find": collection, "filter": filter}
                if shape.get("sort"):
                    find["sort"] = shape["sort"]
                explained = db.command({"explain": find, "verbosity": "queryPlanner"})
                stages = " > ".join(_stages(explained["queryPlanner"]["winningPlan"]))
                results.append((f"{collection} {shape['filter']}", stages))
    return results


def collection_scans(url: str, database: str, commands: list[dict[str, Any]]) -> list[str]:
    """The queries among `commands` that the server would answer by scanning a collection."""
    return [
        f"{query}: {stages}"
        for query, stages in plan_stages(url, database, commands)
        if "COLLSCAN" in stages
    ]
