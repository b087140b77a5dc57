"""One source of truth: the registry, the gateway spec and the functions' own routes agree."""

import importlib.util
from pathlib import Path

import yaml

from local.gateway import operations, render_spec
from tools import registry

ROOT = Path(__file__).resolve().parents[2]
VALUES = {"issuer": "https://api.example", "audience": "energent-api", "project_id": "p", "region": "r",
          "environment": "test"}


def spec() -> dict:
    return render_spec((ROOT / "api-spec.yaml").read_text(), VALUES)


def routes_of(deployment) -> set[tuple[str, str]]:
    """The (method, path) pairs the deployment's router serves, read from the function itself."""
    source = ROOT / deployment.source / "main.py"
    module_spec = importlib.util.spec_from_file_location(f"main_{deployment.name.replace('-', '_')}", source)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return {(method, template) for template, methods in module.router.templates().items() for method in methods}


def test_every_gateway_operation_routes_to_a_registered_http_deployment_that_serves_it():
    shipped = registry.load()
    http = {d.name: d for d in shipped.deployments if d.is_http}
    served = {name: routes_of(deployment) for name, deployment in http.items()}
    for operation in operations(spec(), "test"):
        assert operation.backend in http, f"{operation.method} {operation.path} -> {operation.backend}"
        assert (operation.method, operation.path) in served[operation.backend], operation


def test_every_route_a_function_serves_is_in_the_gateway_spec():
    exposed = {(op.method, op.path, op.backend) for op in operations(spec(), "test")}
    for deployment in registry.load().deployments:
        if deployment.is_http:
            for method, path in routes_of(deployment):
                assert (method, path, deployment.name) in exposed, f"{deployment.name}: {method} {path}"


def test_every_operation_has_an_id_and_public_ones_are_exactly_the_oauth_discovery_and_portal_endpoints():
    document = spec()
    ids = [op["operationId"] for item in document["paths"].values() for method, op in item.items()
           if method != "parameters"]
    assert len(ids) == len(set(ids))
    public = {op.path for op in operations(document, "test") if not op.secured}
    # The portal's pages check their own session cookie; nothing else of the portal's backend is reachable.
    portal = {path for path in public if path == "/portal" or path.startswith("/portal/")}
    assert public - portal == {"/v1/oauth/token", "/v1/oauth/revoke", "/.well-known/jwks.json",
                               "/.well-known/openid-configuration"}
    assert {op.backend for op in operations(document, "test") if op.path in portal} == {"portal"}
    assert not any(op.backend == "portal" and op.secured for op in operations(document, "test"))


def test_every_topic_has_a_consumer_and_every_secret_and_bucket_a_user():
    shipped = registry.load()
    consumed = {d.topic for d in shipped.deployments if d.topic}
    assert consumed == set(shipped.topics)
    assert {s for d in shipped.deployments for s in d.secrets} == set(shipped.secrets)
    assert {b for d in shipped.deployments for b in d.buckets} == set(shipped.buckets)


def test_the_spec_is_valid_yaml_with_swagger_2():
    document = yaml.safe_load((ROOT / "api-spec.yaml").read_text().replace("${", "{"))
    assert document["swagger"] == "2.0"


def test_the_spec_is_valid_openapi_2_and_every_operation_counts_against_the_quota():
    from openapi_spec_validator import validate
    from openapi_spec_validator.validation import OpenAPIV2SpecValidator

    document = spec()
    validate(document, cls=OpenAPIV2SpecValidator)
    limits = document["x-google-management"]["quota"]["limits"]
    assert limits[0]["values"]["STANDARD"] == 60000  # 1,000 requests/s per consumer
    for item in document["paths"].values():
        for method, operation in item.items():
            if method != "parameters":
                assert operation["x-google-quota"]["metricCosts"] == {"requests": 1}, operation["operationId"]
