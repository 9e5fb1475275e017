"""Export-time graph rewrites (harness.export.rewrites): same outputs as the published model, in fewer ops.

Real text (rotten_tomatoes dev, the shipped BERT vocabulary folded into the tiny vocabulary) through test-tiny with
its norms perturbed (a freshly built model has NoNorm = identity, which would hide every folding mistake)."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import torch

from harness.export import delegation
from harness.export.exporter import ProgramModule
from harness.export.recipes import RecipeOptions, get_recipe, serialize
from harness.export.rewrites import FusedBlock, rewrite
from model.blocks import NoNorm
from model.config import get_preset
from model.mobilebert import MobileBertForQuestionAnswering, MobileBertForSequenceClassification

SEQ = 24


def perturbed(cls=MobileBertForSequenceClassification, head="sequence_classification", seed=0, **cfg):
    torch.manual_seed(seed)
    model = ProgramModule(cls(get_preset("test-tiny", **cfg)), head).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, NoNorm):
                m.weight.uniform_(0.3, 2.0)
                m.bias.normal_(0.0, 0.2)
    return model


@pytest.fixture(scope="module")
def real_inputs() -> list[tuple[torch.Tensor, ...]]:
    import data

    tok = data.get_tokenizer(data.default_vocab())
    task = data.load_task("rotten_tomatoes", split="dev", limit=6)
    enc = data.encode(tok, task.texts, seq_len=SEQ)
    enc["input_ids"] = enc["input_ids"] % 128
    names = ("input_ids", "attention_mask", "token_type_ids")
    assert (enc["attention_mask"] == 0).any()  # padding too, so the mask path is exercised
    return [tuple(torch.from_numpy(enc[n][i : i + 1]) for n in names) for i in range(len(task))]


def outputs(model, inputs) -> list[torch.Tensor]:
    with torch.no_grad():
        return [torch.cat([o.flatten() for o in model(*x)]) for x in inputs]


def assert_close(got, ref, rtol=1e-5):
    for g, r in zip(got, ref):
        assert float((g - r).abs().max() / r.abs().max()) <= rtol


@pytest.mark.parametrize("carry,act", [(False, "relu"), (True, "relu"), (False, "gelu"), (True, "gelu")])
def test_rewritten_model_matches_the_original_on_real_text(real_inputs, carry, act):
    model = perturbed(hidden_act=act)  # gelu: the paper's NoNorm+GELU ablation (once silently run with ReLU)
    fused = rewrite(model, carry_scales=carry)
    assert all(isinstance(b, FusedBlock) for b in fused.model.mobilebert.layers)
    assert not any(isinstance(m, (NoNorm, torch.nn.Dropout)) for m in fused.modules())
    assert_close(outputs(fused, real_inputs), outputs(model, real_inputs))
    # the caller's model is untouched: it stays the numerics reference
    assert any(isinstance(m, NoNorm) for m in model.modules())


def test_question_answering_head_and_three_layers(real_inputs):
    model = perturbed(MobileBertForQuestionAnswering, "question_answering", num_hidden_layers=3,
                      num_feedforward_networks=3)
    assert_close(outputs(rewrite(model, carry_scales=True), real_inputs), outputs(model, real_inputs))


def test_a_scale_that_cannot_be_carried_is_applied_instead(real_inputs):
    """A zero norm weight cannot be divided out: that block materializes its residual, outputs still match."""
    model = perturbed()
    with torch.no_grad():
        model.model.mobilebert.layers[0].ffns[0].norm.weight[3] = 0.0
        model.model.mobilebert.layers[0].output_bottleneck.norm.weight[5] = 1e-9
    fused = rewrite(model, carry_scales=True)
    assert fused.model.mobilebert.layers[0].res_scale_0 is not None
    assert_close(outputs(fused, real_inputs), outputs(model, real_inputs))


def test_blocks_it_cannot_fuse_only_lose_their_dropout(real_inputs):
    torch.manual_seed(0)
    model = ProgramModule(MobileBertForSequenceClassification(get_preset("test-tiny-teacher")),
                          "sequence_classification").eval()
    fused = rewrite(model, carry_scales=True)
    assert not any(isinstance(b, FusedBlock) for b in fused.model.mobilebert.layers)
    assert not any(isinstance(m, torch.nn.Dropout) for m in fused.modules())
    assert_close(outputs(fused, real_inputs), outputs(model, real_inputs))


def _lowered(recipe: str, model, x, **opts):
    edge = get_recipe(recipe).lower(model, x, RecipeOptions(**opts))
    return edge, delegation.summarize(edge.exported_program().graph_module)


def _run_program(edge, tmp_path, inputs) -> list[torch.Tensor]:
    from program.pte import load_forward

    pte = tmp_path / "p.pte"
    pte.write_bytes(serialize(edge).buffer)
    method = load_forward(str(pte))
    return [torch.cat([o.flatten() for o in method.execute(list(x))]) for x in inputs]


def test_fp32_program_is_fewer_ops_with_the_same_outputs(real_inputs, tmp_path):
    """A block of F FFNs: 4 + 2F linears (7 + 2F before), no norm op but one multiply that hands back the true
    hidden state at the end, at most one copy (2F + 3 before), everything heavy on XNNPACK."""
    model = perturbed(num_hidden_layers=1)
    n_ffn = model.model.config.num_feedforward_networks
    edge, after = _lowered("fp32", model, real_inputs[0])
    ops = after["delegated_by_op"]
    assert ops["aten_linear_default"] == 4 + 2 * n_ffn + 2  # + trigram projection and classifier
    assert ops["aten_mul_tensor"] == 2  # the mask bias, once per model; the hand-back: every other scale is folded
    assert ops["aten_add_tensor"] == 3 + n_ffn + 2  # mask, attention, FFN and block residuals; 2 embedding sums
    assert ops.get("dim_order_ops__clone_dim_order_default", 0) <= 2
    assert not delegation.heavy_ops_outside(after)
    assert_close(_run_program(edge, tmp_path, real_inputs), outputs(model, real_inputs))


def test_int8_rewrite_keeps_quantized_numerics(real_inputs):
    """Output-side folds and fused linears commute with per-channel weights and per-token activations: the
    rewritten int8 model computes what the published one does (up to float rounding before quantization)."""
    model = perturbed()
    x = real_inputs[0]
    fused = get_recipe("int8").prepare(model, x, RecipeOptions())
    plain = get_recipe("int8").prepare(model, x, RecipeOptions(graph_rewrites=False))
    assert any(isinstance(b, FusedBlock) for b in fused.modules())
    ref, got, base = outputs(model, real_inputs), outputs(fused, real_inputs), outputs(plain, real_inputs)
    for g, r, b in zip(got, ref, base):
        assert float((g - b).abs().max()) <= 0.05 * float(b.abs().max())
        assert float((g - r).abs().max()) <= 2 * float((b - r).abs().max()) + 1e-4


@pytest.mark.slow
def test_int8_program_quantizes_each_activation_once(real_inputs, tmp_path):
    model = perturbed(num_hidden_layers=1)
    edge, after = _lowered("int8", model, real_inputs[0])
    _, before = _lowered("int8", model, real_inputs[0], graph_rewrites=False)
    ops, was = after["delegated_by_op"], before["delegated_by_op"]
    assert ops["aten_linear_default"] == was["aten_linear_default"] - 3
    assert ops["torchao_choose_qparams_affine_default"] == ops["aten_linear_default"]
    assert after["ops_delegated"] < before["ops_delegated"] - 30
    plain = get_recipe("int8").prepare(model, real_inputs[0], RecipeOptions(graph_rewrites=False))
    ref, base = outputs(model, real_inputs), outputs(plain, real_inputs)
    for g, r, b in zip(_run_program(edge, tmp_path, real_inputs), ref, base):
        assert float((g - r).abs().max()) <= 2 * float((b - r).abs().max()) + 1e-3


def test_keep_fp32_leaves_the_published_modules():
    model = perturbed(num_hidden_layers=1)
    x = (torch.zeros(1, 8, dtype=torch.long), torch.ones(1, 8, dtype=torch.long), torch.zeros(1, 8, dtype=torch.long))
    prepared = get_recipe("int8").prepare(model, x, RecipeOptions(keep_fp32=["classifier"]))
    assert not any(isinstance(b, FusedBlock) for b in prepared.modules())
    assert RecipeOptions(graph_rewrites=False).describe()["graph_rewrites"] is False
    assert "graph_rewrites" not in RecipeOptions().describe()


@pytest.mark.slow
def test_emulated_arm64_outputs_match_the_host(real_inputs, tmp_path):
    """The rewritten fp32 program under qemu-aarch64 (cortex-a76) gives the x86_64 runner's outputs."""
    from device_runners.build import build_bundle
    from device_runners.launch import bundle_command
    from device_runners.tensorfile import read_tensors, write_tensors
    from tests.support.tools import require_tool

    require_tool("qemu-aarch64", "aarch64-linux-gnu-g++")
    edge, _ = _lowered("fp32", perturbed(num_hidden_layers=1), real_inputs[0])
    pte = tmp_path / "p.pte"
    pte.write_bytes(serialize(edge).buffer)
    write_tensors(tmp_path / "in.bin", [[t.numpy() for t in x] for x in real_inputs[:2]])
    got = {}
    for abi, qemu in (("x86_64", False), ("arm64-v8a", True)):
        out = tmp_path / f"{abi}.bin"
        cmd = bundle_command(str(build_bundle(abi)), abi, ["--program", str(pte), "--inputs", str(tmp_path / "in.bin"),
                                                           "--result", str(tmp_path / "r.json"), "--outputs",
                                                           str(out), "--warmup", "0", "--iterations", "1"],
                             qemu=qemu) if qemu else bundle_command(
            str(build_bundle(abi)), abi, ["--program", str(pte), "--inputs", str(tmp_path / "in.bin"), "--result",
                                          str(tmp_path / "r.json"), "--outputs", str(out), "--warmup", "0",
                                          "--iterations", "1"])
        p = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr[-2000:]
        got[abi] = [ex[0] for ex in read_tensors(out)]
    for a, b in zip(got["arm64-v8a"], got["x86_64"]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
