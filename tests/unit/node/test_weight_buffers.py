"""The weight-buffer decision with injected CPU facts, and the canary's bookkeeping with a scripted child.

Runs on any machine: the Sapphire Rapids, EPYC, Raspberry Pi and Mac facts are given, not read.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from covey.device_node.canary import Attempt, LlamaCanary
from covey.device_node.cpu import CpuFacts, choose_weight_buffers, read_cpu_facts
from covey.errors import NativeCrash

SAPPHIRE_RAPIDS = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu vme sse sse2 avx avx2 avx512f avx512_bf16 amx_bf16 avx512_fp16 amx_tile amx_int8 arch_capabilities

processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu
"""
EPYC = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse sse2 avx avx2 fma bmi2 hypervisor
"""
PI5 = """processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU part\t: 0xd0b

Hardware\t: BCM2835
Model\t\t: Raspberry Pi 5 Model B Rev 1.0
"""


def facts(tmp_path: Path, text: str) -> CpuFacts:
    path = tmp_path / "cpuinfo"
    path.write_text(text)
    return read_cpu_facts(path)


def test_cpuinfo_is_read_from_the_first_processor_block(tmp_path: Path) -> None:
    spr = facts(tmp_path, SAPPHIRE_RAPIDS)
    assert spr.model == "Intel(R) Xeon(R) Platinum 8480+"
    assert spr.amx == {"amx_bf16", "amx_tile", "amx_int8"} and "avx512f" in spr.flags
    epyc = facts(tmp_path, EPYC)
    assert epyc.model == "AMD EPYC 7B13" and not epyc.amx and "avx2" in epyc.flags
    pi = facts(tmp_path, PI5)
    assert pi.model == "Raspberry Pi 5 Model B Rev 1.0" and "asimddp" in pi.flags and not pi.amx
    assert spr.flags_hash() != epyc.flags_hash() and len(spr.flags_hash()) == 12


def test_macos_and_unknown_systems_fall_back_without_cpuinfo(tmp_path: Path) -> None:
    asked: list[str] = []

    def sysctl(name: str) -> str:
        asked.append(name)
        return {"machdep.cpu.brand_string": "Apple M2", "machdep.cpu.features": "",
                "machdep.cpu.leaf7_features": ""}[name]

    mac = read_cpu_facts(tmp_path / "missing", system="Darwin", sysctl=sysctl)
    assert mac.model == "Apple M2" and not mac.amx and asked[0] == "machdep.cpu.brand_string"
    intel_mac = read_cpu_facts(tmp_path / "missing", system="Darwin",
                               sysctl=lambda n: "Intel Xeon W" if "brand" in n else "AVX2 AMX.TILE AMX.INT8")
    assert intel_mac.amx == {"amx_tile", "amx_int8"}
    other = read_cpu_facts(tmp_path / "missing", system="Windows")
    assert other.flags == frozenset() and isinstance(other.model, str)


def test_auto_turns_extra_buffers_off_only_where_they_are_known_to_crash(tmp_path: Path) -> None:
    spr, epyc = facts(tmp_path, SAPPHIRE_RAPIDS), facts(tmp_path, EPYC)
    amx = choose_weight_buffers("auto", spr)
    assert not amx.use_extra_bufts and "AMX (amx_bf16, amx_int8, amx_tile)" in amx.reason and "#20824" in amx.reason
    plain = choose_weight_buffers("auto", epyc)
    assert plain.use_extra_bufts and plain.may_fall_back
    for cpu in (spr, epyc):
        on, off = choose_weight_buffers("on", cpu), choose_weight_buffers("off", cpu)
        assert on.use_extra_bufts and not on.may_fall_back and "weight_buffers=on" in on.reason
        assert not off.use_extra_bufts and not off.may_fall_back


class ScriptedChild:
    """Plays the child process: outcomes per option (True = extra buffers on); records every call."""

    def __init__(self, **outcomes: str) -> None:
        self.outcomes = {True: outcomes.get("on", "ok"), False: outcomes.get("off", "ok")}
        self.calls: list[tuple[str, bool, int]] = []

    def __call__(self, model_path: Path, use_extra_bufts: bool, n_threads: int) -> Attempt:
        self.calls.append((model_path.name, use_extra_bufts, n_threads))
        outcome = self.outcomes[use_extra_bufts]
        return Attempt(use_extra_bufts, outcome, ok=outcome == "ok", native_crash=outcome.startswith("crashed"),
                       load_error=outcome.startswith("exit 3"))


EPYC_FACTS = CpuFacts("AMD EPYC 7B13", frozenset({"avx2"}))
SPR_FACTS = CpuFacts("Intel(R) Xeon(R) Platinum 8480+", frozenset({"avx512f", "amx_tile", "amx_int8"}))


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "m.gguf"
    path.write_bytes(b"GGUF" + bytes(64))
    return path


def canary(tmp_path: Path, child: ScriptedChild, setting: str = "auto", cpu: CpuFacts = EPYC_FACTS,
           build: str = "0.3.36+abc") -> LlamaCanary:
    return LlamaCanary(tmp_path / "data", setting, cpu=cpu, run_child=child, signature=lambda: build)  # type: ignore[arg-type]


def test_a_crash_with_extra_buffers_retries_safe_records_it_and_the_verdict_is_reused(tmp_path: Path, model: Path) -> None:
    child = ScriptedChild(on="crashed (SIGSEGV)")
    verdict = canary(tmp_path, child).check(model, n_threads=2)
    assert child.calls == [("m.gguf", True, 2), ("m.gguf", False, 2)]
    assert not verdict.use_extra_bufts and verdict.fell_back and not verdict.cached
    assert "extra_bufts_on) crashed (SIGSEGV)" in verdict.reason
    (entry,) = json.loads((tmp_path / "data" / "cache" / "llama_canary.json").read_text()).values()
    assert entry["attempts"] == {"extra_bufts_on": "crashed (SIGSEGV)", "extra_bufts_off": "ok"}
    assert entry["chosen"]["use_extra_bufts"] is False and entry["cpu"] == "AMD EPYC 7B13"
    assert entry["llama_cpp"] == "0.3.36+abc" and entry["model"].startswith(str(model.resolve()))

    again = ScriptedChild()  # would say "ok" to everything: it must not even be asked
    second = canary(tmp_path, again)
    cached = second.check(model, n_threads=2)
    assert again.calls == [] and second.children == 0
    assert not cached.use_extra_bufts and cached.cached and cached.fell_back


def test_the_verdict_is_per_build_cpu_and_model_file(tmp_path: Path, model: Path) -> None:
    canary(tmp_path, ScriptedChild()).check(model)
    for other in (canary(tmp_path, ScriptedChild(), build="0.3.36+rebuilt"),
                  canary(tmp_path, ScriptedChild(), cpu=CpuFacts("AMD EPYC 9654", frozenset({"avx512f"})))):
        other.check(model)
        assert other.children == 1
    model.write_bytes(b"GGUF" + bytes(128))  # a new file at the same path
    fresh = canary(tmp_path, ScriptedChild())
    fresh.check(model)
    assert fresh.children == 1
    assert len(json.loads((tmp_path / "data" / "cache" / "llama_canary.json").read_text())) == 4


def test_amx_cpu_on_auto_never_tries_the_extra_buffers(tmp_path: Path, model: Path) -> None:
    child = ScriptedChild(on="crashed (SIGSEGV)")
    verdict = canary(tmp_path, child, cpu=SPR_FACTS).check(model)
    assert child.calls == [("m.gguf", False, 1)] and not verdict.use_extra_bufts and not verdict.fell_back
    assert "AMX" in verdict.summary() and verdict.summary().startswith("extra weight buffers off")


def test_an_explicit_on_that_crashes_is_refused_with_what_to_do(tmp_path: Path, model: Path) -> None:
    child = ScriptedChild(on="crashed (SIGSEGV)")
    with pytest.raises(NativeCrash) as exc:
        canary(tmp_path, child, setting="on").check(model)
    assert child.calls == [("m.gguf", True, 1)]  # "on" is the user's word: no silent fallback
    msg = str(exc.value)
    assert "extra_bufts_on crashed (SIGSEGV)" in msg and "AMD EPYC 7B13" in msg and "--weight-buffers off" in msg
    # the crash is remembered: the next start refuses without a child
    again = ScriptedChild()
    with pytest.raises(NativeCrash):
        canary(tmp_path, again, setting="on").check(model)
    assert again.calls == []


def test_every_option_crashing_raises_and_a_child_that_cannot_judge_is_not_remembered(tmp_path: Path, model: Path) -> None:
    with pytest.raises(NativeCrash) as exc:
        canary(tmp_path, ScriptedChild(on="crashed (SIGSEGV)", off="crashed (SIGABRT)")).check(model)
    assert "extra_bufts_on crashed (SIGSEGV); extra_bufts_off crashed (SIGABRT)" in str(exc.value)
    load_error = ScriptedChild(on="exit 3: llama.cpp could not load m.gguf", off="exit 3: llama.cpp could not load")
    other = tmp_path / "other"
    other.mkdir()
    verdict = canary(other, load_error).check(model)
    assert len(load_error.calls) == 1 and not verdict.fell_back  # the in-process load reports the bad file
    hung = ScriptedChild(on="timed out after 180 s")
    late = canary(tmp_path / "hung", hung).check(model)
    assert len(hung.calls) == 2 and not late.use_extra_bufts and late.fell_back  # a hang tries the safe options
    assert "timed out after 180 s" in late.reason
    never = ScriptedChild()
    assert canary(tmp_path / "hung", never).check(model).cached and never.calls == []  # the verdict stands
    assert not (other / "data" / "cache" / "llama_canary.json").exists() or \
        all(not e["attempts"] for e in json.loads((other / "data" / "cache" / "llama_canary.json").read_text()).values())


def test_undecided_tries_never_send_the_node_to_an_option_that_crashed(tmp_path: Path, model: Path) -> None:
    a = canary(tmp_path / "a", ScriptedChild(on="crashed (SIGSEGV)", off="timed out after 180 s")).check(model)
    b = canary(tmp_path / "b", ScriptedChild(on="timed out after 180 s", off="crashed (SIGSEGV)")).check(model)
    assert a.use_extra_bufts is False and b.use_extra_bufts is True


def test_the_setting_defaults_to_auto_and_the_join_flag_refuses_other_words(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from covey.cli import app
    from covey.settings import NodeSettings, Settings

    assert NodeSettings().weight_buffers == "auto" and NodeSettings().canary is True
    assert Settings.load(data_dir=tmp_path, node={"weight_buffers": "off"}).node.weight_buffers == "off"
    result = CliRunner().invoke(app, ["node", "join", "--no-announce", "--weight-buffers", "maybe",
                                      "--data-dir", str(tmp_path)])
    out = " ".join(result.output.split())
    assert result.exit_code == 2 and "node.weight_buffers" in out and "'auto', 'on' or 'off'" in out
