"""Hostile upload files for the isolation tests (matdb_app.isolation): small on disk, huge in memory."""

from __future__ import annotations

import os
import signal
import time

from ingest.errors import IngestError
from matdb_app.isolation import note

#: The YAML alias bomb of issue 15: ten zeros, then levels that each repeat the previous one ten
#: times, in a measurement's free-form ``conditions``. yaml.safe_load keeps the aliases shared
#: (small), but the record reader's ``_plain`` (ingest/readers/records.py) copies every list it
#: meets, so nine levels become 10**9 values (gigabytes, minutes of CPU) before any validation.
BOMB_LEVELS = 9


def alias_bomb(levels: int = BOMB_LEVELS) -> bytes:
    """A record file of about 1 KB whose ``conditions`` expand to 10**levels values."""
    lines = ["      l0: &l0 [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]"]
    for i in range(1, levels):
        lines.append(f"      l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]")
    conditions = "\n".join(lines)
    return f"""matdb: 1
source: {{key: bomb, kind: notebook}}
samples:
  - {{id: bomb-1, family: FAPbIBr, params: {{x: 0.25}}}}
measurements:
  - sample: bomb-1
    technique: plqy
    conditions:
{conditions}
    results:
      - {{quantity: plqy, value: 4 %}}
""".encode()


GOOD = b"""matdb: 1
source: {key: nb7, kind: notebook}
samples:
  - {id: nb7-s1, family: FAPbIBr, params: {x: 0.25}}
measurements:
  - sample: nb7-s1
    technique: impedance
    results:
      - {quantity: activation_energy, value: 0.31 eV}
"""


def address_space_mb() -> float:
    """The address space of this process (VmSize, Linux), in MB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmSize in /proc/self/status")


def worker_baseline_mb() -> float:
    """In a worker: the address space once the upload check's modules are imported."""
    import matdb_app.ingest  # noqa: F401  (what the upload worker imports)

    return address_space_mb()


# --- functions run in a worker by tests/test_isolation.py (module level: pickled by name) ---

def square(x: int) -> int:
    return x * x


def hog(chunk_mb: int) -> int:
    note(str(os.getpid()))
    held = []
    while True:  # touches every page: real memory, not only address space
        held.append(bytearray(chunk_mb * 2**20))


def sleep(seconds: float) -> None:
    note(str(os.getpid()))
    time.sleep(seconds)


def user_mistake() -> None:
    raise IngestError("value 1.3 is outside the range [0, 1]", file="a.yaml", line=7, record="synthesis s1",
                      field="params.x")


def bug() -> None:
    raise KeyError("x")


def exit_with(code: int) -> None:
    os._exit(code)


def kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def served_worker_baseline_mb() -> float:
    """In a worker of ``streamlit run``: its fork server also imports the streamlit command (__main__)."""
    import streamlit.web.cli  # noqa: F401

    return worker_baseline_mb()
