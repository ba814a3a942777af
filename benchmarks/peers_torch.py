"""The benchmarked architectures in PyTorch, layer for layer as jaxvision builds them.

Same filters, kernels, paddings, batch-norm settings (Keras's eps 1e-3 / momentum 0.99 is
PyTorch's momentum 0.01), dropout rates and heads, so parameter counts agree exactly
(tests/test_benchmarks_peers.py checks that). Models take NCHW tensors; the benchmark may
hand them channels_last memory, which changes the layout and not the maths.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.specs import KERAS_EPS, LEARNING_RATE, RMSPROP_RHO, ModelSpec

BN_MOMENTUM = 0.01  # PyTorch's momentum = 1 - Keras's 0.99
BN_EPS = 1e-3


def conv3x3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1)


class Autoencoder(nn.Module):
    """jaxvision.models.ConvAutoencoder: conv+ReLU blocks, 2x2 pools after the first `pools`."""

    def __init__(self, filters=(256, 128, 64, 32), pools=3, channels=3):
        super().__init__()
        self.pools = pools
        widths = (channels, *filters)
        self.encoder = nn.ModuleList(conv3x3(a, b) for a, b in zip(widths, widths[1:]))
        decoder_widths = [filters[-1], *reversed(filters[:-1])]
        self.decoder = nn.ModuleList(conv3x3(a, b) for a, b in zip(decoder_widths, decoder_widths[1:]))
        self.out = conv3x3(filters[0], channels)

    def forward(self, x):
        for i, conv in enumerate(self.encoder):
            x = F.relu(conv(x))
            if i < self.pools:
                x = F.max_pool2d(x, 2)
        n = len(self.encoder)
        for j, conv in enumerate(self.decoder):
            x = F.relu(conv(x))
            if n - 2 - j < self.pools:  # the encoder block it mirrors was pooled
                x = F.interpolate(x, scale_factor=2, mode="nearest")
        return torch.sigmoid(self.out(x))


class Segmenter(nn.Module):
    """jaxvision.models.Segmenter: encoder 256..32 with dropout before the last pool, decoder."""

    def __init__(self, filters=(256, 128, 64, 32), dropout=0.5, channels=1):
        super().__init__()
        self.pools = len(filters) - 1
        widths = (channels, *filters)
        self.encoder = nn.ModuleList(conv3x3(a, b) for a, b in zip(widths, widths[1:]))
        decoder_widths = [filters[-1], *reversed(filters[1:])]  # 32 -> 32, 64, 128
        self.decoder = nn.ModuleList(conv3x3(a, b) for a, b in zip(decoder_widths, decoder_widths[1:]))
        self.dropout = nn.Dropout(dropout)
        self.logits = conv3x3(decoder_widths[-1], 1)

    def forward(self, x):
        for i, conv in enumerate(self.encoder):
            x = F.relu(conv(x))
            if i == self.pools - 1:
                x = self.dropout(x)
            if i < self.pools:
                x = F.max_pool2d(x, 2)
        for conv in self.decoder:
            x = F.interpolate(F.relu(conv(x)), scale_factor=2, mode="nearest")
        return self.logits(x)


class DeepCNN(nn.Module):
    """jaxvision.models.DeepCNN: 5 x [conv, BN, ReLU, 2x2 pool, dropout] + dense logits."""

    def __init__(self, filters=(32, 64, 128, 256, 256), dropout=0.25, num_classes=3, channels=3, size=128):
        super().__init__()
        widths = (channels, *filters)
        self.blocks = nn.Sequential(
            *[
                nn.Sequential(
                    conv3x3(a, b),
                    nn.BatchNorm2d(b, BN_EPS, BN_MOMENTUM),
                    nn.ReLU(),
                    nn.MaxPool2d(2),
                    nn.Dropout(dropout),
                )
                for a, b in zip(widths, widths[1:])
            ]
        )
        side = size // 2 ** len(filters)
        self.head = nn.Linear(side * side * filters[-1], num_classes)

    def forward(self, x):
        return self.head(torch.flatten(self.blocks(x), 1))


class ConvBN(nn.Module):
    """Keras InceptionV3's conv2d_bn: conv without bias, batch norm with an offset and no scale."""

    def __init__(self, cin, cout, kh, kw, stride=1, same=True):
        super().__init__()
        # 'same' only ever appears with stride 1 in InceptionV3; strided convs are 'valid'.
        self.conv = nn.Conv2d(cin, cout, (kh, kw), stride, padding="same" if same else 0, bias=False)
        self.bias = nn.Parameter(torch.zeros(cout))
        self.register_buffer("mean", torch.zeros(cout))
        self.register_buffer("var", torch.ones(cout))
        # a constant scale of 1: cuDNN's batch norm backward fails with weight=None
        self.register_buffer("one", torch.ones(cout), persistent=False)

    def forward(self, x):
        x = F.batch_norm(self.conv(x), self.mean, self.var, self.one, self.bias, self.training, BN_MOMENTUM, BN_EPS)
        return F.relu(x)


