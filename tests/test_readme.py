"""Every Python block of the README runs on its own (a fresh namespace each)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_the_readme_has_python_blocks():
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("k", range(len(BLOCKS)))
def test_readme_block_runs_alone(k, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)      # a block that writes files writes them here
    exec(compile(BLOCKS[k], f"README.md python block {k}", "exec"), {"__name__": "readme"})
