"""The launch buttons' environment: binder/ (repo2docker) installs what the exercises need.

repo2docker reads binder/ (and then ignores the repository root's configuration): runtime.txt for
the Python version, requirements.txt for pip, postBuild for the rest. These tests parse those
files and hold them to the course's own environment (pyproject.toml, constraints-cpu.txt, the
Makefile), so that a change of pin in one place cannot leave Binder behind.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
REPOSITORY = "https://github.com/rnn-course/rnn-from-math-to-code"


def _requirements() -> list[str]:
    lines = (BINDER / "requirements.txt").read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


def _pinned(name: str, text: str) -> str:
    found = re.findall(rf"^{re.escape(name)}==(\S+)", text, flags=re.M)
    assert len(found) == 1, f"{name} is not pinned once with == in {text!r}"
    return found[0]


def test_python_version_is_the_course_one():
    runtime = (BINDER / "runtime.txt").read_text().strip()
    assert runtime == "python-3.11"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11"


def test_torch_is_the_pinned_cpu_build():
    reqs = _requirements()
    # The version of constraints-cpu.txt, as the PyTorch CPU index spells its wheels (+cpu).
    course_torch = _pinned("torch", (ROOT / "constraints-cpu.txt").read_text())
    assert course_torch == "2.13.0"
    assert _pinned("torch", "\n".join(reqs)) == f"{course_torch}+cpu"
    assert f"--extra-index-url {CPU_INDEX}" in reqs


def test_the_course_package_is_installed_with_its_extra():
    reqs = _requirements()
    assert "-e .[course]" in reqs
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == "rnn-ref"
    course = " ".join(project["optional-dependencies"]["course"])
    for needed in ["nbgrader", "statsmodels", "pmdarima", "scikit-learn", "wordfreq"]:
        assert needed in course, f"the course extra lacks {needed}"


def test_post_build_installs_recbole_as_the_makefile_does():
    post_build = BINDER / "postBuild"
    assert post_build.stat().st_mode & 0o111, "postBuild must be executable"
    pin = _pinned("recbole", (ROOT / "Makefile").read_text().replace("'", "\n"))
    text = post_build.read_text()
    assert "--no-deps" in text
    assert f"recbole=={pin}" in text


def test_launch_buttons_point_at_this_repository():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["launch_buttons"]["binderhub_url"] == "https://mybinder.org"
    assert config["repository"]["url"] == REPOSITORY


def test_intro_says_how_to_install_anywhere():
    intro = (ROOT / "book" / "intro.md").read_text()
    assert f'pip install "rnn-ref[course] @ git+{REPOSITORY}"' in intro
    assert "binder/" in intro
