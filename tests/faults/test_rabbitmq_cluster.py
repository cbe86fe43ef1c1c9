"""A RabbitMQ cluster of three nodes of its own: the node everyone uses is killed under a
paced load, then brought back.

The system runs with quorum queues (`NOTIFY_QUORUM_QUEUES`) and the three nodes in
`RABBITMQ_URL`; a quarter of the requests have priority 5, so the high queue is used too.
Every process connects to node 1 first, and the queues' leaders start there, so killing
node 1 (`kill -9` of its Erlang VM) takes both the connections and the leaders away: the
processes must move to another node, the queues elect new leaders from their replicas, and
no acknowledged request may be lost or delivered twice. The machine's own broker is never
touched (`tests/faults/cluster.py`).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.fakes.sendgrid import FakeSendGrid
from tests.faults.cluster import ClusterUnavailable, RabbitCluster, rabbitmq_binaries
from tests.faults.harness import ProcessSystem
from tests.faults.streams import settle_and_count, stream_through
from tests.support import env

pytestmark = pytest.mark.timeout(300)

REQUESTS, PER_SECOND, KILL_AFTER = 600, 25, 150


@pytest.fixture(scope="module")
async def cluster() -> AsyncIterator[RabbitCluster]:
    """Three nodes joined into one cluster, once for the module; gone (files too) after it."""
    if rabbitmq_binaries() is None:
        pytest.skip("rabbitmq-server is not installed: no RabbitMQ cluster to start")
    cluster = RabbitCluster(Path(tempfile.mkdtemp(prefix="notify-rabbitmq-cluster-")))
    try:
        try:
            await cluster.start()
        except ClusterUnavailable as exc:
            logs = "\n".join(f"--- {n.name} ---\n{cluster.tail(n)}" for n in cluster.nodes)
            message = f"RabbitMQ is installed but the cluster did not form: {exc}\n{logs}"
            if env("CI"):
                pytest.fail(message)
            pytest.skip(message)
        yield cluster
    finally:
        cluster.stop()


async def test_a_node_killed_and_brought_back_under_load_loses_and_duplicates_nothing(
    cluster: RabbitCluster,
    mongodb_url: str,
    log_dir: Path,
    sendgrid: FakeSendGrid,
    fault_report: Callable[..., None],
) -> None:
    """RabbitMQ 3-node cluster, quorum queues: a node killed (kill -9), restarted, under load."""
    system = ProcessSystem(
        rabbitmq_url=",".join(cluster.urls),
        mongodb_url=mongodb_url,
        log_dir=log_dir,
        settings_env={"NOTIFY_QUORUM_QUEUES": "true"},
    )
    victim = cluster.nodes[0]
    window: dict[str, float] = {}
    try:
        system.start_worker("email")
        system.start_worker("maintenance")
        await system.start_api()

        async def node_outage() -> None:
            window["down"] = time.monotonic()
            await cluster.kill(victim)
            # Down until every process has moved to another node and carried on there.
            for proc in system.procs.values():
                await proc.wait_logged("broker_reconnected", timeout_s=30)
            window["moved"] = time.monotonic()
            await cluster.restart(victim)
            window["up"] = time.monotonic()

        stream = await stream_through(
            system,
            sendgrid,
            requests=REQUESTS,
            per_second=PER_SECOND,
            outage_after=KILL_AFTER,
            outage=node_outage,
            urgent_every=4,  # a quarter through the high queue: both queues fail over
        )
        ok_while_down = stream.ok_between(window["down"], window["up"])
        running = await cluster.running_nodes(cluster.nodes[1])
        await settle_and_count(
            system,
            sendgrid,
            stream,
            fault_report,
            deliver_timeout_s=120,
            acknowledged_while_node_down=ok_while_down,
            processes_moved_after_s=round(window["moved"] - window["down"], 1),
            node_down_s=round(window["up"] - window["down"], 1),
            nodes_running_after=len(running),
        )
        # The cluster kept taking requests while a node was gone, and took it back.
        assert ok_while_down > 0, "nothing was acknowledged while the node was down"
        assert sorted(running) == sorted(n.name for n in cluster.nodes)
    finally:
        print(system.logs())
        await system.stop()
