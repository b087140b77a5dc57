"""Cold start: how long a fresh interpreter takes to import each function's `main`, packaged as deployed,
next to a hello-world functions-framework function. Import cost is what an instance pays before its first
request, so the ratio is what our code and dependencies add on top of the framework itself."""

from __future__ import annotations

import compileall
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


def main() -> None:
    from tools.registry import load

    with tempfile.TemporaryDirectory() as tmp:
        hello = Path(tmp) / "hello"
        hello.mkdir()
        (hello / "main.py").write_text(HELLO)
        compileall.compile_dir(hello, quiet=1)
        baseline = import_seconds(hello)
        rows = [("hello-world (functions-framework)", baseline)]
        for source in sorted({d.source for d in load().deployments} | {str(p.parent.relative_to(ROOT)) for p in
                                                                      ROOT.glob("functions/*/main.py")}):
            staged = package(ROOT / source, Path(tmp) / source)
            # Byte-compiled first, as installed packages are: the figure is the import, not a one-time
            # compilation that an environment with PYTHONDONTWRITEBYTECODE would otherwise repeat every run.
            compileall.compile_dir(staged, quiet=1)
            rows.append((source, import_seconds(staged)))
    print(f"cold start: median import time of main over {RUNS} fresh interpreters")
    print(f"{'function':<40} {'ms':>8} {'x hello':>8}")
    for name, seconds in rows:
        print(f"{name:<40} {seconds * 1000:>8.1f} {seconds / baseline:>8.2f}")


if __name__ == "__main__":
    main()
