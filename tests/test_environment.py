"""pyproject.toml is the one list of dependencies; environment.yml must mirror it."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = None


def _pyproject_deps() -> dict[str, str]:
    text = (ROOT / "pyproject.toml").read_text()
    if tomllib is not None:
        deps = tomllib.loads(text)["project"]["dependencies"]
    else:
        block = text.split("dependencies = [", 1)[1].split("]", 1)[0]
        deps = re.findall(r'"([^"]+)"', block)
    return dict(_split(d) for d in deps)


def _split(spec: str) -> tuple[str, str]:
    # An environment marker (uvloop's "; sys_platform != 'win32'") has no conda equivalent.
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*([^;]*)", spec)
    return m.group(1).lower().replace("_", "-"), m.group(2).replace(" ", "")


def _env_deps() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    out = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for pip_dep in dep.get("pip", []):
                name, ver = _split(pip_dep)
                out[name] = ver
        else:
            name, ver = _split(dep)
            out[name] = ver
    out.pop("pip", None)
    return out


def test_environment_yml_mirrors_pyproject():
    py, env = _pyproject_deps(), _env_deps()
    python = env.pop("python", None)
    assert python == ">=3.10"
    assert sorted(py) == sorted(env), (
        f"only in pyproject.toml: {sorted(set(py) - set(env))}; "
        f"only in environment.yml: {sorted(set(env) - set(py))}")
    for name in py:
        assert py[name] == env[name], f"{name}: pyproject says {py[name]!r}, environment.yml {env[name]!r}"


def test_every_dependency_has_a_lower_bound():
    for name, ver in _pyproject_deps().items():
        assert ver.startswith(">="), f"{name} needs a lower bound in pyproject.toml"


def test_binder_installs_the_package():
    post = (ROOT / ".binder" / "postBuild").read_text()
    assert "pip install" in post and "-e ." in post
