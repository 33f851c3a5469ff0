"""The payer's tap on "Use this device's fingerprint or face" on the hosted checkout page to the page showing the
channel's screen (the step-up passed, the attempt opened at the channel), in headless Chromium with a virtual
platform authenticator, over repeated runs (goal p99 < 1 s locally). Runs tests/browser/test_checkout_stepup.py's
WebAuthn test with more runs and prints its figure; needs /usr/bin/chromium.

    python bench/risk_browser.py [--runs 50]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    if not os.path.exists("/usr/bin/chromium"):
        print("skipped: /usr/bin/chromium is not installed")
        return 0
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/browser/test_checkout_stepup.py", "-k", "platform_authenticator", "-q",
         "-s", "-p", "no:cacheprovider"],
        cwd=ROOT, env={**os.environ, "PAYHUB_BROWSER_RUNS": str(args.runs)}, capture_output=True, text=True,
        check=False)
    lines = [line for line in done.stdout.splitlines() if "step-up tap" in line]
    print("\n".join(lines) if lines else done.stdout[-2000:])
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
