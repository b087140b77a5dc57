"""Test functions served by functions-framework: they record what arrives, as the real deployments receive it."""

import json

import functions_framework

from energent_shared import clients, events, firestore
from energent_shared.http import http_function, json_response


@functions_framework.cloud_event
def record_event(push):
    """Decodes a pushed Pub/Sub message into its CloudEvent and stores it under its id.

    An event whose data asks for it fails on its first delivery, to show Pub/Sub redelivering.
    """
    event = events.from_pubsub_push(push)
    data = event.get_data()
    attempts = clients.firestore().collection("attempts")
    if isinstance(data, dict) and data.get("fail_first") and firestore.create_if_absent(attempts.document(event["id"]),
                                                                                         {"first": True}):
        raise RuntimeError("failing the first delivery on purpose")
    clients.firestore().collection("received").document(event["id"]).set(
        {"structured": json.loads(events.to_structured_json(event))})


@functions_framework.http
@http_function
def echo(request):
    """Answers with what the gateway forwarded (and `?cookies=N`: N cookies, each in its own Set-Cookie)."""
    response = json_response({"path": request.full_path, "method": request.method, "headers": dict(request.headers),
                              "body": request.get_data(as_text=True)})
    for number in range(int(request.args.get("cookies", "0"))):
        response.set_cookie(f"cookie{number}", f"value{number}", max_age=60, httponly=True, samesite="Lax")
    return response
