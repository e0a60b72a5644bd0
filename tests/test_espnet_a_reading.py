"""ESPNet-A read as the authors' ESPNet_Encoder without the image inputs and without the level-3
concat (``espnet_a -p reading=encoder``), against a hand-written torch module of that wiring
(the authors' CBR, BR, C, CDilated, DownSamplerB and DilatedParllelResidualBlockB, the last with
K branches), and against the counts of issue 18 and the paper's Table 2c/2e."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import espdsl


class CBR(nn.Module):
    def __init__(self, m: int, n: int, k: int, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(m, n, k, stride, (k - 1) // 2, bias=False)
        self.bn = nn.BatchNorm2d(n, eps=1e-3)
        self.act = nn.PReLU(n)

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class BR(nn.Module):
    def __init__(self, n: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(n, eps=1e-3)
        self.act = nn.PReLU(n)

    def forward(self, x):
        return self.act(self.bn(x))


class C(nn.Module):
    def __init__(self, m: int, n: int, k: int, stride: int = 1, d: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(m, n, k, stride, (k - 1) // 2 * d, bias=False, dilation=d)

    def forward(self, x):
        return self.conv(x)


class Pyramid(nn.Module):
    """The split-transform-merge part both ESP forms share: K branches, HFF, concat."""

    def __init__(self, n: int, total: int, K: int):
        super().__init__()
        self.K = K
        first = total - (K - 1) * n
        for k in range(K):
            setattr(self, f"d{2 ** k}", C(n, first if k == 0 else n, 3, 1, 2 ** k))

    def merge(self, x):
        outs = [getattr(self, f"d{2 ** k}")(x) for k in range(self.K)]
        sums = [outs[1]]
        for o in outs[2:]:
            sums.append(sums[-1] + o)
        return torch.cat([outs[0], *sums], 1)


class DownSamplerB(Pyramid):
    def __init__(self, m: int, n: int):
        super().__init__(n // 5, n, 5)          # hard-wired K = 5 in the authors' code
        self.c1 = C(m, n // 5, 3, 2)
        self.bn = nn.BatchNorm2d(n, eps=1e-3)
        self.act = nn.PReLU(n)

    def forward(self, x):
        return self.act(self.bn(self.merge(self.c1(x))))


class ResidualESP(Pyramid):
    def __init__(self, n: int, K: int):
        super().__init__(n // K, n, K)
        self.c1 = C(n, n // K, 1)
        self.bn = BR(n)

    def forward(self, x):
        return self.bn(x + self.merge(self.c1(x)))


class EncoderReading(nn.Module):
    """ESPNet_Encoder without sample1/sample2 (the image inputs) and without concatenating
    level3_0's output at b3."""

    def __init__(self, K: int, p: int = 2, q: int = 3, classes: int = 20, down: str = "esp"):
        super().__init__()
        self.level1 = CBR(3, 16, 3, 2)
        self.b1 = BR(16)
        self.level2_0 = DownSamplerB(16, 64) if down == "esp" else CBR(16, 64, 3, 2)
        self.level2 = nn.ModuleList([ResidualESP(64, K) for _ in range(p)])
        self.b2 = BR(128)
        self.level3_0 = DownSamplerB(128, 128) if down == "esp" else CBR(128, 128, 3, 2)
        self.level3 = nn.ModuleList([ResidualESP(128, K) for _ in range(q)])
        self.b3 = BR(128)
        self.classifier = C(128, classes, 1)

    def forward(self, x):
        x = self.b1(self.level1(x))
        first = x = self.level2_0(x)
        for m in self.level2:
            x = m(x)
        x = self.level3_0(self.b2(torch.cat([x, first], 1)))
        for m in self.level3:
            x = m(x)
        return self.classifier(self.b3(x))


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# issue 18: Table 2e's K = 2, 4, 5, 6, 7, 8 and Table 2c's strided convolution
EXPECTED = {2: 358_928, 4: 215_568, 5: 183_568, 6: 165_648, 7: 152_848, 8: 143_888}
PAPER_2E = {2: "0.358", 4: "0.215", 5: "0.183", 6: "0.165", 7: "0.152", 8: "0.143"}


@pytest.mark.parametrize("K", sorted(EXPECTED))
def test_counts_equal_the_hand_written_encoder(K):
    hand = count(EncoderReading(K))
    ir = espdsl.load("espnet_a", reading="encoder", alpha2=2, alpha3=3, K=K)
    ours = sum(ir.node_params(n) for n in ir.nodes() if n.op != "input")
    assert hand == ours == EXPECTED[K]
    assert f"{hand / 1e6:.4f}"[:5] == PAPER_2E[K]          # the paper truncates to 3 decimals


def test_strided_convolution_is_table_2c():
    hand = count(EncoderReading(5, down="conv"))
    ir = espdsl.load("espnet_a", reading="encoder", alpha2=2, alpha3=3, K=5, down="conv")
    assert hand == sum(ir.node_params(n) for n in ir.nodes() if n.op != "input") == 274_000
    # the paper's "33% parameter reduction" of strided ESP over strided convolution
    assert round(EXPECTED[5] / 274_000, 2) == 0.67


@pytest.mark.parametrize("down", ["esp", "conv"])
def test_same_outputs_as_the_hand_written_encoder(down):
    torch.manual_seed(0)
    hand = EncoderReading(4, p=1, q=2, down=down).eval()
    for m in hand.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
    model = espdsl.create_model("espnet_a", reading="encoder", alpha2=1, alpha3=2, K=4,
                                down=down).eval()
    model.load_state_dict(hand.state_dict(), strict=True)      # the authors' key names
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        assert torch.allclose(model(x), hand(x), atol=1e-5)


def test_the_default_reading_is_unchanged():
    ir = espdsl.load("espnet_a", alpha2=2, alpha3=3, K=5, down_K=4)
    assert sum(ir.node_params(n) for n in ir.nodes() if n.op != "input") == 183_328


def test_table2_studies_carry_both_readings():
    from espdsl.study.run import run
    rows = {r["name"]: r for r in run("table2c").rows}
    assert rows["strided_conv_enc"]["params"] == count(EncoderReading(5, down="conv")) == 274_000
    assert rows["strided_conv_enc"]["paper"]["params"]["match"]
    assert not rows["strided_conv"]["paper"]["params"]["match"]     # the Fig. 4a reading
    assert rows["strided_esp_enc"]["params"] == EXPECTED[5]