def _avg_pool(x):
    return F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)


class InceptionA(nn.Module):  # mixed0..2
    def __init__(self, cin, pool_filters):
        super().__init__()
        self.b1 = ConvBN(cin, 64, 1, 1)
        self.b5 = nn.Sequential(ConvBN(cin, 48, 1, 1), ConvBN(48, 64, 5, 5))
        self.b3 = nn.Sequential(ConvBN(cin, 64, 1, 1), ConvBN(64, 96, 3, 3), ConvBN(96, 96, 3, 3))
        self.bp = ConvBN(cin, pool_filters, 1, 1)

    def forward(self, x):
        return torch.cat([self.b1(x), self.b5(x), self.b3(x), self.bp(_avg_pool(x))], 1)


class InceptionB(nn.Module):  # mixed3
    def __init__(self, cin):
        super().__init__()
        self.b3 = ConvBN(cin, 384, 3, 3, 2, same=False)
        self.b3dbl = nn.Sequential(ConvBN(cin, 64, 1, 1), ConvBN(64, 96, 3, 3), ConvBN(96, 96, 3, 3, 2, same=False))

    def forward(self, x):
        return torch.cat([self.b3(x), self.b3dbl(x), F.max_pool2d(x, 3, 2)], 1)


class InceptionC(nn.Module):  # mixed4..7
    def __init__(self, cin, w):
        super().__init__()
        self.b1 = ConvBN(cin, 192, 1, 1)
        self.b7 = nn.Sequential(ConvBN(cin, w, 1, 1), ConvBN(w, w, 1, 7), ConvBN(w, 192, 7, 1))
        self.b7dbl = nn.Sequential(
            ConvBN(cin, w, 1, 1), ConvBN(w, w, 7, 1), ConvBN(w, w, 1, 7), ConvBN(w, w, 7, 1), ConvBN(w, 192, 1, 7)
        )
        self.bp = ConvBN(cin, 192, 1, 1)

    def forward(self, x):
        return torch.cat([self.b1(x), self.b7(x), self.b7dbl(x), self.bp(_avg_pool(x))], 1)


class InceptionD(nn.Module):  # mixed8
    def __init__(self, cin):
        super().__init__()
        self.b3 = nn.Sequential(ConvBN(cin, 192, 1, 1), ConvBN(192, 320, 3, 3, 2, same=False))
        self.b7 = nn.Sequential(
            ConvBN(cin, 192, 1, 1),
            ConvBN(192, 192, 1, 7),
            ConvBN(192, 192, 7, 1),
            ConvBN(192, 192, 3, 3, 2, same=False),
        )

    def forward(self, x):
        return torch.cat([self.b3(x), self.b7(x), F.max_pool2d(x, 3, 2)], 1)


class InceptionE(nn.Module):  # mixed9, mixed10
    def __init__(self, cin):
        super().__init__()
        self.b1 = ConvBN(cin, 320, 1, 1)
        self.b3 = ConvBN(cin, 384, 1, 1)
        self.b3a, self.b3b = ConvBN(384, 384, 1, 3), ConvBN(384, 384, 3, 1)
        self.d = nn.Sequential(ConvBN(cin, 448, 1, 1), ConvBN(448, 384, 3, 3))
        self.da, self.db = ConvBN(384, 384, 1, 3), ConvBN(384, 384, 3, 1)
        self.bp = ConvBN(cin, 192, 1, 1)

    def forward(self, x):
        b3, d = self.b3(x), self.d(x)
        return torch.cat([self.b1(x), self.b3a(b3), self.b3b(b3), self.da(d), self.db(d), self.bp(_avg_pool(x))], 1)


