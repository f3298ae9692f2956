"""The deployment folder ``platform/`` must not shadow the standard library's ``platform``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_platform_folder_is_not_a_package() -> None:
    assert (ROOT / "platform").is_dir()
    assert not (ROOT / "platform" / "__init__.py").exists()


def test_stdlib_platform_under_pytest() -> None:
    import platform

    assert platform.system() in {"Linux", "Darwin", "Windows"}
    assert Path(platform.__file__).resolve().parent != ROOT / "platform"
    assert not str(Path(platform.__file__).resolve()).startswith(str(ROOT / "platform"))


def test_stdlib_platform_under_manage_py() -> None:
    code = "import platform; print(platform.system()); print(platform.__file__)"
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    system, location = result.stdout.strip().splitlines()[-2:]
    assert system in {"Linux", "Darwin", "Windows"}
    assert not location.startswith(str(ROOT / "platform"))
