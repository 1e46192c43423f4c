"""Only the owner sees a job: every route is a 404 for anyone else, and for malformed ids."""

import httpx
import pytest

from tests.support.jobs import JOBS, finished, submit

ROUTES = [
    ("GET", ""), ("GET", "/events"), ("GET", "/changes"), ("POST", "/cancel"),
    ("POST", "/revert"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "suffix"), ROUTES)
async def test_another_users_job_is_404(
    client: httpx.AsyncClient,
    alice: dict[str, str],
    bob: dict[str, str],
    method: str,
    suffix: str,
) -> None:
    job = (await submit(client, alice)).json()
    await finished(client, alice, job["id"])
    response = await client.request(method, f"{JOBS}/{job['id']}{suffix}", headers=bob)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize("job_id", ["nope", "0" * 24, "z" * 24, "1" * 200])
@pytest.mark.parametrize(("method", "suffix"), ROUTES)
async def test_unknown_and_malformed_ids_are_404(
    client: httpx.AsyncClient, alice: dict[str, str], method: str, suffix: str, job_id: str
) -> None:
    response = await client.request(method, f"{JOBS}/{job_id}{suffix}", headers=alice)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


async def test_the_job_list_is_the_callers_own_newest_first(
    client: httpx.AsyncClient, alice: dict[str, str], bob: dict[str, str]
) -> None:
    first = (await submit(client, alice)).json()
    await finished(client, alice, first["id"])  # the free plan runs one job at a time
    second = (await submit(client, alice)).json()
    await submit(client, bob)
    await finished(client, alice, second["id"])
    page = (await client.get(JOBS, headers=alice)).json()
    assert [job["id"] for job in page["data"]] == [second["id"], first["id"]]
    assert page["meta"]["total"] == 2
    done = await client.get(JOBS, params={"status": "succeeded", "limit": 1}, headers=alice)
    assert done.json()["meta"]["limit"] == 1


@pytest.mark.parametrize(
    "params", [{"status": "sleeping"}, {"limit": 0}, {"limit": 101}, {"page": 0}]
)
async def test_bad_list_parameters_are_422(
    client: httpx.AsyncClient, alice: dict[str, str], params: dict[str, object]
) -> None:
    response = await client.get(JOBS, params=params, headers=alice)
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


async def test_a_malformed_last_event_id_is_422(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    job = (await submit(client, alice)).json()
    response = await client.get(
        f"{JOBS}/{job['id']}/events", headers={**alice, "Last-Event-ID": "abc"}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
