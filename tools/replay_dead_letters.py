"""Republishes the events waiting on a topic's dead-letter subscription to the topic itself, after the cause of
their failure is fixed (docs/runbook.md). Data and attributes go out as they were first published; the bookkeeping
attributes Pub/Sub adds when it dead-letters a message are left off. A batch is acknowledged only after Pub/Sub
accepted its copies: a crash in between publishes that batch twice, which the handlers, idempotent, absorb.

    python -m tools.replay_dead_letters --project energent-dev billing-events            # all of them
    python -m tools.replay_dead_letters --project energent-dev billing-events --dry-run  # look first
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

DEAD_LETTER_ATTRIBUTES = "CloudPubSubDeadLetter"  # CloudPubSubDeadLetterSourceDeliveryCount, ...
BATCH = 100


def dead_letter_subscription(project: str, topic: str) -> str:
    """The subscription infra/modules/functions keeps each topic's dead letters on."""
    return f"projects/{project}/subscriptions/{topic}-dead-letter"


def original_attributes(attributes) -> dict[str, str]:
    return {key: value for key, value in attributes.items() if not key.startswith(DEAD_LETTER_ATTRIBUTES)}


def replay(subscriber, publisher, project: str, topic: str, *, limit: int | None = None, dry_run: bool = False,
           out: Callable[[str], None] = print) -> int:
    """Moves up to `limit` dead letters of `topic` back onto it; returns how many. A dry run shows one batch and
    hands it back undelivered."""
    from google.api_core.exceptions import DeadlineExceeded
    from google.pubsub_v1.types import PubsubMessage

    subscription = dead_letter_subscription(project, topic)
    target = f"projects/{project}/topics/{topic}"
    moved = 0
    while limit is None or moved < limit:
        wanted = BATCH if limit is None else min(BATCH, limit - moved)
        try:
            received = list(subscriber.pull(subscription=subscription, max_messages=wanted,
                                            timeout=30).received_messages)
        except DeadlineExceeded:  # nothing arrived within the call
            received = []
        if not received:
            break
        ack_ids = [item.ack_id for item in received]
        if dry_run:
            for item in received:
                out(f"{item.message.message_id} {item.message.publish_time} "
                    f"{dict(original_attributes(item.message.attributes))} {len(item.message.data)} bytes")
            subscriber.modify_ack_deadline(subscription=subscription, ack_ids=ack_ids, ack_deadline_seconds=0)
            return len(received)
        publisher.publish(topic=target, messages=[
            PubsubMessage(data=item.message.data, attributes=original_attributes(item.message.attributes))
            for item in received])
        subscriber.acknowledge(subscription=subscription, ack_ids=ack_ids)
        moved += len(received)
        out(f"republished {moved} to {target}")
    return moved


def main() -> None:
    parser = argparse.ArgumentParser(description="Republish a topic's dead letters to the topic.")
    parser.add_argument("topic", help="the source topic, e.g. billing-events (its dead letters are on "
                                      "<topic>-dead-letter)")
    parser.add_argument("--project", required=True)
    parser.add_argument("--limit", type=int, default=None, help="republish at most this many")
    parser.add_argument("--dry-run", action="store_true", help="show one batch and leave it where it is")
    args = parser.parse_args()
    from google.pubsub_v1 import PublisherClient, SubscriberClient

    moved = replay(SubscriberClient(), PublisherClient(), args.project, args.topic, limit=args.limit,
                   dry_run=args.dry_run)
    print(f"{'showed' if args.dry_run else 'republished'} {moved} message(s)")


if __name__ == "__main__":
    main()
