"""A lab's own family and data, shared by the screening tests: the Sun et al. 2021 triple cation.

The data are the real measurements bundled under ``bench/data/sun2021`` (MIT licence, see its README):
S. Sun et al., Matter 4, 1305 (2021), doi:10.1016/j.matt.2021.01.008, via Liang et al., npj Comput.
Mater. 7, 188 (2021).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_pool import FAMILY_RECORD  # noqa: E402

SUN = Path(__file__).resolve().parents[1] / "bench" / "data" / "sun2021" / "perovskite_stability.csv"

#: The triple-cation family of Sun et al. 2021, its source and its quantity, as a lab defines them in a
#: record file: the same record the pool benchmark loads (bench/bench_pool.py), spelled once there.
CSFAMA = FAMILY_RECORD["families"][0]
SOURCE = FAMILY_RECORD["source"]
INSTABILITY = FAMILY_RECORD["quantities"][0]


def sun_rows(n: int | None = None) -> pd.DataFrame:
    """Replicates averaged per composition (94 compositions): columns a (Cs), b (FA), y (instability)."""
    df = pd.read_csv(SUN)
    df = df.groupby(["CsPbI", "FAPbI"], as_index=False)["Instability index"].mean()
    out = pd.DataFrame({"a": df["CsPbI"], "b": df["FAPbI"], "y": df["Instability index"]})
    return out if n is None else out.head(n)


def triple_cation_record(path: Path, rows: pd.DataFrame) -> Path:
    """A record file as a lab writes it: its family, its quantity, and measured samples."""
    doc = {"matdb": 1, "source": SOURCE, "families": [CSFAMA], "quantities": [INSTABILITY],
           "samples": [{"id": f"sun-{i}", "family": "CsFAMAPbI3", "params": {"a": float(r.a), "b": float(r.b)}}
                       for i, r in zip(rows.index, rows.itertuples(), strict=True)],
           "measurements": [{"sample": f"sun-{i}", "technique": "other", "locator": "dataset",
                             "results": [{"quantity": "instability_index", "value": float(r.y)}]}
                            for i, r in zip(rows.index, rows.itertuples(), strict=True)]}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path
