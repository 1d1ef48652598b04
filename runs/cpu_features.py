"""Whether this machine's CPU computes bfloat16 natively, read from /proc/cpuinfo (Linux, x86).

With AVX512-BF16 or AMX-BF16, oneDNN runs bf16 convolutions and matmuls in hardware and bf16 is the
faster precision; without them it emulates bf16, which is slower than fp32. Where /proc/cpuinfo cannot
be read the answer is no: fp32 is never the wrong choice.
"""
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def read_cpu(cpuinfo=CPUINFO):
    """(model name, set of feature flags) of the first processor listed; (None, empty set) if unreadable."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return None, set()
    model, flags = None, set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and model is None:
            model = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = set(value.split())
    return model, flags


def bf16_flags(cpuinfo=CPUINFO):
    """The native-bf16 flags of BF16_FLAGS this CPU has, in that order."""
    flags = read_cpu(cpuinfo)[1]
    return [flag for flag in BF16_FLAGS if flag in flags]


def has_native_bf16(cpuinfo=CPUINFO):
    """True when the CPU has AVX512-BF16 or AMX-BF16, the machines where bf16 is faster than fp32."""
    return bool(bf16_flags(cpuinfo))


def auto_precision(cpuinfo=CPUINFO):
    """(precision, note) that `--precision auto` runs: bf16 where it is native, fp32 elsewhere."""
    flags = bf16_flags(cpuinfo)
    if flags:
        return "bf16", f" (auto: this CPU has {' and '.join(flags)})"
    return "fp32", " (auto: this CPU has no native bf16)"