class InceptionV3(nn.Module):
    """keras.applications.InceptionV3 (no auxiliary head), returning logits."""

    def __init__(self, num_classes=1000):
        super().__init__()
        self.stem = nn.Sequential(
            ConvBN(3, 32, 3, 3, 2, same=False),
            ConvBN(32, 32, 3, 3, same=False),
            ConvBN(32, 64, 3, 3),
            nn.MaxPool2d(3, 2),
            ConvBN(64, 80, 1, 1, same=False),
            ConvBN(80, 192, 3, 3, same=False),
            nn.MaxPool2d(3, 2),
        )
        self.blocks = nn.Sequential(
            InceptionA(192, 32),
            InceptionA(256, 64),
            InceptionA(288, 64),
            InceptionB(288),
            *[InceptionC(768, w) for w in (128, 160, 160, 192)],
            InceptionD(768),
            InceptionE(1280),
            InceptionE(2048),
        )
        self.predictions = nn.Linear(2048, num_classes)

    def forward(self, x):
        return self.predictions(self.blocks(self.stem(x)).mean((2, 3)))


def build(spec: ModelSpec) -> nn.Module:
    h, w, c = spec.input_shape
    if spec.name == "autoencoder":
        return Autoencoder(spec.filters, channels=c)
    if spec.name == "segmenter":
        return Segmenter(channels=c)
    if spec.name == "deep_cnn":
        return DeepCNN(num_classes=spec.num_outputs, channels=c, size=h)
    if spec.name == "inception_v3":
        return InceptionV3(spec.num_outputs)
    raise ValueError(f"No PyTorch peer for {spec.name!r}.")


def optimizer(spec: ModelSpec, params) -> torch.optim.Optimizer:
    if spec.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, LEARNING_RATE, alpha=RMSPROP_RHO, eps=KERAS_EPS)
    if spec.optimizer == "adam":
        return torch.optim.Adam(params, LEARNING_RATE, eps=KERAS_EPS)
    if spec.optimizer == "adamax":
        return torch.optim.Adamax(params, LEARNING_RATE, eps=KERAS_EPS)
    raise ValueError(f"Unknown optimizer {spec.optimizer!r}.")


def loss_fn(spec: ModelSpec, out, y):
    if spec.task == "reconstruction":
        return F.mse_loss(out, y)
    if spec.task in ("segmentation", "multilabel"):
        return F.binary_cross_entropy_with_logits(out, y)
    # paper A: binary cross-entropy on the softmax outputs, clipped as Keras clips
    return F.binary_cross_entropy(torch.softmax(out, -1).clamp(KERAS_EPS, 1 - KERAS_EPS), y)


def l2_term(spec: ModelSpec, model: nn.Module):
    """jaxvision's train step puts L2 on every kernel (conv and dense weights), not on biases."""
    kernels = [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    return spec.l2 * sum(w.square().sum() for w in kernels)


def _nchw(a, device, channels_last):
    t = torch.from_numpy(a)
    if t.ndim == 4:
        t = t.permute(0, 3, 1, 2)
        t = t.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    return t.to(device)


def build_case(case: dict):
    """The worker's entry: a PyTorch train step (zero_grad, forward, loss, backward, optimizer
    step) or an inference_mode forward, on CUDA when there is one; eager unless the variant asks
    for `compile` (torch.compile, its compilation in the worker's first step), in float32 unless
    it asks for `amp` (autocast to bfloat16)."""
    import os

    from benchmarks.specs import SPECS, make_batch, target

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", os.cpu_count())))
    spec = SPECS[case["model"]]
    channels_last = case.get("variant", {}).get("channels_last", False)  # memory layout only
    device = "cuda" if torch.cuda.is_available() else "cpu"
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = build(spec).to(device, memory_format=fmt)
    batch = make_batch(spec, case.get("batch"))
    x, y = _nchw(batch["image"], device, channels_last), _nchw(target(spec, batch), device, channels_last)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    variant = case.get("variant", {})
    # AMP: bf16 activations and convolutions under autocast, float32 parameters and optimizer.
    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=variant.get("amp", False))
    forward = torch.compile(model) if variant.get("compile") else model  # compiled at the first step
    if case["mode"] == "train":
        model.train()
        opt = optimizer(spec, model.parameters())

        def step():
            opt.zero_grad(set_to_none=True)
            with autocast:
                loss = loss_fn(spec, forward(x).float(), y)
            if spec.l2:
                loss = loss + l2_term(spec, model)
            loss.backward()
            opt.step()
    else:
        model.eval()

        @torch.inference_mode()
        def step():
            with autocast:
                forward(x)

    def run(n):
        for _ in range(n):
            step()
        sync()

    def device_peak_mb():
        return torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None

    info = {
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "backend": device,
        "threads": torch.get_num_threads(),
        "versions": {"torch": torch.__version__},
    }
    return run, device_peak_mb, info
