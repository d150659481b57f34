"""The layer-family table: which Keras 3 layer families deploy to which board, or why not.

One tiny model per family (tests/layer_families.py: random weights, random-normal calibration
data), converted once through mcuq's conversion path (its rewrites included), then deployed
through the Python API to each column; a cell reads PASS (deployed, validate PASS with every
golden vector bit-exact on x86 TFLite Micro), FAIL (deployed, a check failed) or the first
words of the one-line refusal.

    python benchmarks/layer_families.py                       # esp32, nano33ble, nucleo_f446re plain-C
    python benchmarks/layer_families.py --columns esp32 nucleo_f446re:c --families Dense gelu
    python benchmarks/layer_families.py --json table.json

Columns are BOARD or BOARD:RUNTIME. Converting costs about 2 minutes on a quiet 2-core machine,
each deploy a few seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

DEFAULT_COLUMNS = ["esp32", "nano33ble", "nucleo_f446re:c"]


def _cell(tflite: Path, column: str, out: Path) -> tuple[str, str]:
    """(short cell, full detail) for one family on one board[:runtime]."""
    from mcuq.common.errors import MCUQError
    from mcuq.deploy import DeployRequest, deploy

    board, _, runtime = column.partition(":")
    try:
        result = deploy(DeployRequest(model=str(tflite), board=board, runtime=runtime or None, out=str(out), force=True))
    except MCUQError as exc:
        return "refused", str(exc)
    goldens = [c for c in result.validation.checks if c.name.startswith("golden vector")] if result.validation else []
    exact = bool(goldens) and all(c.passed and "bit-exact" in c.detail for c in goldens)
    return ("PASS" if result.ok and exact else "FAIL"), result.result_line


def main() -> int:
    from layer_families import FAMILY_NAMES, convert_all, file_stem

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--columns", nargs="+", default=DEFAULT_COLUMNS, help="BOARD or BOARD:RUNTIME (default: %(default)s)")
    parser.add_argument("--families", nargs="+", default=None, choices=FAMILY_NAMES, metavar="FAMILY")
    parser.add_argument("--json", type=Path, default=None, help="also write the table with the full refusal lines")
    args = parser.parse_args()
    families = args.families or FAMILY_NAMES
    table: dict[str, dict[str, dict[str, str]]] = {}
    with tempfile.TemporaryDirectory(prefix="mcuq-families-") as tmp:
        converted = convert_all(Path(tmp) / "models", families)
        for family in families:
            c = converted[family]
            row: dict[str, dict[str, str]] = {}
            for column in args.columns:
                if c.tflite is None:
                    row[column] = {"cell": "refused", "detail": c.refusal or "?"}
                    continue
                cell, detail = _cell(c.tflite, column, Path(tmp) / "projects" / f"{file_stem(family)}-{column.replace(':', '-')}")
                row[column] = {"cell": cell, "detail": detail}
            row["rewrites"] = {"cell": "; ".join(c.rewrites), "detail": ""}
            table[family] = row
            print(f"{family:<24}" + "".join(f" {row[col]['cell']:<10}" for col in args.columns), flush=True)
    print()
    print("| family | " + " | ".join(args.columns) + " | rewritten by mcuq |")
    print("|---|" + "---|" * (len(args.columns) + 1))
    for family, row in table.items():
        cells = [row[col]["cell"] if row[col]["cell"] != "refused" else f"refused: {row[col]['detail'][:90]}" for col in args.columns]
        print(f"| {family} | " + " | ".join(cells) + f" | {row['rewrites']['cell'] or '-'} |")
    totals = {col: sum(row[col]["cell"] == "PASS" for row in table.values()) for col in args.columns}
    print("\ndeploy with validate PASS: " + ", ".join(f"{col} {n}/{len(table)}" for col, n in totals.items()))
    if args.json:
        args.json.write_text(json.dumps(table, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
