"""int8-static: the stock XNNPACKQuantizer breaks on BERT-style integer mask code; ours calibrates, lowers and runs."""

from __future__ import annotations

import pytest
import torch

from harness.export import delegation
from harness.export.quantize.static import make_quantizer, quantize_static
from harness.export.recipes import RecipeOptions, get_recipe


class HFClassifier(torch.nn.Module):
    """transformers' MobileBERT (eager attention): its mask code does integer add/mul on positions."""

    def __init__(self):
        super().__init__()
        from transformers import MobileBertConfig, MobileBertForSequenceClassification

        cfg = MobileBertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=32, embedding_size=16, intra_bottleneck_size=16, true_hidden_size=16,
                               num_feedforward_networks=2, max_position_embeddings=32, attn_implementation="eager")
        torch.manual_seed(0)
        self.m = MobileBertForSequenceClassification(cfg).eval()

    def forward(self, input_ids, attention_mask, token_type_ids):
        return (self.m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits,)


def batches(n: int, seq: int = 8):
    g = torch.Generator().manual_seed(1)
    out = []
    for _ in range(n):
        ids = torch.randint(1, 100, (1, seq), generator=g)
        mask = torch.ones(1, seq, dtype=torch.long)
        mask[0, seq - 2 :] = 0  # padded tail, as real text has
        out.append((ids, mask, torch.zeros(1, seq, dtype=torch.long)))
    return out


@pytest.fixture(scope="module")
def model():
    return HFClassifier()


def test_stock_quantizer_turns_integer_mask_math_into_float(model):
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e

    ex = batches(1)[0]
    gm = torch.export.export(model, ex, strict=False).module()
    stock = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False))
    prepared = prepare_pt2e(gm, stock)
    with pytest.raises(IndexError, match="tensors used as indices must be long"):
        prepared(*ex)
    # ours, same graph: calibrates
    prepared = prepare_pt2e(torch.export.export(model, ex, strict=False).module(), make_quantizer())
    prepared(*ex)


def test_static_int8_tracks_fp32_and_lowers_fully(model):
    data = batches(8)
    q = quantize_static(model, data[0], data)
    with torch.no_grad():
        for x in data[:3]:
            ref, got = model(*x)[0], q(*x)[0]
            assert (got - ref).norm() / ref.norm() < 0.2
    edge = get_recipe("int8-static").lower(model, data[0], RecipeOptions(calibration=data))
    summary = delegation.summarize(edge.exported_program().graph_module)
    assert delegation.heavy_ops_outside(summary) == {}
    assert summary["delegated_by_op"].get("aten_linear_default", 0) > 0
    import executorch.kernels.quantized  # noqa: F401
    from program.pte import load_forward

    method = load_forward(edge.to_executorch().buffer)
    x = data[1]
    ref, got = model(*x)[0], method.execute(list(x))[0]
    assert (got - ref).norm() / ref.norm() < 0.2


class _ConvNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv, self.lin = torch.nn.Conv1d(4, 8, 3), torch.nn.Linear(6, 5)

    def forward(self, x):
        return (self.lin(torch.relu(self.conv(x))),)


def _tiny_classifier():
    from harness.export.exporter import ProgramModule, example_inputs
    from model.config import get_preset
    from model.mobilebert import MobileBertForSequenceClassification

    torch.manual_seed(0)
    cfg = get_preset("test-tiny")
    model = ProgramModule(MobileBertForSequenceClassification(cfg), "sequence_classification").eval()
    return model, [example_inputs(8, cfg.vocab_size, seed=i) for i in range(3)]


def _convert(model, data, quantizer):
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from harness.export.quantize import static

    quantizer.set_global(static.get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False))
    with torch.no_grad():
        prepared = prepare_pt2e(torch.export.export(model, data[0], strict=False).module(), quantizer)
        for batch in data:
            prepared(*batch)
        return convert_pt2e(prepared)


def _recording_quantizer(seen: list):
    from harness.export.quantize import static

    class Recording(static.MaskSafeXNNPACKQuantizer):
        def _annotate_all_patterns(self, gm, *a, **kw):
            seen.extend(p.name for p in self.SUPPORTED_PATTERNS)
            return super()._annotate_all_patterns(gm, *a, **kw)

    return Recording()


def test_leaving_out_conv_patterns_changes_no_annotation():
    """Without a convolution in the graph, the quantizer skips the conv patterns (their pattern exports cost
    seconds): the converted model is the stock pattern list's, node for node and value for value."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer

    from harness.export.quantize import static

    class Stock(static.MaskSafeXNNPACKQuantizer):
        def annotate(self, gm):
            return XNNPACKQuantizer.annotate(self, gm)

    model, data = _tiny_classifier()
    seen: list = []
    ours = _recording_quantizer(seen)
    stock, mine = _convert(model, data, Stock()), _convert(model, data, ours)
    assert mine.code == stock.code
    s, o = stock.state_dict(), mine.state_dict()
    assert s.keys() == o.keys() and all(torch.equal(s[k], o[k]) for k in s)
    assert "linear" in seen and not [p for p in seen if "conv" in p]
    assert "SUPPORTED_PATTERNS" not in vars(ours)  # the instance falls back to the class's list afterwards


def test_a_graph_with_a_convolution_gets_the_conv_patterns():
    seen: list = []
    _convert(_ConvNet().eval(), [(torch.randn(1, 4, 8),)], _recording_quantizer(seen))
    assert {"conv", "conv_bn", "conv_relu", "linear"} <= set(seen)
