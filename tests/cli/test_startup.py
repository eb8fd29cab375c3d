"""Start-up: `import mimofm.cli.main`, `mimofm --version` and every `mimofm ... --help` run without PyTorch
(the commands import it inside their bodies). Checked in a fresh interpreter by which modules are loaded, not
by time; the timing is benchmarks/cli_startup.py."""

import json
import os
import subprocess
import sys
from pathlib import Path

import mimofm

HEAVY = ("torch", "scipy", "matplotlib")

# run in a fresh interpreter: prints one JSON line {what was run: the heavy modules loaded by then}
HELP_WALK = """
import json, sys
import typer

heavy = lambda: [m for m in HEAVY if m in sys.modules]
found = {}
from mimofm.cli.main import app

found["import mimofm.cli.main"] = heavy()


def paths(cmd, prefix):
    yield prefix
    for name, sub in sorted(getattr(cmd, "commands", {}).items()):
        yield from paths(sub, [*prefix, name])


runs = [["--version"], *([*p, "--help"] for p in paths(typer.main.get_command(app), []))]
for args in runs:
    try:
        app(args, prog_name="mimofm")
    except SystemExit:
        pass
    found["mimofm " + " ".join(args)] = heavy()
print("\\nLOADED " + json.dumps(found))
"""


def _python(code: str) -> str:
    """Run ``code`` in a fresh interpreter that imports this mimofm; its stdout."""
    src = str(Path(mimofm.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return r.stdout


def test_importing_the_cli_does_not_import_torch():
    out = _python("import sys\nimport mimofm.cli.main\nprint('torch' in sys.modules)")
    assert out.strip() == "False", "mimofm.cli.main imports torch at module level: import it in the command"


def test_version_and_every_help_page_run_without_torch():
    out = _python(f"HEAVY = {HEAVY!r}\n" + HELP_WALK)
    found = json.loads(out.rsplit("\nLOADED ", 1)[1])
    assert "mimofm --version" in found and "mimofm data import --help" in found and len(found) > 20
    loaded = {run: mods for run, mods in found.items() if mods}
    assert not loaded, f"start-up loads heavy modules (import them inside the command): {loaded}"
