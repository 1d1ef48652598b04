"""Whether this machine's CPU computes bfloat16 natively, read from /proc/cpuinfo (Linux, x86).

Without AVX512-BF16 or AMX-BF16, oneDNN emulates bf16, which is slower than fp32. With them bf16 can
be the faster precision, but need not be (TensorFlow's kernels run bf16 at half the fp32 speed on some
Xeons that list AVX512-BF16), so `--precision auto` measures there (auto_precision.py). Where
/proc/cpuinfo cannot be read the answer is no: fp32 is never the wrong choice.
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


def cpu_name(cpuinfo=CPUINFO):
    """'AMD EPYC (family 25 model 17)': the model name alone does not tell one EPYC from another (the
    benchmarks name their CPU with it); the model name alone where the numbers are not listed."""
    model, _ = read_cpu(cpuinfo)
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return model or "unknown CPU"
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    if "cpu family" not in fields or "model" not in fields:
        return model or "unknown CPU"
    return f"{model} (family {fields['cpu family']} model {fields['model']})"


def bf16_flags(cpuinfo=CPUINFO):
    """The native-bf16 flags of BF16_FLAGS this CPU has, in that order."""
    flags = read_cpu(cpuinfo)[1]
    return [flag for flag in BF16_FLAGS if flag in flags]


def has_native_bf16(cpuinfo=CPUINFO):
    """True when the CPU has AVX512-BF16 or AMX-BF16, the machines where bf16 may be faster than fp32."""
    return bool(bf16_flags(cpuinfo))

