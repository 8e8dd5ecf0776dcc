"""Schema fuzzing of the API at scale: schemathesis, every check, against real gunicorn
(usbills_app/gunicorn.conf.py) serving the committed bundle, or against a running site (--url).

Same command and settings as tests/app/test_schema.py (tests/schema_fuzz.py), with 10,000+
cases instead of a short pass. Writes artifacts/bench-fuzz.md; exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from tests import schema_fuzz  # noqa: E402
from tests.app.conftest import Gunicorn  # noqa: E402

ART = ROOT / "artifacts"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    # 10000 per operation gave 8,179 cases in all (the GET operations have few distinct ones).
    ap.add_argument("--max-examples", type=int, default=12500,
                    help="per API operation (predict takes most of them; default 12500)")
    ap.add_argument("--seed", type=int, default=None, help="default: a random one, reported")
    ap.add_argument("--url", help="a running site instead (e.g. http://127.0.0.1:8080)")
    ap.add_argument("--bundle", type=Path, default=ROOT / "model/bundles/usbills")
    a = ap.parse_args()
    if a.max_examples < 1:
        ap.error("--max-examples must be at least 1")
    server = None
    if a.url is None:
        if not (a.bundle / "card.json").is_file():
            ap.error(f"--bundle {a.bundle}: no card.json there")
        server = Gunicorn({"MODEL_DIR": str(a.bundle)}, Path(tempfile.mkdtemp(prefix="fuzz-")))
        server.wait_ready()
    url = a.url or server.url
    t0 = time.monotonic()
    try:
        r = subprocess.run(schema_fuzz.command(url, a.max_examples, a.seed), cwd=ROOT,
                           env=schema_fuzz.ENV, capture_output=True, text=True)
    finally:
        if server is not None:
            server.stop()
    wall = time.monotonic() - t0
    out = r.stdout + r.stderr
    cases = re.search(r"(\d+) generated, (.*)", out)
    seed = re.search(r"Seed: (\d+)", out)
    load = os.getloadavg()
    target = a.url or f"gunicorn (WEB_CONCURRENCY default) serving {a.bundle.relative_to(ROOT)}"
    lines = [
        "Command: `scripts/bench-fuzz" + (f" --max-examples {a.max_examples}"
                                          if a.max_examples != 12500 else "")
        + (f" --url {a.url}" if a.url else "") + "`",
        "",
        f"- target: {target}",
        "- schemathesis checks: all (tests/schemathesis.toml), seed "
        + (seed.group(1) if seed else "?"),
        f"- cases: {cases.group(1) if cases else '?'}; result: "
        + (cases.group(2) if cases else "no summary (see below)"),
        f"- exit status {r.returncode}, {wall:.0f} s, load average {load[0]:.1f} "
        f"({os.cpu_count()} CPUs)",
    ]
    if r.returncode != 0:  # the failures, with their (often huge) reproducing lines cut
        failures = out[out.find("FAILURES"):out.find("SUMMARY")] if "FAILURES" in out else out
        lines += ["", "```", *(ln if len(ln) < 400 else ln[:400] + " ..."
                              for ln in failures.splitlines()), "```"]
    ART.mkdir(exist_ok=True)
    (ART / "bench-fuzz.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if r.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
