"""Throughput over time: runs finished per queue in equal slices of a window, from the store
(SQLite and PostgreSQL), over the JSON API and drawn on the dashboard's queues page."""

from __future__ import annotations

import httpx
import pytest

from stepstone import Client
from stepstone.core.model import ErrorInfo
from stepstone.core.port import Completed, Failed, Store
from stepstone.errors import InvalidArgument
from tests.apps import web_app
from tests.test_store_contract import at, claim_one
from tests.webserver import serving


async def test_runs_finished_per_slice_of_the_window(store: Store) -> None:
    # finished at 5, 12, 14, 37 (failed) and 70 s; the window: the 60 s before t = 72
    for i, (t, ok) in enumerate([(5, True), (12, True), (14, True), (37, False), (70, True)]):
        claim = await claim_one(store, f"r{i}")
        outcome = Completed("1") if ok else Failed(ErrorInfo("ValueError", "no"))
        await store.close_claim(claim, outcome, now=at(t))
    series = await store.queue_throughput(now=at(72), window_s=60, buckets=6)
    # slices of 10 s from t = 12: [12, 22) [22, 32) [32, 42) [42, 52) [52, 62) [62, 72)
    assert series == {
        "default": {"completed": [2, 0, 0, 0, 0, 1], "failed": [0, 0, 1, 0, 0, 0]},
    }
    assert await store.queue_throughput(now=at(500), window_s=60, buckets=6) == {}


def test_the_api_and_the_queues_page_draw_the_last_hour(sqlite_url: str) -> None:
    with Client(sqlite_url, workflows=web_app) as client:
        for i in range(3):
            client.run(web_app.greet, f"n{i}", run_id=f"g{i}")
        with pytest.raises(InvalidArgument, match="buckets"):
            client.queue_throughput(buckets=0)
    with serving(sqlite_url, workflows=web_app) as url, httpx.Client(base_url=url) as http:
        data = http.get("/api/queues/throughput", params={"buckets": 12}).json()
        assert data["buckets"] == 12 and data["window_s"] == 3600
        [series] = data["queues"].values()
        assert series["completed"][-1] == 3 and sum(series["completed"]) == 3
        page = http.get("/queues").text
        assert "data-history><title>runs finished per minute, last hour</title>" in page
        # 60 points, the last one at the top (all three runs finished in the last minute)
        points = page.split('<polyline points="')[1].split('"')[0].split()
        assert len(points) == 60 and points[-1] == "120.0,2.0"
        refused = http.get("/api/queues/throughput", params={"buckets": 0})
        assert refused.status_code == 422 and "buckets" in refused.text
