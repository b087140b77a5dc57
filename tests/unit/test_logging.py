import json
import logging

import pytest

from energent_shared import logging as log


def test_traceparent_is_parsed_with_sampling_flag():
    trace = log.parse_trace("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", None)
    assert trace == log.TraceContext("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", True)


def test_cloud_trace_context_is_parsed_and_span_converted_to_hex():
    trace = log.parse_trace(None, "105445aa7843bc8bf206b12000100000/1;o=1")
    assert trace == log.TraceContext("105445aa7843bc8bf206b12000100000", "0000000000000001", True)


@pytest.mark.parametrize("traceparent", ["garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"])
def test_invalid_traceparent_falls_back_to_cloud_header(traceparent):
    trace = log.parse_trace(traceparent, "105445aa7843bc8bf206b12000100000;o=0")
    assert trace == log.TraceContext("105445aa7843bc8bf206b12000100000", None, False)


def test_records_are_cloud_logging_json_with_trace_and_fields(capsys):
    logger = log.get_logger("test")
    token = log.set_trace(log.TraceContext("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", True))
    try:
        log.log_event(logger, "client.auth_failed", severity=logging.WARNING, client_id="c1")
    finally:
        log.reset_trace(token)
    entry = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert entry["severity"] == "WARNING"
    assert entry["message"] == "client.auth_failed"
    assert entry["event"] == "client.auth_failed" and entry["client_id"] == "c1"
    assert entry["logging.googleapis.com/trace"].endswith("/traces/4bf92f3577b34da6a3ce929d0e0e4736")
    assert entry["logging.googleapis.com/spanId"] == "00f067aa0ba902b7"
    assert entry["logging.googleapis.com/trace_sampled"] is True
    assert entry["logging.googleapis.com/sourceLocation"]["function"] == (
        "test_records_are_cloud_logging_json_with_trace_and_fields")


def test_records_without_trace_carry_no_trace_fields(capsys):
    log.get_logger("test").info("plain")
    entry = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert entry["message"] == "plain"
    assert not any(key.startswith("logging.googleapis.com/trace") for key in entry)
