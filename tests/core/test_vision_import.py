"""torchvision imports and builds models beside the CPU torch (dltoolkit._vision)."""

import subprocess
import sys


def test_torchvision_imports_in_a_fresh_process_and_builds_a_resnet():
    code = (
        "from dltoolkit._vision import torchvision\n"
        "import torch\n"
        "tv = torchvision()\n"
        "m = tv.models.resnet18(weights=None, num_classes=3).eval()\n"
        "print(tuple(m(torch.zeros(1, 3, 32, 32)).shape))\n"
        "from torchvision.transforms import v2\n"
        "print(tuple(v2.Resize(8)(torch.zeros(3, 16, 16, dtype=torch.uint8)).shape))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["(1,", "3)", "(3,", "8,", "8)"]


def test_lightning_and_torchmetrics_import_after_dltoolkit():
    """They import torchvision themselves whenever it is installed: dltoolkit's finder makes that work."""
    code = (
        "import sys, dltoolkit\n"
        "assert 'torch' not in sys.modules\n"
        "import pytorch_lightning, torchmetrics, torchvision\n"
        "print(torchvision.__version__.split('+')[0])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().count(".") == 2
