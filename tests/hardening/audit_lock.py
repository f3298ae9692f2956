"""Audit the locked dependencies (``requirements.lock``) for known vulnerabilities.

Run by ``tests/run_tests.sh`` (and ``make audit``)::

    python -m tests.hardening.audit_lock requirements.lock

1. ``pip-audit -r requirements.lock --no-deps --disable-pip`` asks PyPI's JSON API for
   each pinned version's vulnerabilities (``/pypi/<name>/<version>/json``).
2. Where that answer is missing (a registry mirror that serves only the project
   document, as on the CI machines), the project document ``/pypi/<name>/json`` still
   lists the vulnerabilities of the *latest* release: a package pinned at its latest
   release is audited from it; a package pinned lower is reported as not audited, with
   its latest version, so nobody mistakes silence for a clean bill.

Vulnerabilities listed in ``requirements-audit-ignore.txt`` (one id per line, with the
reason in a comment) are reported but do not fail. Exit status: 1 when a vulnerability
that is not ignored is found, 0 otherwise; the summary says how many packages each
source audited.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IGNORE_FILE = ROOT / "requirements-audit-ignore.txt"
PROJECT_JSON = "https://pypi.org/pypi/{name}/json"


@dataclass
class Report:
    audited_by_pip_audit: list[str] = field(default_factory=list)
    audited_latest: list[str] = field(default_factory=list)
    not_audited: list[str] = field(default_factory=list)
    vulnerable: list[tuple[str, str, str, str]] = field(default_factory=list)  # package, version, id, fixed in


def pinned(lock: Path) -> dict[str, str]:
    found = {}
    for line in lock.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line and not line.startswith("-"):
            name, version = line.split("==", 1)
            found[canonical(name)] = version.strip()
    return found


def canonical(name: str) -> str:
    """PEP 503 normalized name."""
    return re.sub(r"[-_.]+", "-", name.strip()).lower()


def ignored() -> set[str]:
    if not IGNORE_FILE.exists():
        return set()
    return {line.split("#", 1)[0].strip() for line in IGNORE_FILE.read_text().splitlines()} - {""}


def run_pip_audit(lock: Path, pip_audit: str) -> dict[str, object]:
    result = subprocess.run([pip_audit, "-r", str(lock), "--no-deps", "--disable-pip", "--format", "json",
                             "--progress-spinner", "off"], capture_output=True, text=True, timeout=900)
    if result.returncode not in (0, 1) or not result.stdout.strip():
        raise RuntimeError(f"pip-audit failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    return json.loads(result.stdout)


def latest_release(name: str) -> tuple[str, list[dict[str, object]], list[str]] | None:
    """(latest version, its vulnerabilities, every released version) from the project document,
    or None if unreachable."""
    try:
        with urllib.request.urlopen(PROJECT_JSON.format(name=name), timeout=30) as answer:
            document = json.load(answer)
    except (urllib.error.URLError, TimeoutError, ValueError):
        return None
    return (str(document["info"]["version"]), list(document.get("vulnerabilities") or []),
            list(document.get("releases") or {}))


def newest_patch(version: str, releases: list[str]) -> str | None:
    """The highest final release of the same major.minor series above ``version``, if any."""
    def key(text: str) -> tuple[int, ...] | None:
        parts = text.split(".")
        return tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) else None

    mine = key(version)
    if mine is None or len(mine) < 2:
        return None
    same = [r for r in releases if (k := key(r)) is not None and k[:2] == mine[:2] and k > mine]
    return max(same, key=lambda r: key(r) or ()) if same else None


def audit(lock: Path, pip_audit: str) -> Report:
    report = Report()
    versions = pinned(lock)
    try:
        dependencies = run_pip_audit(lock, pip_audit).get("dependencies", [])
    except (RuntimeError, OSError, subprocess.TimeoutExpired, ValueError) as exc:
        print(f"pip-audit could not run ({exc}); auditing from the project documents only")
        dependencies = [{"name": name, "skip_reason": "pip-audit did not run"} for name in versions]
    for dependency in dependencies:  # type: ignore[union-attr]
        name = canonical(str(dependency["name"]))
        if "skip_reason" not in dependency:
            report.audited_by_pip_audit.append(name)
            for vuln in dependency.get("vulns", []):
                report.vulnerable.append((name, str(dependency["version"]), vuln["id"],
                                          ", ".join(vuln.get("fix_versions", [])) or "no fix"))
            continue
        version = versions.get(name, "?")
        latest = latest_release(name)
        if latest is None or latest[0] != version:
            note = " (project document unreachable)"
            if latest is not None:
                patch = newest_patch(version, latest[2])
                note = f" (latest {latest[0]}" + (f"; NEWER PATCH RELEASE {patch} in its series" if patch else "") + ")"
            report.not_audited.append(f"{name}=={version}{note}")
            continue
        report.audited_latest.append(name)
        for vuln in latest[1]:
            report.vulnerable.append((name, version, str(vuln.get("id")),
                                      ", ".join(map(str, vuln.get("fixed_in") or [])) or "no fix"))
    return report


def main(argv: list[str]) -> int:
    lock = Path(argv[1] if len(argv) > 1 else ROOT / "requirements.lock")
    pip_audit = str(Path(sys.executable).with_name("pip-audit"))
    report = audit(lock, pip_audit)
    skip = ignored()
    failing = [v for v in report.vulnerable if v[2] not in skip]
    total = len(pinned(lock))
    print(f"pip-audit of {lock.name}: {total} pinned packages; {len(report.audited_by_pip_audit)} audited by "
          f"pip-audit (per-version PyPI data), {len(report.audited_latest)} audited from the project document "
          f"(pinned at the latest release), {len(report.not_audited)} NOT audited (this registry serves no "
          f"per-version data and they are not at their latest release)")
    for name in report.not_audited:
        print(f"  not audited: {name}")
    for package, version, vuln, fixed in report.vulnerable:
        state = "ignored (requirements-audit-ignore.txt)" if vuln in skip else "VULNERABLE"
        print(f"  {state}: {package}=={version} {vuln} (fixed in: {fixed})")
    print(f"pip-audit: {len(failing)} vulnerabilities to fix" if failing else "pip-audit: no known vulnerabilities "
          "in the audited packages")
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
