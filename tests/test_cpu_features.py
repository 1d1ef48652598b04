"""runs/cpu_features.py on /proc/cpuinfo excerpts of machines with and without native bf16."""
import pytest

from runs import cpu_features

# Two processors of a Zen 4 EPYC (AVX512-BF16), trimmed; the second's flags must not be merged in.
ZEN4 = """processor	: 0
vendor_id	: AuthenticAMD
model name	: AMD EPYC 9R14 96-Core Processor
flags		: fpu sse2 avx2 fma avx512f avx512bw avx512_vnni avx512_bf16 vaes

processor	: 1
model name	: AMD EPYC 9R14 96-Core Processor
flags		: fpu sse2 avx2 amx_bf16
"""
SAPPHIRE_RAPIDS = """processor	: 0
model name	: Intel(R) Xeon(R) Platinum 8488C
flags		: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8
"""
SKYLAKE = """processor	: 0
model name	: Intel(R) Xeon(R) CPU @ 2.50GHz
flags		: fpu sse2 avx2 fma avx512f avx512bw avx512_vnni
"""


def write(tmp_path, text):
    path = tmp_path / "cpuinfo"
    path.write_text(text)
    return path


def test_model_name_and_flags_of_the_first_processor(tmp_path):
    model, flags = cpu_features.read_cpu(write(tmp_path, ZEN4))
    assert model == "AMD EPYC 9R14 96-Core Processor"
    assert "avx512_bf16" in flags and "vaes" in flags and "amx_bf16" not in flags


def test_native_bf16_needs_avx512_bf16_or_amx(tmp_path):
    assert cpu_features.bf16_flags(write(tmp_path, ZEN4)) == ["avx512_bf16"]
    assert cpu_features.has_native_bf16(write(tmp_path, ZEN4))
    assert cpu_features.bf16_flags(write(tmp_path, SAPPHIRE_RAPIDS)) == ["avx512_bf16", "amx_bf16"]
    assert cpu_features.bf16_flags(write(tmp_path, SKYLAKE)) == []
    assert not cpu_features.has_native_bf16(write(tmp_path, SKYLAKE))  # AVX-512 alone emulates bf16


def test_unreadable_cpuinfo_means_no_bf16(tmp_path):
    assert cpu_features.read_cpu(tmp_path / "missing") == (None, set())
    assert not cpu_features.has_native_bf16(tmp_path / "missing")


def test_this_machine_is_read():
    """On Linux the real file gives a model name and flags; its bf16 answer agrees with its flags."""
    if not cpu_features.CPUINFO.is_file():
        pytest.skip("no /proc/cpuinfo on this system")
    model, flags = cpu_features.read_cpu()
    assert model and flags
    assert cpu_features.has_native_bf16() == any(flag in flags for flag in cpu_features.BF16_FLAGS)



def test_cpu_name_adds_family_and_model_where_listed(tmp_path):
    listed = tmp_path / "cpuinfo"
    listed.write_text("processor\t: 0\ncpu family\t: 25\nmodel\t\t: 17\nmodel name\t: AMD EPYC\nflags\t\t: avx2\n\n"
                      "processor\t: 1\ncpu family\t: 99\nmodel\t\t: 1\nmodel name\t: AMD EPYC\n")
    assert cpu_features.cpu_name(listed) == "AMD EPYC (family 25 model 17)"
    bare = tmp_path / "bare"
    bare.write_text("model name\t: Some CPU\n")
    assert cpu_features.cpu_name(bare) == "Some CPU"
    assert cpu_features.cpu_name(tmp_path / "missing") == "unknown CPU"
