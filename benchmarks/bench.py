"""How fast this implementation trains and segments on this machine, and how it compares to the peers.

`python benchmarks/bench.py [--peers --torch-python PATH]` prints one JSON line, then the same numbers
as markdown tables. For fp32 and bf16 (each in a fresh process, measure.py) it measures training and
raw inference throughput, infer.segment() end to end on a folder of JPEGs, the training step's peak
memory, the achieved GFLOP/s against this machine's matmul peak, and the time the Dataset takes to
read data128_128/. With --peers it runs the two independent implementations beside it
(peer_tf1_graph.py, and peer_torch.py where torch is installed) on the same shapes and checks the
speed targets against them. Every figure is the median of --repeats rounds, with their min and max;
in each round ours and the peers run one after the other, so that a slow spell of a shared machine
falls on both, and a target counts as met only when it holds beyond that spread. The JSON and the
tables name the CPU and whether it has native bf16, so figures from machines with and without it
are not mixed. The bf16 targets are judged where bf16 is the faster precision of the kind of work
(what `--precision auto` then runs); elsewhere the fp32 targets stand alone. This file only
orchestrates and never imports TensorFlow. See benchmarks/README.md.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from runs import cpu_features  # noqa: E402

MEASURE = HERE / "measure.py"
REFERENCE_DESCRIPTION = "C7,64,2C7,64,1M2C7,64,2C7,64,1M2C7,64,2C7,64,1M2"  # the peers' network
PRECISIONS = ("fp32", "bf16")
PEERS = {"tf1_graph": HERE / "peer_tf1_graph.py", "torch": HERE / "peer_torch.py"}
DEFAULT_DATA = ROOT / "data128_128"
# The CPU features that decide how fast fp32 and bf16 convolutions can be.
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "avx512_fp16",
             "avx_vnni", "amx_tile", "amx_bf16")
# The speed targets. Against the TF1-graph peer: (target, train or infer, our precision, minimum ours / peer).
PEER_TARGETS = (("training fp32 >= 1.0x TF1-graph peer", "train", "fp32", 1.0),
                ("training bf16 >= 1.5x TF1-graph peer", "train", "bf16", 1.5),
                ("raw inference bf16 >= 1.8x TF1-graph peer", "infer", "bf16", 1.8))
FOLDER_TARGET = 0.8
MEMORY_LIMIT_MB = 3 * 1024
MEMORY_TARGET_BATCH = 100


class BenchError(Exception):
    """The benchmark cannot run as asked; the message says why and what to do."""


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Benchmark training, inference and infer.py against the peers. "
                                                 "Prints one JSON line, then markdown tables.")
    flag = parser.add_argument
    flag("--arch", default=REFERENCE_DESCRIPTION, help="architecture description (default: the reference 7x7)")
    flag("--batch-size", type=int, default=100, help="images per step (default: 100)")
    flag("--size", type=int, default=128, help="image height and width (default: 128)")
    flag("--steps", type=int, default=8, help="timed steps of training and of inference (default: 8)")
    flag("--warmup", type=int, default=2, help="untimed steps before them (default: 2)")
    flag("--repeats", type=int, default=5,
         help="rounds, each a fresh process per precision and per peer; figures are their median (default: 5)")
    flag("--precisions", default=",".join(PRECISIONS), help="comma-separated subset of fp32,bf16 (default: both)")
    flag("--folder-images", type=int, default=300, help="JPEGs in the folder infer.segment() reads (default: 300)")
    flag("--data", default=str(DEFAULT_DATA),
         help="data folder for load_s and the folder's JPEGs (default: data128_128/)")
    flag("--matmul-size", type=int, default=4096, help="n of the n x n matmul that measures the peak (default: 4096)")
    flag("--matmul-seconds", type=float, default=2.0, help="time each matmul peak at least this long (default: 2)")
    flag("--peers", action="store_true", help="also run the peers on the same shapes and check the targets")
    flag("--torch-python", default=sys.executable,
         help="python with torch for peer_torch.py (default: this one; the peer is skipped when it has no torch)")
    flag("--json-out", help="also write the JSON line to this file")
    args = parser.parse_args(argv)
    args.precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    if not args.precisions or any(p not in PRECISIONS for p in args.precisions):
        parser.error(f"--precisions takes a comma-separated subset of {','.join(PRECISIONS)}")
    for name in ("batch_size", "size", "steps", "repeats", "folder_images", "matmul_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must be 0 or more")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        result = run(args)
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    report(result, table(result), args.json_out)
    return 0


def report(result, tables, json_out=None):
    """Print the result as one JSON line, then its tables; also write the line to `json_out` if given."""
    line = json.dumps(result)
    print(line)
    print(tables)
    if json_out:
        Path(json_out).write_text(line + "\n")


def run(args):
    """Every measurement, as the dict printed as JSON."""
    notes = []
    peer_scripts = find_peers(args, notes) if args.peers else {}
    machine = machine_info()
    data = find_data(Path(args.data), notes)
    result = {"config": {name: getattr(args, name) for name in (
                  "arch", "batch_size", "size", "steps", "warmup", "repeats", "folder_images", "matmul_size")},
              "machine": machine, "data": str(data) if data else None}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        folder = image_folder(Path(tmp) / "images", data, args.folder_images, args.size, notes)
        measured, peers = rounds(args, folder, data, peer_scripts, notes)
    first = measured[args.precisions[0]][0]
    machine["tensorflow"] = first["tensorflow"]
    result["flops_per_image"] = first["flops_per_image"]
    result["load_s"] = None if first["load_s"] is None else spread(
        [m["load_s"] for m in measured[args.precisions[0]]])
    for precision, repeats in measured.items():
        result[precision] = derived(repeats, result["flops_per_image"])
    result["peers"] = {name: peer_figures(repeats) if repeats else None for name, repeats in peers.items()}
    if args.peers and "torch" not in peer_scripts:
        result["peers"]["torch"] = None
    comparable = args.arch == REFERENCE_DESCRIPTION
    if args.peers and not comparable:
        notes.append(f"the peers always run the reference network, not --arch {args.arch}: "
                     "the ratios are printed but the targets against them are not judged")
    if not machine["bf16_native"]:
        notes.append(f"this CPU has none of {', '.join(cpu_features.BF16_FLAGS)}: bf16 convolutions and matmuls "
                     "are emulated without bf16 instructions, so expect bf16 slower than fp32 here")
    if any(result[p][f"{kind}_fraction_of_peak"]["max"] > 1 for p in measured for kind in ("train", "infer")):
        notes.append(f"the {args.matmul_size}x{args.matmul_size} matmul ran slower than the convolutions, so some "
                     "shares of its peak are over 100%: it measures a lower bound of the machine's peak")
    result["faster"] = faster(result)
    result["ratios"] = ratios(result)
    result["targets"] = targets(result, comparable)
    result["notes"] = notes
    return result


def rounds(args, folder, data, peer_scripts, notes):
    """({precision: [measure.py's numbers of each round]}, {peer: [its numbers of each round]}).

    Each round runs every precision and every peer once, in a fresh process each; odd rounds run
    them in the reverse order, so that neither side always runs first. A peer that fails is dropped
    (its list emptied, with a note) and not run again."""
    measured = {p: [] for p in args.precisions}
    peers = {name: [] for name in peer_scripts}
    jobs = [("ours", p) for p in args.precisions] + [("peer", name) for name in peer_scripts]
    failed = set()
    for repeat in range(args.repeats):
        for side, name in jobs if repeat % 2 == 0 else jobs[::-1]:
            if side == "ours":
                measured[name].append(run_measure(args, name, folder, data if name == args.precisions[0] else None))
            elif name not in failed:
                python, script = peer_scripts[name]
                figures = run_peer(python, script, args, notes)
                if figures is None:
                    failed.add(name)
                    peers[name] = []
                else:
                    peers[name].append(figures)
    return measured, peers


def run_measure(args, precision, folder, data):
    """measure.py's numbers for one precision, from a fresh process (so its peak memory is its own)."""
    command = [sys.executable, str(MEASURE), "--precision", precision, "--arch", args.arch,
               "--batch-size", str(args.batch_size), "--size", str(args.size), "--steps", str(args.steps),
               "--warmup", str(args.warmup), "--folder", str(folder), "--matmul-size", str(args.matmul_size),
               "--matmul-seconds", str(args.matmul_seconds)] + (["--data", str(data)] if data else [])
    done = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise BenchError(f"measuring {precision} failed (exit {done.returncode}): "
                         f"{last_line(done.stderr).removeprefix('error: ')}")
    return json.loads(lines[-1])


def derived(repeats, flops):
    """One precision's row from its rounds: throughputs, the folder / raw inference ratio, GFLOP/s
    (FLOPs x images/s) and their share of the peak, each as spread or ratio_spread."""
    def values(key, scale=1.0):
        return [scale * m[key] for m in repeats]

    train_gflops, infer_gflops = values("train_img_per_s", flops["train"] / 1e9), values(
        "infer_img_per_s", flops["forward"] / 1e9)
    peak = values("matmul_peak_gflop_per_s")
    return {"train_img_per_s": spread(values("train_img_per_s")),
            "infer_img_per_s": spread(values("infer_img_per_s")),
            "folder_img_per_s": spread(values("folder_img_per_s")),
            "folder_ratio": ratio_spread(values("folder_img_per_s"), values("infer_img_per_s")),
            "peak_rss_mb": spread(values("peak_rss_mb")),
            "train_gflop_per_s": spread(train_gflops),
            "infer_gflop_per_s": spread(infer_gflops),
            "matmul_peak_gflop_per_s": spread(peak),
            "train_fraction_of_peak": ratio_spread(train_gflops, peak),
            "infer_fraction_of_peak": ratio_spread(infer_gflops, peak)}


def spread(values):
    """{"median", "min", "max", "values"} of the rounds' values."""
    return {"median": significant(float(np.median(values))), "min": significant(min(values)),
            "max": significant(max(values)), "values": [significant(v) for v in values]}


def ratio_spread(numerators, denominators):
    """a / b from two sets of rounds: the ratio of the medians, and its worst and best cases across the
    spread (the smallest a over the largest b, the largest a over the smallest b)."""
    return {"median": significant(float(np.median(numerators) / np.median(denominators))),
            "min": significant(min(numerators) / max(denominators)),
            "max": significant(max(numerators) / min(denominators))}


def significant(x, digits=4):
    """x to `digits` significant digits: tiny smoke-run rates must not round to 0."""
    return float(f"{x:.{digits}g}")


# ---------------------------------------------------------------------------------------------
# The data, the machine and the peers
# ---------------------------------------------------------------------------------------------

def find_data(folder, notes):
    """The data folder to read, or None (with a note) when it holds no images."""
    if input_files(folder):
        return folder
    notes.append(f"no images in {folder / 'inputs'}: load_s is null and the folder benchmark uses synthetic JPEGs")
    return None


def input_files(data):
    inputs = data / "inputs"
    if not inputs.is_dir():
        return []
    return sorted(p for p in inputs.iterdir() if p.is_file() and not p.name.startswith("."))


def image_folder(folder, data, count, size, notes):
    """`count` JPEGs from data/inputs (repeated when it holds fewer), or synthetic noise images without data."""
    folder.mkdir(parents=True)
    sources = input_files(data) if data else []
    if sources and len(sources) < count:
        notes.append(f"{data / 'inputs'} has {len(sources)} images: the folder repeats them to {count}")
    rng = np.random.default_rng(0)
    for i in range(count):
        if sources:
            source = sources[i % len(sources)]
            shutil.copy(source, folder / f"{i:05d}_{source.name}")
        else:
            cv2.imwrite(str(folder / f"{i:05d}.jpg"), rng.normal(120, 40, (size, size)).clip(0, 255).astype(np.uint8))
    return folder


def machine_info():
    """The CPU (model, cores, the flags that matter, whether bf16 is native) and the load at the start."""
    cpu, flags = cpu_features.read_cpu()
    return {"cpu": cpu, "cores": os.cpu_count(), "cpu_flags": [f for f in CPU_FLAGS if f in flags],
            "bf16_flags": [f for f in cpu_features.BF16_FLAGS if f in flags],
            "bf16_native": any(f in flags for f in cpu_features.BF16_FLAGS),
            "load_average_1m": round(os.getloadavg()[0], 2)}


def find_peers(args, notes):
    """{peer name: (python, script)}: the TF1 peer runs with this python, the torch one where torch is."""
    peers = {"tf1_graph": (sys.executable, PEERS["tf1_graph"])}
    if not Path(args.torch_python).is_file():
        raise BenchError(f"--torch-python {args.torch_python} does not exist: pass the python of a venv with "
                         "torch (see benchmarks/README.md) or leave the flag out")
    if has_torch(args.torch_python):
        peers["torch"] = (args.torch_python, PEERS["torch"])
    else:
        notes.append(f"peer_torch.py skipped: {args.torch_python} has no torch; pass --torch-python with the "
                     "python of a venv that has it (benchmarks/README.md says how to make one)")
    return peers


def has_torch(python):
    """Whether `python` can import torch, asked without importing it (that takes seconds)."""
    check = "import importlib.util, sys; sys.exit(importlib.util.find_spec('torch') is None)"
    return subprocess.run([python, "-c", check], capture_output=True).returncode == 0


def run_peer(python, script, args, notes):
    """The peer's JSON line on our shapes, or None (with a note) when it fails."""
    command = [python, str(script), "--batch-size", str(args.batch_size), "--size", str(args.size),
               "--steps", str(args.steps), "--warmup", str(args.warmup)]
    done = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        notes.append(f"{script.name} failed (exit {done.returncode}): {last_line(done.stderr)}")
        return None
    return json.loads(lines[-1])


def last_line(text):
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def peer_figures(repeats):
    """A peer's training and inference images/s over its rounds, as spread."""
    return {"impl": repeats[0]["impl"],
            **{key: spread([r[key] for r in repeats]) for key in ("train_img_per_s", "infer_img_per_s")}}


def ratios(result):
    """ours / peer (ratio_spread of the rounds), for training and inference of each precision measured."""
    return {name: {f"{kind}_{p}": ratio_spread(result[p][f"{kind}_img_per_s"]["values"],
                                               peer[f"{kind}_img_per_s"]["values"])
                   for kind in ("train", "infer") for p in PRECISIONS if p in result}
            for name, peer in result["peers"].items() if peer}


def faster(result):
    """{"train", "infer": the faster precision by the medians}, as `--precision auto` measures it; with
    one precision measured, that one."""
    measured = [p for p in PRECISIONS if p in result]
    return {kind: max(measured, key=lambda p: result[p][f"{kind}_img_per_s"]["median"]) for kind in ("train", "infer")}


def targets(result, comparable):
    """The speed targets, each with its median value, its worst case over the rounds, what it needs,
    and met (None with the reason when not judged)."""
    rows = []
    tf1 = result["ratios"].get("tf1_graph")
    for name, kind, precision, needed in PEER_TARGETS:
        value = tf1.get(f"{kind}_{precision}") if tf1 else None
        if not result["peers"]:
            why = "not measured: pass --peers"
        elif not tf1:
            why = "not measured: the TF1-graph peer failed (see the notes)"
        elif value is None:
            why = f"not measured: {precision} is not in --precisions"
        elif precision == "bf16" and result["faster"][kind] != "bf16":
            why = f"not judged: bf16 {kind}s slower than fp32 on this CPU, so auto runs fp32 and the fp32 target stands"
        else:
            why = None if comparable else "not judged: --arch differs from the peers' network"
        rows.append(target_row(name, value, ">=", needed, why))
    measured = [p for p in PRECISIONS if p in result]
    for p in measured:
        rows.append(target_row(f"folder {p} >= {FOLDER_TARGET}x raw inference {p}",
                               result[p]["folder_ratio"], ">=", FOLDER_TARGET, None))
    batch = result["config"]["batch_size"]
    for p in measured:
        why = None if batch == MEMORY_TARGET_BATCH else f"not judged: batch {batch}, not {MEMORY_TARGET_BATCH}"
        rows.append(target_row(f"training {p} peak RSS at batch {MEMORY_TARGET_BATCH} <= {MEMORY_LIMIT_MB} MiB",
                               result[p]["peak_rss_mb"], "<=", MEMORY_LIMIT_MB, why))
    return rows


def target_row(name, figure, sense, needed, why):
    """A target is met only beyond the spread: when its worst case over the rounds (the min of a ratio
    of worst cases for >=, the max for <=) reaches what is needed, not just its median."""
    worst = None if figure is None else figure["min" if sense == ">=" else "max"]
    met = None if why else (worst >= needed if sense == ">=" else worst <= needed)
    return {"target": name, "value": None if figure is None else figure["median"], "worst_case": worst,
            "needed": f"{sense} {needed}", "met": met, "not_judged": why}


# ---------------------------------------------------------------------------------------------
# The tables
# ---------------------------------------------------------------------------------------------

def bf16_line(machine, fastest):
    """The CPU, whether its bf16 is native (bf16 figures of the two kinds of machine must not be mixed)
    and which precision was the faster, the one `--precision auto` runs."""
    if machine["bf16_native"]:
        native = f"native bf16: yes ({', '.join(machine['bf16_flags'])})"
        auto = (f"the faster here, which `--precision auto` measures and runs: {fastest['train']} for training, "
                f"{fastest['infer']} for inference")
    else:
        native = f"native bf16: no (none of {', '.join(cpu_features.BF16_FLAGS)}: bf16 is emulated)"
        auto = "`--precision auto` runs fp32 here without measuring"
    return f"CPU: {machine['cpu'] or 'unknown'}, {machine['cores']} cores; {native}; {auto}."


def spread_cell(figure, fmt="{:.1f}", scale=1.0, unit=""):
    """median (min-max) of a spread or ratio_spread."""
    low, middle, high = (fmt.format(scale * figure[k]) for k in ("min", "median", "max"))
    return f"{middle}{unit} ({low}-{high})"


def table(result):
    c, machine, flops = result["config"], result["machine"], result["flops_per_image"]
    precisions = [p for p in PRECISIONS if p in result]

    def row(label, cell):
        return f"| {label} | " + " | ".join(cell(result[p]) for p in precisions) + " |"

    def number(key, fmt="{:.1f}"):
        return lambda r: spread_cell(r[key], fmt)

    def gflops(kind):
        return lambda r: (f"{spread_cell(r[f'{kind}_gflop_per_s'])}, "
                          f"{spread_cell(r[f'{kind}_fraction_of_peak'], scale=100, unit='%')} of peak")

    if result["load_s"] is None:
        load = "not measured (no data)"
    else:
        load = f"{spread_cell(result['load_s'], '{:.2f}', unit=' s')} reading {result['data']}"
    lines = [f"## {c['arch']}, batch {c['batch_size']}, {c['size']}x{c['size']}, "
             f"{c['warmup']} warm-up + {c['steps']} timed steps, median (min-max) of {c['repeats']} rounds", "",
             bf16_line(machine, result["faster"]), "",
             "| | " + " | ".join(precisions) + " |", "|---|" + "---|" * len(precisions),
             row("training (img/s)", number("train_img_per_s")),
             row("raw inference (img/s)", number("infer_img_per_s")),
             row(f"infer.segment, folder of {c['folder_images']} JPEGs (img/s)", number("folder_img_per_s")),
             row("folder / raw inference", number("folder_ratio", "{:.2f}")),
             row("training peak RSS (MiB)", number("peak_rss_mb", "{:.0f}")),
             row("training GFLOP/s", gflops("train")),
             row("raw inference GFLOP/s", gflops("infer")),
             row(f"matmul peak {c['matmul_size']}x{c['matmul_size']} (GFLOP/s)", number("matmul_peak_gflop_per_s")),
             "", f"Dataset load (load_s): {load}"]
    if result["peers"]:
        kinds = [f"{kind}_{p}" for kind in ("train", "infer") for p in precisions]
        lines += ["", "## Peers (fp32, the reference network), and ours / peer", "",
                  "| peer | train img/s | infer img/s | "
                  + " | ".join(f"ours {k.replace('_', ' ')} / peer" for k in kinds) + " |",
                  "|---|---|---|" + "---|" * len(kinds)]
        for name, peer in result["peers"].items():
            if peer is None:
                lines.append(f"| {name} | not run | - | " + " | ".join("-" for _ in kinds) + " |")
            else:
                lines.append(f"| {name} | {spread_cell(peer['train_img_per_s'])} | "
                             f"{spread_cell(peer['infer_img_per_s'])} | "
                             + " | ".join(spread_cell(result["ratios"][name][k], "{:.2f}", unit="x") for k in kinds)
                             + " |")
        lines += ["", "A ratio's range is its worst and best case: ours' min over the peer's max, ours' max over "
                      "the peer's min."]
    lines += ["", "## Targets", "", "| target | median | worst case | needed | met |", "|---|---|---|---|---|"]
    for t in result["targets"]:
        value, worst = ("-" if v is None else f"{v:.2f}" for v in (t["value"], t["worst_case"]))
        met = t["not_judged"] or ("yes" if t["met"] else "NO")
        lines.append(f"| {t['target']} | {value} | {worst} | {t['needed']} | {met} |")
    lines += ["", f"A target is met only when its worst case over the {c['repeats']} rounds reaches what it "
                  "needs (for a ratio: ours' min over the other's max; for a limit: the max), so that a gap "
                  "within the spread of the repeats does not count."]
    lines += ["", "How measured:",
              f"- FLOPs per image, counted from the layers: forward {flops['forward'] / 1e9:.3f} GFLOP (conv "
              "2*Hout*Wout*k*k*Cin*Cout, each transposed conv as much as the conv it mirrors; batch norm, "
              f"activations, pools left out); training 3 x forward = {flops['train'] / 1e9:.3f} GFLOP. "
              "GFLOP/s = FLOPs x images/s.",
              f"- Peak: a {c['matmul_size']}x{c['matmul_size']} tf.linalg.matmul in the precision's dtype "
              "(2n^3 FLOPs), repeated for the --matmul-seconds after one warm-up.",
              f"- Each figure is the median of {c['repeats']} rounds, min-max beside it. In each round every "
              "precision and every peer runs once, in a fresh process, one after the other (the order reversed "
              "every other round), so that a slow spell of the machine falls on ours and the peers alike.",
              "- Each precision runs in a fresh process (benchmarks/measure.py): first training (training.train()'s "
              "step: RMSE, Adam, logits(training=True), on a fixed random batch), then its peak RSS (VmHWM: "
              "TensorFlow, model and step), then raw inference (model(x, training=False) in a tf.function, output "
              "fetched to numpy), then one infer.segment() call on the folder (decode, resize, forward, write PNG "
              "masks; model loading excluded).",
              f"- CPU flags that matter: {' '.join(machine['cpu_flags']) or 'none'}; load average at start "
              f"{machine['load_average_1m']} (other load slows every number); TensorFlow {machine['tensorflow']}."]
    lines += [f"- Note: {note}." for note in result["notes"]]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
