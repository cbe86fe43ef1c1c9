"""Names come from one place and carry the prefix; delay keys encode the delay's bits."""

from __future__ import annotations

import pytest

from shared.domain import Channel
from shared.messaging.nodes import node_urls
from shared.messaging.topology import DELAY_LEVELS, Topology, delay_routing_key
from shared.settings import Settings


def test_every_name_carries_the_prefix_and_is_unique() -> None:
    topology = Topology("acme")
    names = topology.all_queues() + topology.all_exchanges()
    assert all(n.startswith("acme.") for n in names)
    assert len(set(topology.all_queues())) == len(topology.all_queues())
    assert topology.queue(Channel.EMAIL) == "acme.email.queue"
    assert topology.dlq(Channel.PUSH) == "acme.push.dlq"
    assert len([n for n in topology.all_queues() if ".delay." in n]) == DELAY_LEVELS


@pytest.mark.parametrize("delay", [1, 2, 3, 13, 3600, 86_400, 2**27 + 5])
def test_delay_key_spells_the_bits_and_enters_at_the_top_level(delay: int) -> None:
    level, key = delay_routing_key(delay_s=delay, destination="acme.email.queue")
    words = key.split(".")
    bits = words[:DELAY_LEVELS]
    assert ".".join(words[DELAY_LEVELS:]) == "acme.email.queue"
    assert int("".join(bits), 2) == delay
    assert level == delay.bit_length() - 1
    # the sum of the levels whose bit is set is exactly the delay
    assert (
        sum(2**lvl for lvl in range(DELAY_LEVELS) if bits[DELAY_LEVELS - 1 - lvl] == "1") == delay
    )


def test_delay_is_clamped_to_what_the_levels_can_hold() -> None:
    level, key = delay_routing_key(delay_s=2**40, destination="q")
    assert level == DELAY_LEVELS - 1
    assert set(key.split(".")[:DELAY_LEVELS]) == {"1"}
    assert delay_routing_key(delay_s=-5, destination="q")[1].startswith("0.")


def test_without_a_prefix_the_names_are_the_specs() -> None:
    topology = Topology("")
    assert topology.direct_exchange == "notifications.direct"
    assert topology.queue(Channel.EMAIL) == "email.queue"
    assert topology.queue(Channel.PUSH) == "push.queue"
    assert topology.dlq(Channel.EMAIL) == "email.dlq"
    assert topology.delay_level(3) == "delay.l03"
    assert not any(n.startswith(".") for n in topology.all_queues() + topology.all_exchanges())


def test_the_default_deployment_has_no_prefix_and_a_named_database(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("NOTIFY_PREFIX", "NOTIFY_DATABASE", "MONGODB_URL", "NOTIFY_MONGODB_RETRY_WRITES"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(environment="test")
    assert settings.prefix == ""
    assert settings.database_name == "notify"
    assert Settings(environment="test", prefix="t1-a").database_name == "t1_a"
    assert Settings(environment="test", prefix="t1", database="other").database_name == "other"
    assert not Settings(environment="test").retry_writes
    assert Settings(environment="test", MONGODB_URL="mongodb://a,b,c/?replicaSet=rs0").retry_writes


def test_quorum_topology_adds_a_high_queue_per_channel_for_priority_4_and_5() -> None:
    classic, quorum = Topology("acme"), Topology("acme", quorum=True)
    assert classic.work_queues(Channel.EMAIL) == ["acme.email.queue"]
    assert quorum.work_queues(Channel.EMAIL) == ["acme.email.high.queue", "acme.email.queue"]
    assert [quorum.work_queue(Channel.SMS, p) for p in range(1, 6)] == [
        "acme.sms.queue",
        "acme.sms.queue",
        "acme.sms.queue",
        "acme.sms.high.queue",
        "acme.sms.high.queue",
    ]
    assert [quorum.work_routing_key(Channel.SMS, p) for p in (3, 4)] == ["sms", "sms.high"]
    # Classic queues keep every priority in one queue (x-max-priority).
    assert {classic.work_queue(Channel.SMS, p) for p in range(1, 6)} == {"acme.sms.queue"}
    assert {classic.work_routing_key(Channel.SMS, p) for p in range(1, 6)} == {"sms"}
    assert set(quorum.all_queues()) - set(classic.all_queues()) == {
        quorum.high_queue(c) for c in Channel
    }
    assert Topology("").high_queue(Channel.IN_APP) == "in_app.high.queue"


def test_queue_arguments_follow_the_setting() -> None:
    classic, quorum = Topology("a"), Topology("a", quorum=True)
    assert classic.work_queue_arguments(priority=True) == {
        "x-queue-version": 2,
        "x-max-priority": 5,
    }
    assert classic.work_queue_arguments(priority=False) == {"x-queue-version": 2}
    assert quorum.work_queue_arguments(priority=True) == {"x-queue-type": "quorum"}
    assert quorum.work_queue_arguments(priority=False) == {"x-queue-type": "quorum"}


def test_a_delayed_high_priority_message_is_bound_only_to_the_high_queue() -> None:
    # The delivery exchange binds each queue by `#.<its name>`: a topic match on whole words.
    quorum = Topology("acme", quorum=True)
    _, key = delay_routing_key(delay_s=5, destination=quorum.high_queue(Channel.EMAIL))
    words = key.split(".")
    for name in quorum.work_queues(Channel.EMAIL):
        tail = name.split(".")
        matches = words[-len(tail) :] == tail
        assert matches is (name == quorum.high_queue(Channel.EMAIL))


def test_rabbitmq_url_may_list_a_clusters_nodes() -> None:
    nodes = "amqp://u:p@r1:5672/, amqp://u:p@r2:5672/,amqps://u:p@r3:5671/"
    settings = Settings(environment="test", RABBITMQ_URL=nodes)
    assert node_urls(settings.rabbitmq_url) == [
        "amqp://u:p@r1:5672/",
        "amqp://u:p@r2:5672/",
        "amqps://u:p@r3:5671/",
    ]
    assert node_urls("amqp://guest:guest@127.0.0.1:5672/") == ["amqp://guest:guest@127.0.0.1:5672/"]
    for bad in ("", " , ", "amqp://r1/,http://r2/"):
        with pytest.raises(ValueError, match="RABBITMQ_URL"):
            Settings(environment="test", RABBITMQ_URL=bad)
