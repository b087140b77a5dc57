"""The one build step that brings the shared library to a function.

Only a function's folder is uploaded to Cloud Functions, so the deployable source is that folder plus copies
of `energent_shared` and of the versioned `config/` beside `main.py` (the folder is on `sys.path` when
functions-framework loads it).
The local stack runs exactly this output; Cloud Build deploys it.

    python -m tools.package functions/auth build/functions/auth
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT / "shared" / "energent_shared"
CONFIG = ROOT / "config"
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "tests", ".pytest_cache")


def package(source: Path, destination: Path) -> Path:
    source, destination = Path(source), Path(destination)
    if not (source / "main.py").is_file() or not (source / "requirements.txt").is_file():
        raise FileNotFoundError(f"{source} is not a function folder (main.py and requirements.txt)")
    if (source / "energent_shared").exists():
        raise FileExistsError(f"{source}/energent_shared must not exist: the shared library is added at build time")
    if destination.exists():
        shutil.rmtree(destination)
    shutil.copytree(source, destination, ignore=_IGNORE)
    shutil.copytree(SHARED, destination / "energent_shared", ignore=_IGNORE)
    shutil.copytree(CONFIG, destination / "config", ignore=_IGNORE)  # versioned configuration (price book)
    return destination


def main() -> None:
    parser = argparse.ArgumentParser(description="Package a function folder with the shared library.")
    parser.add_argument("source", type=Path)
    parser.add_argument("destination", type=Path)
    args = parser.parse_args()
    print(package(args.source, args.destination))


if __name__ == "__main__":
    main()
