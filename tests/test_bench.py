"""bench/bench_peers.py on tiny sizes: every installed peer computes what cnn computes.

The benchmark's figures only mean something if PyTorch, JAX and ONNX Runtime run the same
network from the same weights as cnn. Its --tiny mode (batches of 2, one measurement) checks
that for the networks that hold every kind of layer the translations cover: LeNet-5 (conv,
ReLU, max-pool, linear; MNIST data), ResNet-8 training (BatchNorm with batch statistics,
residual blocks, projection shortcuts, the global average pool) and ResNet-8 inference
(BatchNorm from running statistics; the ONNX export). Times are not asserted: tests never
judge speed. A peer that is not installed is skipped.
"""
import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bench_peers.py"
FIGURES = "lenet-train-b10,resnet8-train-b64,resnet8-latency-b1"
# peer -> the modules it needs (ONNX Runtime also needs PyTorch, to export the models)
NEEDS = {"torch": ["torch"], "jax": ["jax"],
         "ort": ["onnxruntime", "onnx", "onnxscript", "torch"]}


def run_bench(*args):
    done = subprocess.run([sys.executable, str(BENCH), "--tiny", *args], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def result():
    return json.loads(run_bench("--json", "--only", FIGURES))


def installed(peer):
    return all(importlib.util.find_spec(name) is not None for name in NEEDS[peer])


@pytest.mark.parametrize("peer", sorted(NEEDS))
def test_peer_computes_what_cnn_computes(result, peer):
    if not installed(peer):
        assert peer in result["skipped_peers"]
        pytest.skip(f"{peer}: {result['skipped_peers'][peer]}")
    assert peer not in result["skipped_peers"]
    assert [f["id"] for f in result["figures"]] == FIGURES.split(",")
    for fig in result["figures"]:
        if peer == "ort" and fig["kind"] == "train":  # inference only
            assert "ort" not in fig["times"]
            continue
        check = fig["check"][peer]
        assert check["agrees"], (fig["id"], check)
        assert fig["times"][peer]["median"] > 0 and fig["ratios"][peer] > 0
        if fig["kind"] == "train":
            # Two steps from the same weights: the second loss checks gradients and update.
            losses, reference = check["losses"], check["cnn_losses"]
            assert all(math.isfinite(v) for v in losses) and losses[0] != losses[1]
            assert losses == pytest.approx(reference, rel=1e-4, abs=1e-5)


def test_figures_carry_targets_and_the_busy_column(result):
    for fig in result["figures"]:
        assert fig["target"] and fig["times"]["cnn"]["median"] > 0
        # Tiny batches are not the targets' sizes: never judged.
        assert fig["met"] is None and fig["why_not_judged"]
        assert "other_cpu_cores" in fig
    env = result["environment"]
    assert env["cnn"]["isa"] and env["threads"] == 2 and set(env["peers"]) == set(NEEDS)


def test_skipped_peers_are_said_so():
    text = run_bench("--only", "lenet-latency-b1", "--skip", "torch,jax,ort")
    for name in ("PyTorch eager", "JAX (jit)", "ONNX Runtime"):
        assert f"{name}: not measured, left out with --skip" in text
    row = next(line for line in text.splitlines() if line.startswith("LeNet-5 latency b1"))
    assert row.split().count("skip") == 3 and " n/a " in row


def test_slow_contenders_get_an_untimed_call_before_each_measurement():
    # bench/benchlib.alternate: a measurement of at most SETTLE_BELOW calls follows an untimed
    # call (what the contender before left behind is absorbed there); a fast contender's
    # measurements are many calls and get none.
    sys.path.insert(0, str(BENCH.parent))
    try:
        import benchlib
    finally:
        sys.path.remove(str(BENCH.parent))
    calls = {"slow": 0, "fast": 0}

    def slow():
        calls["slow"] += 1
        deadline = benchlib.clock() + 0.003
        while benchlib.clock() < deadline:
            pass

    def fast():
        calls["fast"] += 1

    samples = benchlib.alternate({"slow": slow, "fast": fast}, repeats=3, min_time=0.003)
    assert samples["slow"].number <= benchlib.SETTLE_BELOW < samples["fast"].number
    # 3 warm-up calls, then per repeat one untimed call and the measurement's calls.
    assert calls["slow"] == 3 + 3 * (1 + samples["slow"].number)
    assert calls["fast"] == 3 + 3 * samples["fast"].number


def test_freezing_times_the_frozen_compiled_models():
    text = run_bench("--freezing", "--only", "resnet8-latency-b1", "--skip", "torch,jax,ort")
    assert "models run through cnn.compile with freezing" in text
    result = json.loads(run_bench("--freezing", "--json", "--only", "resnet8-latency-b1",
                                  "--skip", "jax"))
    assert result["environment"]["cnn_frozen"] and result["environment"]["cnn_compiled"]
    if installed("ort"):  # the frozen model computes what ONNX Runtime computes
        assert result["figures"][0]["check"]["ort"]["agrees"]
