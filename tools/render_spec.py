"""Prints api-spec.yaml with its deploy-time placeholders filled in, as API Gateway receives it."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

SPEC = Path(__file__).resolve().parent.parent / "api-spec.yaml"
PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def fill(text: str, values: dict[str, str]) -> str:
    """`${name}` placeholders, as Terraform's templatefile has them (a lone `$`, as in a regex, stays)."""

    def value(match: re.Match) -> str:
        if match.group(1) not in values:
            raise KeyError(f"api-spec.yaml uses ${{{match.group(1)}}}, which has no value")
        return values[match.group(1)]

    return PLACEHOLDER.sub(value, text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    for name in ("project", "region", "environment", "issuer"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--audience", default="energent-api")
    args = parser.parse_args()
    print(fill(SPEC.read_text(), {"project_id": args.project, "region": args.region, "environment": args.environment,
                                  "issuer": args.issuer.rstrip("/"), "audience": args.audience}), end="")


if __name__ == "__main__":
    main()
