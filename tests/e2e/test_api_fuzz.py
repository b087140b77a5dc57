"""Every operation of api-spec.yaml, fuzzed through the local gateway with schemathesis: valid and invalid
inputs alike must never produce a server error."""

import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tools.render_spec import SPEC, fill

EXAMPLES = 15


def test_no_operation_answers_a_server_error(stack):
    values = {"project_id": stack.project, "region": "local", "environment": "local", "issuer": stack.url,
              "audience": "energent-api"}
    schema = schemathesis.openapi.from_dict(yaml.safe_load(fill(SPEC.read_text(), values)))
    headers = stack.operator()
    requests.post(f"{stack.url}/v1/tenants", headers=headers, timeout=10,
                  json={"tenant_id": "fuzzed", "display_name": "Fuzzed", "tier": "basic"})
    session = requests.Session()
    failures = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 61  # 43, the portal-sessions operation and the portal's 17 pages and forms
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def call(case):
                response = case.call(base_url=stack.url, session=session, headers=headers, timeout=30)
                if response.status_code >= 500:
                    failures.append(f"{case.method} {case.formatted_path} {case.query} -> {response.status_code}: "
                                    f"{response.text[:300]}")

            try:
                call()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # an operation without inputs has no invalid form
    assert failures == [], "\n".join(failures)
