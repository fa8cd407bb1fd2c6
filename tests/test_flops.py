"""Parameter and FLOP counts against counts written out by hand."""
import torch
from torch import nn

from benchmark.training.flops import parameter_counts, weight_layer_flops
from tasks.vision.models import SmallCNN


def test_conv_and_linear_flops_dense_and_masked():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Flatten(), nn.Linear(50, 3))
    x = torch.randn(4, 1, 5, 5)
    dense, masked = weight_layer_flops(model, x)
    # conv: 18 weights x 25 output pixels; linear: 150 weights x 1 position; 2 FLOPs per multiply-add
    assert dense == 2 * (18 * 25 + 150)
    assert masked == dense
    with torch.no_grad():
        model[0].weight.view(-1)[:4] = 0
        model[2].weight.view(-1)[10:20] = 0
    dense, masked = weight_layer_flops(model, x)
    assert dense == 2 * (18 * 25 + 150)
    assert masked == 2 * (14 * 25 + 140)
    total, left = parameter_counts(model)
    assert total == 18 + 2 + 150 + 3
    assert left == total - 14


def test_strided_conv_counts_output_positions_only():
    model = nn.Conv2d(1, 1, 3, stride=2)
    dense, _ = weight_layer_flops(model, torch.randn(1, 1, 7, 7))
    assert dense == 2 * 9 * 9  # 3x3 output map


def test_linear_over_tokens_counts_every_token():
    model = nn.Linear(8, 4)
    dense, _ = weight_layer_flops(model, torch.randn(2, 5, 8))
    assert dense == 2 * 32 * 5


def test_small_cnn_matches_hand_count_and_mode_is_restored():
    model = SmallCNN(1, 10, image_size=28, width=16, hidden=128).train()
    dense, masked = weight_layer_flops(model, torch.randn(1, 1, 28, 28))
    macs = 1 * 16 * 9 * 28 * 28 + 16 * 32 * 9 * 14 * 14 + 32 * 7 * 7 * 128 + 128 * 10
    assert dense == masked == 2 * macs
    assert model.training
