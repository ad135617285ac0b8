"""The operator's process needs no kubernetes package: its image does not ship one."""

from __future__ import annotations

import os
import subprocess
import sys


def test_the_operator_imports_and_registers_its_handlers_without_the_kubernetes_package() -> None:
    # In a fresh interpreter where `import kubernetes` fails, as in the image (the dev environment has it, for
    # the tests). kopf loads it when it can, so it must also not be needed to log in: handlers.login is.
    probe = ("import sys; sys.modules['kubernetes'] = None\n"
             "import ironlb.operator.main\n"
             "from ironlb.operator import handlers\n"
             "print(sorted(h.id for h in handlers.REGISTRY._activities.get_all_handlers()), "
             "sorted(m for m in ('kubernetes', 'urllib3') if sys.modules.get(m)))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env, timeout=60)
    assert out.stdout.strip() == "['configure', 'login'] []"
