import os
import subprocess
import sys

import dltoolkit


def test_all_is_pinned():
    assert dltoolkit.__all__ == [
        "DLToolkitError",
        "Graph",
        "Spec",
        "check",
        "explain",
        "export",
        "list_recipes",
        "load",
        "load_ipython_extension",
        "lr_find",
        "recipe",
        "run",
        "studio",
        "sweep",
    ]


def test_every_public_name_resolves():
    for name in dltoolkit.__all__:
        assert getattr(dltoolkit, name) is not None, name


def test_import_is_light():
    code = (
        "import sys, dltoolkit; heavy = [m for m in ('ray', 'matplotlib', 'jupyterlab', 'pytorch_lightning', "
        "'ipywidgets') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_recipes_are_listed():
    assert {"digits-mlp", "digits-cnn", "breast-cancer", "wine", "diabetes", "seed-linear"} <= set(
        dltoolkit.list_recipes()
    )


def test_load_ext_dltoolkit_registers_the_magics():
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "dltoolkit")
    assert {"dlt_run", "dlt_tune", "dlt_sweeps"} <= set(shell.magics_manager.magics["line"])


def _modules_after_load_ext(env: dict[str, str]) -> set[str]:
    """The heavy modules a fresh process holds after ``%load_ext dltoolkit``."""
    code = (
        "import sys\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "shell = InteractiveShell.instance()\n"
        "shell.run_line_magic('load_ext', 'dltoolkit')\n"
        "assert 'dlt_tune' in shell.magics_manager.magics['line']\n"
        "print(' '.join(m for m in ('torch', 'pytorch_lightning', 'dltoolkit.tune.training', 'ray')"
        " if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=180, env=os.environ | env
    )
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


def test_load_ext_imports_the_training_libraries_but_not_ray():
    assert _modules_after_load_ext({}) == {"torch", "pytorch_lightning", "dltoolkit.tune.training"}


def test_load_ext_stays_light_with_preload_off():
    assert not _modules_after_load_ext({"DLTOOLKIT_PRELOAD": "0"}) & {
        "pytorch_lightning",
        "dltoolkit.tune.training",
    }
