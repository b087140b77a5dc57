"""Every resource and data block of infra/ against the google and google-beta provider schemas — what
`terraform validate` would check, which cannot run here because the providers cannot be downloaded: each argument
and nested block exists in the provider's schema and is written as what it is, and every required one is set.
Module calls are checked against the modules' variables the same way.

The schemas are extracted by tools/provider_schema.py into .tools/provider-schemas/ (`make` does it)."""

import json
from functools import cache
from pathlib import Path

import hcl2
import pytest

from tests.unit.test_infra import INFRA, ROOT, plain, terraform

SCHEMAS = ROOT / ".tools" / "provider-schemas"
PROVIDER_VERSION = "6.50.0"
# Terraform's own arguments of a resource or data block, not the provider's.
META_ARGUMENTS = {"count", "for_each", "depends_on", "provider", "lifecycle", "provisioner", "connection"}
# Providers whose schemas are not checked here (small, stable, used for one or two blocks each).
UNCHECKED_PROVIDERS = {"archive", "random", "tls", "time"}


@cache
def schema(provider: str) -> dict:
    path = SCHEMAS / f"{provider}.json"
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make venv` (it downloads and extracts the provider schemas)")
    return json.loads(path.read_text())


def is_block(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) and v.get("__is_block__")
                                                            for v in value)


def check_body(body: dict, node: dict, where: str, top: bool = False) -> list[str]:
    """What Terraform would refuse in one block body, given its schema node (arguments and nested blocks)."""
    problems = []
    dynamic_labels = set()
    for name, value in body.items():
        if name.startswith("__") or (top and name in META_ARGUMENTS):
            continue
        if name == "dynamic":
            for dynamic in value:
                for label, spec in dynamic.items():
                    if label.startswith("__"):
                        continue
                    dynamic_labels.add(label)
                    if label not in node["blocks"]:
                        problems.append(f"{where}: no block type {label!r} for a dynamic block")
                        continue
                    for content in spec.get("content", []):
                        problems += check_body(content, node["blocks"][label], f"{where}.{label}")
        elif name in node["blocks"]:
            if not is_block(value):
                problems.append(f"{where}: {name!r} is a block, written as an argument")
                continue
            for each in value:
                problems += check_body(each, node["blocks"][name], f"{where}.{name}")
        elif name in node["arguments"]:
            if is_block(value):
                problems.append(f"{where}: {name!r} is an argument, written as a block")
        else:
            problems.append(f"{where}: unsupported argument or block {name!r}")
    for name, required in node["arguments"].items():
        if required and name not in body:
            problems.append(f"{where}: the required argument {name!r} is missing")
    for name, block in node["blocks"].items():
        if block["required"] and name not in body and name not in dynamic_labels:
            problems.append(f"{where}: the required block {name!r} is missing")
    return problems


def provider_of(kind: str, body: dict) -> str:
    explicit = str(body.get("provider", "")).removeprefix("${").removesuffix("}").split(".")[0]
    return explicit or kind.split("_")[0]


def check_blocks(parsed: dict, where: str) -> tuple[list[str], int, set[str]]:
    """(problems, blocks checked, provider types left unchecked) of one parsed file."""
    problems, checked, unchecked = [], 0, set()
    for section in ("resource", "data"):
        for block in parsed.get(section, []):
            for kind, named in block.items():
                for name, body in named.items():
                    provider = provider_of(kind, body)
                    if provider in UNCHECKED_PROVIDERS:
                        unchecked.add(kind)
                        continue
                    node = schema(provider)[section].get(kind)
                    label = f"{where}: {section} {kind}.{name} ({provider})"
                    if node is None:
                        problems.append(f"{label}: {provider} {PROVIDER_VERSION} has no such {section} type")
                        continue
                    problems += check_body(body, node, label, top=True)
                    checked += 1
    return problems, checked, unchecked


def terraform_files() -> list[Path]:
    return sorted(INFRA.rglob("*.tf"))


def test_the_schemas_are_the_pinned_provider_version():
    for provider in ("google", "google-beta"):
        loaded = schema(provider)
        assert (loaded["provider"], loaded["version"]) == (provider, PROVIDER_VERSION)
        assert loaded["package"] == f"@cdktf/provider-{provider}@16.12.1"
        assert len(loaded["resource"]) > 1000 and len(loaded["data"]) > 300
    # What the configuration asks for admits that version.
    for path in terraform_files():
        if path.name == "versions.tf":
            providers = plain(terraform(path))["terraform"][0]["required_providers"][0]
            for provider in ("google", "google-beta"):
                if provider in providers:
                    assert providers[provider]["version"] == "~> 6.50", path


def test_every_resource_and_data_block_matches_its_provider_schema():
    problems, checked, unchecked = [], 0, set()
    for path in terraform_files():
        found, count, skipped = check_blocks(plain(terraform(path)), str(path.relative_to(ROOT)))
        problems += found
        checked += count
        unchecked |= skipped
    assert not problems, "\n".join(problems)
    assert checked > 80
    assert unchecked == {"archive_file", "time_sleep"}


def module_variables(source: Path) -> dict[str, bool]:
    """A module's variables: name -> required (no default)."""
    variables = {}
    for path in sorted(source.glob("*.tf")):
        for block in plain(terraform(path)).get("variable", []):
            for name, body in block.items():
                variables[name] = "default" not in body
    return variables


def test_every_module_call_sets_its_required_variables_and_only_declared_ones():
    problems, calls = [], 0
    for path in terraform_files():
        for block in plain(terraform(path)).get("module", []):
            for name, body in block.items():
                calls += 1
                variables = module_variables((path.parent / body["source"]).resolve())
                given = {k for k in body if not k.startswith("__")} - {"source", "version", "providers", "count",
                                                                      "for_each", "depends_on"}
                problems += [f"{path.name}: module {name} has no variable {k!r}" for k in given - set(variables)]
                problems += [f"{path.name}: module {name} needs {k!r}" for k, required in variables.items()
                             if required and k not in given]
    assert not problems, "\n".join(problems)
    assert calls >= 7


MISSPELLED = """
resource "google_storage_bucket" "typo" {
  name                       = "b"
  uniform_bucket_level_acess = true
  encryption {
    default_kms_key = "k"
  }
  dynamic "lifecycle_rules" {
    for_each = [1]
    content {}
  }
  lifecycle_rule {
    action {
      type = "Delete"
    }
  }
  versioning = { enabled = true }
}

data "google_projects" "typo" {
  filter  = "name:x"
  project = "p"
}

resource "google_api_gateway_api" "beta_only" {
  api_id = "a"
}
"""


def test_a_misspelled_or_missing_argument_is_caught():
    problems, checked, _ = check_blocks(plain(hcl2.loads(MISSPELLED)), "sample.tf")
    text = "\n".join(problems)
    assert checked == 2
    for expected in (
        "'uniform_bucket_level_acess'",                                     # misspelled argument
        "encryption: unsupported argument or block 'default_kms_key'",     # misspelled, in a nested block
        "encryption: the required argument 'default_kms_key_name' is missing",
        "no block type 'lifecycle_rules' for a dynamic block",             # misspelled dynamic label
        "lifecycle_rule: the required block 'condition' is missing",      # required nested block
        "the required argument 'location' is missing",                     # required top-level argument
        "'versioning' is a block, written as an argument",
        "data google_projects.typo (google): unsupported argument or block 'project'",
        "google_api_gateway_api.beta_only (google): google 6.50.0 has no such resource type",  # beta only
    ):
        assert expected in text, f"{expected} not in:\n{text}"
