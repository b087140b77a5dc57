"""The argument schemas of the google and google-beta Terraform providers, for checking infra/ offline.

`terraform validate` needs the providers themselves, which cannot be downloaded here. The same schemas ship in
the npm packages @cdktf/provider-google and @cdktf/provider-google-beta: their jsii assembly (`package/.jsii`)
describes, for every resource and data source, a config type whose properties are the Terraform arguments (the
argument's own name is the anchor of each property's Terraform Registry link) and whose struct-typed properties
are the nested blocks. This reads that assembly out of the packed tarball and writes a compact JSON:

    {"provider": "google", "version": "6.50.0", "package": "@cdktf/provider-google@16.12.1",
     "resource": {"google_storage_bucket": NODE, ...}, "data": {"google_project": NODE, ...}}
    NODE = {"arguments": {"location": true, "labels": false, ...},          # name -> required
            "blocks": {"encryption": {"required": false, **NODE}, ...}}

    python -m tools.provider_schema cdktf-provider-google-16.12.1.tgz > google.json

`make` runs it once per download (.tools/provider-schemas/); tests/unit/test_provider_schema.py reads the JSON.
"""

from __future__ import annotations

import json
import re
import sys
import tarfile
from pathlib import Path

RESOURCE_BASES = {"cdktf.TerraformResource": "resource", "cdktf.TerraformDataSource": "data"}
# "Represents a {@link https://registry.terraform.io/providers/hashicorp/google/6.50.0/docs/resources/x google_x}."
CLASS_LINK = re.compile(r"providers/hashicorp/([\w-]+)/([\w.]+)/docs/(?:resources|data-sources)/\w+ (\w+)\}")
# "Docs at Terraform Registry: {@link https://.../storage_bucket#default_kms_key_name StorageBucket#default_...}"
ARGUMENT_LINK = re.compile(r"\{@link \S+#(\w+) \w+#\w+\}")


def read_assembly(tarball: Path) -> dict:
    with tarfile.open(tarball) as archive:
        member = archive.extractfile("package/.jsii")
        if member is None:
            raise ValueError(f"{tarball} holds no jsii assembly")
        return json.load(member)


def _docs_text(docs: dict) -> str:
    return " ".join([docs.get("summary", ""), docs.get("remarks", ""), *docs.get("custom", {}).values()])


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def _struct_of(kind: dict, types: dict) -> str | None:
    """The struct (nested block) a property's type names, directly, in a union or as a list's element."""
    if "fqn" in kind:
        found = types.get(kind["fqn"])
        return kind["fqn"] if found and found["kind"] == "interface" and found.get("datatype") else None
    if "union" in kind:
        for member in kind["union"]["types"]:
            if (struct := _struct_of(member, types)) is not None:
                return struct
    if "collection" in kind:
        return _struct_of(kind["collection"]["elementtype"], types)
    return None


def _properties(fqn: str, types: dict) -> list[dict]:
    """A struct's properties with those of the structs it extends (cdktf's own meta-arguments left out)."""
    struct = types[fqn]
    inherited = [p for parent in struct.get("interfaces", []) if parent in types for p in _properties(parent, types)]
    return [*inherited, *struct.get("properties", [])]


def node(fqn: str, types: dict, depth: int = 0) -> dict:
    if depth > 20:
        raise ValueError(f"{fqn}: nesting deeper than any provider schema")
    arguments: dict[str, bool] = {}
    blocks: dict[str, dict] = {}
    for prop in _properties(fqn, types):
        link = ARGUMENT_LINK.search(_docs_text(prop.get("docs", {})))
        name = link.group(1) if link else _snake(prop["name"])
        required = not prop.get("optional", False)
        struct = _struct_of(prop["type"], types)
        if struct is None:
            arguments[name] = required
        else:
            blocks[name] = {"required": required, **node(struct, types, depth + 1)}
    return {"arguments": dict(sorted(arguments.items())), "blocks": dict(sorted(blocks.items()))}


def extract(assembly: dict) -> dict:
    types = assembly["types"]
    schema: dict = {"provider": None, "version": None, "package": f"{assembly['name']}@{assembly['version']}",
                    "resource": {}, "data": {}}
    for declared in types.values():
        section = RESOURCE_BASES.get(declared.get("base", ""))
        if section is None:
            continue
        link = CLASS_LINK.search(declared.get("docs", {}).get("summary", ""))
        if link is None:
            raise ValueError(f"{declared['fqn']}: no Terraform Registry link names its type")
        provider, version, terraform_type = link.groups()
        if schema["provider"] not in (None, provider) or schema["version"] not in (None, version):
            raise ValueError(f"{declared['fqn']}: {provider} {version} in an assembly of {schema['provider']}")
        schema["provider"], schema["version"] = provider, version
        config = next(p for p in declared["initializer"]["parameters"] if p["name"] == "config")
        schema[section][terraform_type] = node(config["type"]["fqn"], types)
    for section in ("resource", "data"):
        schema[section] = dict(sorted(schema[section].items()))
    return schema


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    json.dump(extract(read_assembly(Path(argv[0]))), sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
