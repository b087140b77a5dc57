"""Cold start: how long a fresh interpreter takes to import each function's `main`, packaged as deployed,
next to a hello-world functions-framework function. Import cost is what an instance pays before its first
request, so the ratio is what our code and dependencies add on top of the framework itself.

Times depend on whatever else the machine is doing; where valgrind is installed, the instructions the import
executes are counted too (callgrind: the same count on every run), and their ratio is the figure to compare."""

from __future__ import annotations

import compileall
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from tools.package import package

ROOT = Path(__file__).resolve().parent.parent
RUNS = 7
HELLO = '''import functions_framework


@functions_framework.http
def hello(request):
    return "hello"
'''
_MEASURE = ("import sys, time; sys.path.insert(0, {folder!r}); t = time.perf_counter(); import main; "
            "print(time.perf_counter() - t)")


def import_seconds(folder: Path) -> float:
    """Median over fresh interpreters of `import main` (functions_framework is imported by every main)."""
    samples = []
    for _ in range(RUNS):
        output = subprocess.run([sys.executable, "-c", _MEASURE.format(folder=str(folder))], cwd=folder,
                                capture_output=True, text=True, check=True).stdout
        samples.append(float(output))
    return statistics.median(samples)


def import_instructions(folder: Path) -> int | None:
    """Instructions executed by a fresh interpreter importing `main` (None without valgrind)."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    done = subprocess.run([valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-c",
                           f"import sys; sys.path.insert(0, {str(folder)!r}); import main"], cwd=folder,
                          capture_output=True, text=True, check=True)
    return int(re.search(r"Collected : (\d+)", done.stderr).group(1))


def main() -> None:
    from tools.registry import load

    with tempfile.TemporaryDirectory() as tmp:
        hello = Path(tmp) / "hello"
        hello.mkdir()
        (hello / "main.py").write_text(HELLO)
        compileall.compile_dir(hello, quiet=1)
        baseline, baseline_count = import_seconds(hello), import_instructions(hello)
        rows = [("hello-world (functions-framework)", baseline, baseline_count)]
        for source in sorted({d.source for d in load().deployments} | {str(p.parent.relative_to(ROOT)) for p in
                                                                      ROOT.glob("functions/*/main.py")}):
            staged = package(ROOT / source, Path(tmp) / source)
            # Byte-compiled first, as installed packages are: the figure is the import, not a one-time
            # compilation that an environment with PYTHONDONTWRITEBYTECODE would otherwise repeat every run.
            compileall.compile_dir(staged, quiet=1)
            rows.append((source, import_seconds(staged), import_instructions(staged)))
    print(f"cold start: median import time of main over {RUNS} fresh interpreters, and instructions executed")
    print(f"{'function':<40} {'ms':>8} {'x hello':>8} {'M instr':>9} {'x hello':>8}")
    for name, seconds, count in rows:
        counted = f"{count / 1e6:>9.0f} {count / baseline_count:>8.2f}" if count and baseline_count else ""
        print(f"{name:<40} {seconds * 1000:>8.1f} {seconds / baseline:>8.2f} {counted}")


if __name__ == "__main__":
    main()
