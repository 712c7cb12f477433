"""The package's folders and the module names from before them (eventgrad._moved)."""

import subprocess
import sys
import textwrap

from eventgrad._moved import MOVED


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-W", "error", "-c", textwrap.dedent(code)],
                         capture_output=True, text=True, check=True)
    return out.stdout


def test_every_old_name_is_the_moved_module_itself():
    """Each old name imports (in a fresh interpreter, warnings as errors) as the very module of
    its new name, which keeps its own name and spec (relative imports, pickling, reload)."""
    out = _run(f"""
        import importlib, sys
        for old, new in {MOVED!r}.items():
            a = importlib.import_module(old)
            b = importlib.import_module(new)
            assert a is b and sys.modules[old] is b, old
            assert b.__name__ == new and b.__spec__.name == new, (old, b.__spec__.name)
        import eventgrad
        assert callable(eventgrad.simulate)       # not replaced by the module of that name
        from eventgrad.tasks import Task
        assert Task.__module__ == "eventgrad.experiments.tasks"
        print("ok")
        """)
    assert out.strip() == "ok"


def test_old_names_in_a_fresh_process_without_importing_eventgrad_first():
    """``from eventgrad.simulate import ...`` as the first import (the package is imported on
    the way) and ``eventgrad.simulate`` stays the function; the event path loads no torch."""
    out = _run("""
        import sys
        from eventgrad.simulate import simulate_plan
        from eventgrad.readout import max_voltage
        from eventgrad.event.physics import decay
        import eventgrad
        assert callable(eventgrad.simulate) and eventgrad.simulate.__module__ == \\
            "eventgrad.event.simulate"
        print("torch" in sys.modules)
        """)
    assert out.strip() == "False"
