"""Names come from one place and carry the prefix; delay keys encode the delay's bits."""

from __future__ import annotations

import pytest

from shared.domain import Channel
from shared.messaging.topology import DELAY_LEVELS, Topology, delay_routing_key


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
