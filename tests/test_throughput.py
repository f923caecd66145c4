"""The device benchmarks: the step's counted arithmetic against the device's measured throughput,
and a clear refusal of ``--device cuda`` where torch sees no GPU."""

import pytest
import torch

from benchmarks import compiled_round, fused_players, host_reads, throughput


def test_counted_flops_are_the_layers_products_forward_and_backward():
    lin = torch.nn.Linear(30, 20)
    x = torch.randn(8, 30, requires_grad=True)
    # forward 2*8*30*20; backward twice that (input and weight gradients)
    assert throughput.counted_flops(lambda: lin(x).sum().backward()) == 3 * 2 * 8 * 30 * 20


def test_a_step_costs_the_same_arithmetic_per_image_at_any_batch_and_is_below_the_peak():
    res = throughput.main(["--widths", "4", "--batches", "8", "32", "--steps", "2", "--quick"])
    small, large = res["runs"]
    assert small["flops_per_image"] == pytest.approx(large["flops_per_image"], rel=0.01)
    for row in res["runs"]:
        assert 0 < row["fraction_of_matmul_peak"] < 1 and 0 < row["fraction_of_conv_peak"] < 1
        assert row["images_per_s"] == pytest.approx(row["batch"] / row["step_s"], rel=0.01)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without CUDA")
@pytest.mark.parametrize("bench", [throughput, host_reads, fused_players, compiled_round])
def test_device_cuda_without_a_gpu_is_refused_before_any_work(bench, capsys):
    with pytest.raises(SystemExit, match="no CUDA device"):
        bench.main(["--device", "cuda"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without CUDA")
def test_the_gpu_session_script_refuses_a_machine_without_cuda(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "cuda_session.sh"
    run = subprocess.run(
        ["bash", str(script), str(tmp_path / "out")],
        env={"PY": sys.executable, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2 and "no CUDA device" in run.stderr
    assert not (tmp_path / "out" / "steps.jsonl").exists()


def test_the_median_interval_is_the_order_statistics_of_the_binomial_table():
    from benchmarks.common import median_interval

    # n = 16: the 4th and 13th values (coverage 1 - 2 P(Bin(16, 1/2) <= 3) = 0.979)
    assert median_interval([float(v) for v in range(16, 0, -1)]) == (4.0, 13.0)
    assert median_interval([1.0, 2.0, 3.0, 4.0, 5.0]) == (1.0, 5.0)  # too few: the whole range
    assert median_interval([float(v) for v in range(1, 61)]) == (22.0, 39.0)
