"""Does `--precision auto` run at the speed of the faster precision, and measure only once? JSON line + table.

`python benchmarks/precision.py [--model-dir pretrained]` copies the test split's pictures (the model's
split.json, from data128_128/: LFW-framed photos) into a folder and runs `python infer.py FOLDER
--whole-image --precision P` for P in fp32, bf16 and auto, each in a fresh process, interleaved for
--repeats rounds (the order reversed every other round). `auto` starts from an empty verdict cache (or
--cache-dir), so its first run measures and every later one must read the cache. Each figure is
infer.py's own images/s (model loading excluded), median (min-max) over the rounds. Targets: auto's
median at least 0.9x the faster precision's, and one measurement in all. See benchmarks/README.md.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import machine_info, ratio_spread, report, spread, spread_cell

ROOT = Path(__file__).resolve().parent.parent
PRECISIONS = ("fp32", "bf16", "auto")
AUTO_TARGET = 0.9
RATE = re.compile(r"([\d.]+) images/s")


class PrecisionBenchError(Exception):
    """The benchmark cannot run as asked; the message says why."""


def parse_args(argv):
    parser = argparse.ArgumentParser(description="infer.py --whole-image in fp32, bf16 and auto on the test split's "
                                                 "pictures; one JSON line + a table.")
    flag = parser.add_argument
    flag("--model-dir", default=str(ROOT / "pretrained"), help="run folder with split.json (default: pretrained)")
    flag("--data", default=str(ROOT / "data128_128"), help="data folder of the pictures (default: data128_128)")
    flag("--images", type=int, help="only the first this many test pictures (default: all)")
    flag("--repeats", type=int, default=5, help="rounds of the three runs (default: 5)")
    flag("--cache-dir", help="verdict cache folder for auto (default: a new, empty one)")
    flag("--json-out", help="also write the JSON line to this file")
    args = parser.parse_args(argv)
    if args.repeats < 1 or (args.images is not None and args.images < 1):
        parser.error("--repeats and --images must be at least 1")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        result = run(args)
    except PrecisionBenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    report(result, table(result), args.json_out)
    return 0


def run(args):
    load_start = machine_info()["load_average_1m"]
    with tempfile.TemporaryDirectory(prefix="precision-bench-") as scratch:
        folder = split_pictures(Path(args.model_dir), Path(args.data), args.images, Path(scratch) / "pictures")
        cache = Path(args.cache_dir or Path(scratch) / "cache")
        runs = {precision: [] for precision in PRECISIONS}
        for repeat in range(args.repeats):
            for precision in PRECISIONS if repeat % 2 == 0 else PRECISIONS[::-1]:
                runs[precision].append(infer_run(args.model_dir, folder, precision, cache, Path(scratch) / "out"))
        images = len(list(folder.iterdir()))
    rates = {precision: [r["images_per_second"] for r in done] for precision, done in runs.items()}
    faster = max(("fp32", "bf16"), key=lambda precision: spread(rates[precision])["median"])
    ratio = ratio_spread(rates["auto"], rates[faster])
    measured = sum("measured in" in r["precision_line"] for r in runs["auto"])
    return {"model_dir": str(args.model_dir), "images": images, "repeats": args.repeats,
            "img_per_s": {precision: spread(values) for precision, values in rates.items()},
            "auto_lines": [r["precision_line"] for r in runs["auto"]],
            "auto_ran": sorted({r["precision_line"].split()[1] for r in runs["auto"]}),
            "faster": faster, "auto_over_faster": ratio, "auto_target": AUTO_TARGET,
            "auto_met": ratio["median"] >= AUTO_TARGET, "measurements": measured, "measured_once": measured == 1,
            "machine": {**machine_info(), "load_average_1m_at_start": load_start}}


def split_pictures(model_dir, data, count, folder):
    """A folder of copies of the test split's pictures (split.json of `model_dir`, files of data/inputs)."""
    split_file = model_dir / "split.json"
    if not split_file.is_file():
        raise PrecisionBenchError(f"{split_file} does not exist: pass a --model-dir written by training")
    names = json.loads(split_file.read_text())["test"][:count]
    files = {path.stem: path for path in (data / "inputs").glob("*")} if (data / "inputs").is_dir() else {}
    missing = [name for name in names if name not in files]
    if missing:
        raise PrecisionBenchError(f"{data / 'inputs'} lacks {len(missing)} of the test pictures (first: {missing[0]}): "
                                  "pass the model's --data")
    folder.mkdir(parents=True)
    for name in names:
        shutil.copy(files[name], folder / files[name].name)
    return folder


def infer_run(model_dir, folder, precision, cache, out):
    """infer.py's precision line and images/s on the folder, in a fresh process with `cache` as its cache."""
    command = [sys.executable, str(ROOT / "infer.py"), str(folder), "--whole-image", "--precision", precision,
               "--model-dir", str(model_dir), "--out", str(out)]
    env = {**os.environ, "FACE_SEGMENTATION_CACHE": str(cache)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    lines = done.stdout.splitlines()
    precision_lines = [line for line in lines if line.startswith("precision: ")]
    rates = [RATE.search(line) for line in lines if line.startswith("segmented ")]
    if done.returncode != 0 or not precision_lines or not rates or rates[-1] is None:
        problem = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise PrecisionBenchError(f"infer.py --precision {precision} failed (exit {done.returncode}): {problem}")
    shutil.rmtree(out, ignore_errors=True)
    return {"precision_line": precision_lines[0], "images_per_second": float(rates[-1][1])}


def table(result):
    machine, rates = result["machine"], result["img_per_s"]

    ratio = result["auto_over_faster"]
    lines = [f"infer.py --whole-image on {result['images']} test pictures of {result['model_dir']}, median (min-max) "
             f"of {result['repeats']} rounds; CPU: {machine['cpu']}, {machine['cores']} cores, native bf16: "
             f"{'yes (' + ', '.join(machine['bf16_flags']) + ')' if machine['bf16_native'] else 'no'}; load average "
             f"{machine['load_average_1m_at_start']} at the start, {machine['load_average_1m']} at the end",
             "", "| --precision | images/s |", "|---|---|"]
    lines += [f"| {precision} | {spread_cell(rates[precision])} |" for precision in PRECISIONS]
    lines += ["", f"auto ran {', '.join(result['auto_ran'])}; its first line: {result['auto_lines'][0]}",
              f"auto / {result['faster']} (the faster): {spread_cell(ratio, '{:.2f}')}x; "
              f"target >= {result['auto_target']}x (median): {'met' if result['auto_met'] else 'NOT met'}",
              f"measurements by auto in {result['repeats']} runs: {result['measurements']}; target 1 (then the cache): "
              f"{'met' if result['measured_once'] else 'NOT met'}"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
