"""Lighthouse (npm, mobile emulation: Moto G-class phone, simulated slow 4G) on the phone page,
served by real gunicorn with the committed bundle: the four category scores and the web
vitals, median of --runs runs. Writes artifacts/bench-page.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from tests.app.conftest import Gunicorn  # noqa: E402

ART = ROOT / "artifacts"
LIGHTHOUSE = ROOT / ".cache/lighthouse/node_modules/.bin/lighthouse"
AUDITS = ("first-contentful-paint", "largest-contentful-paint", "total-blocking-time",
          "cumulative-layout-shift", "speed-index")


def lighthouse(url: str, out: Path) -> dict:
    env = {**os.environ, "CHROME_PATH": os.environ.get("CHROMIUM", "/usr/bin/chromium")}
    subprocess.run([str(LIGHTHOUSE), url, "--quiet", "--form-factor=mobile", "--output=json",
                    f"--output-path={out}", "--chrome-flags=--headless=new --no-sandbox"],
                   env=env, check=True, timeout=300)
    r = json.loads(out.read_text())
    return {"scores": {k: round(v["score"] * 100) for k, v in r["categories"].items()},
            "audits": {a: r["audits"][a]["numericValue"] for a in AUDITS}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--path", default="/", help="page to audit (e.g. /?lang=es)")
    a = ap.parse_args()
    if a.runs < 1:
        ap.error("--runs must be at least 1")
    if not LIGHTHOUSE.exists():
        sys.exit(f"bench-page: {LIGHTHOUSE} is missing (scripts/bench-page installs it)")
    tmp = Path(tempfile.mkdtemp(prefix="bench-page-"))
    server = Gunicorn({"MODEL_DIR": str(ROOT / "model/bundles/usbills")}, tmp)
    server.wait_ready()
    load = [os.getloadavg()[0]]
    try:
        runs = [lighthouse(server.url + a.path, tmp / f"run{i}.json") for i in range(a.runs)]
    finally:
        server.stop()
    load.append(os.getloadavg()[0])
    med = {k: statistics.median(r["scores"][k] for r in runs) for k in runs[0]["scores"]}
    vit = {k: statistics.median(r["audits"][k] for r in runs) for k in AUDITS}
    ART.mkdir(exist_ok=True)
    (ART / "bench-page.json").write_text(json.dumps({"runs": runs, "load": load}, indent=2))
    lines = [
        f"Command: `scripts/bench-page --runs {a.runs}`" + (f" --path {a.path}" if a.path != "/"
                                                           else "")
        + f"; Lighthouse 12.8.2, mobile emulation, page {a.path}; medians of {a.runs} runs; load "
        f"average {load[0]:.1f} before, {load[1]:.1f} after ({os.cpu_count()} CPUs).", "",
        "| " + " | ".join(med) + " |", "|" + "---|" * len(med),
        "| " + " | ".join(f"{v:.0f}" for v in med.values()) + " |", "",
        "| FCP | LCP | TBT | CLS | Speed Index |", "|---|---|---|---|---|",
        f"| {vit['first-contentful-paint'] / 1000:.1f} s | "
        f"{vit['largest-contentful-paint'] / 1000:.1f} s | {vit['total-blocking-time']:.0f} ms "
        f"| {vit['cumulative-layout-shift']:.3f} | {vit['speed-index'] / 1000:.1f} s |",
    ]
    (ART / "bench-page.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if min(med.values()) >= 95 else 1


if __name__ == "__main__":
    sys.exit(main())
