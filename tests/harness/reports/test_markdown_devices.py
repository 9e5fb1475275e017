"""Every report names each device's CPU with the instruction-set features that decide its kernels, as its runs
recorded it: "host" alone does not say which machine a number came from."""

from __future__ import annotations

from device_runners.devinfo import cpu_features, cpu_label, parse_devinfo
from harness.reports.markdown import device_cpus
from harness.store.record import RunRecord


def test_features_are_read_from_x86_and_arm_cpuinfo():
    assert cpu_features("flags\t\t: fpu avx2 fma avx512f avx512_vnni amx_int8 sse") == [
        "AVX2", "FMA", "AVX-512", "AVX512-VNNI", "AMX-INT8"]
    assert cpu_features("Features\t: fp asimd asimddp i8mm sve") == ["dotprod", "i8mm", "SVE"]
    assert cpu_features("") == []


def test_a_device_snapshot_carries_its_features():
    text = ("@@cpuinfo\nprocessor\t: 0\nmodel name\t: AMD EPYC\n@@cpuflags\nflags\t\t: fpu avx2 fma\n"
            "@@online\n2\n")
    info = parse_devinfo(text)
    assert info["cpu"] == "AMD EPYC" and info["cpu_features"] == ["AVX2", "FMA"]
    assert cpu_label({**info, "cores": 2}) == "AMD EPYC (AVX2, FMA), 2 cores"


def test_the_report_names_each_devices_cpu(tiny_export, tmp_path):
    from harness.reports.report import render
    from harness.run import measure

    results, res = tiny_export
    rec = measure.run(measure.RunRequest.of(res.program, "host", warmup=1, iterations=3), results)
    label = cpu_label(rec.device_info_before)
    assert label and label.startswith(rec.device_info_before["cpu"])
    assert device_cpus([rec, RunRecord(run_id="x", created_at="", status="ok", device="host")]) == {"host": [label]}
    text = render([rec], "md")
    assert f"Devices: host = {label}" in text
