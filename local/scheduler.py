"""The local stand-in for Cloud Scheduler: every schedule of `functions/registry.yaml` publishes its CloudEvent to
its topic on the Pub/Sub emulator at the minutes its cron expression names (UTC), exactly as Terraform's jobs do.

    python -m local.scheduler   (PUBSUB_EMULATOR_HOST and GOOGLE_CLOUD_PROJECT set; started by `make dev`)
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import signal
import sys
import threading

import requests

from tools.registry import Schedule, load

_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))


def _values(field: str, low: int, high: int) -> set[int]:
    found: set[int] = set()
    for part in field.split(","):
        spec, _, step = part.partition("/")
        if spec == "*":
            first, last = low, high
        elif "-" in spec:
            first, last = (int(x) for x in spec.split("-"))
        else:
            first = last = int(spec)
        found.update(range(first, last + 1, int(step) if step else 1))
    return found


def matches(cron: str, moment: datetime.datetime) -> bool:
    """Whether a five-field cron expression names `moment`'s minute (day of week 0 = Sunday; when both days are
    restricted, either may match, as cron has it)."""
    fields = cron.split()
    minute, hour, day, month, weekday = (_values(f, *r) for f, r in zip(fields, _RANGES, strict=True))
    days_restricted = fields[2] != "*" and fields[4] != "*"
    day_ok = (moment.day in day or (moment.isoweekday() % 7) in weekday) if days_restricted else \
        (moment.day in day and (moment.isoweekday() % 7) in weekday)
    return moment.minute in minute and moment.hour in hour and moment.month in month and day_ok


def publish(host: str, project: str, schedule: Schedule) -> None:
    url = f"http://{host}/v1/projects/{project}/topics/{schedule.topic}:publish"
    message = {"data": base64.b64encode(json.dumps(schedule.event()).encode()).decode(),
               "attributes": {"content-type": "application/cloudevents+json"}}
    requests.post(url, json={"messages": [message]}, timeout=10).raise_for_status()


def run(stop: threading.Event) -> None:
    schedules = load().schedules
    host, project = os.environ["PUBSUB_EMULATOR_HOST"], os.environ["GOOGLE_CLOUD_PROJECT"]
    minute = datetime.datetime.now(datetime.UTC).replace(second=0, microsecond=0)
    while True:
        minute += datetime.timedelta(minutes=1)
        if stop.wait(max(0.0, (minute - datetime.datetime.now(datetime.UTC)).total_seconds())):
            return
        for schedule in schedules:
            if matches(schedule.schedule, minute):
                try:
                    publish(host, project, schedule)
                except requests.RequestException as error:
                    print(f"schedule {schedule.name} not published: {error}", file=sys.stderr, flush=True)


def main() -> int:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    run(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
