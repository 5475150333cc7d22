#!/usr/bin/python3
# Copyright 2026 The Kiln Authors.
# Exports a small Fashion-MNIST CNN from PyTorch (Debian's python3-torch) to
# ONNX, for examples/onnx/finetune_cnn and the ONNX benchmark: nothing is
# downloaded, the weights are PyTorch's seeded default initialization.
#
#   export_cnn.py OUT_DIR
#
# Writes OUT_DIR/cnn.onnx (opset 13, dynamic batch axis), OUT_DIR/cnn.pt (the
# same network as TorchScript, for libtorch), and a reference batch:
# reference_input.bin (float32 [8, 1, 28, 28]) and reference_logits.bin
# (float32 [8, 10], PyTorch's outputs on it), raw little-endian.
import inspect
import os
import struct
import sys

import torch


class Cnn(torch.nn.Module):
    """conv3x3x16, relu, maxpool2, conv3x3x32, relu, maxpool2, linear 128, relu, linear 10."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(16, 32, 3, padding=1)
        self.fc1 = torch.nn.Linear(32 * 7 * 7, 128)
        self.fc2 = torch.nn.Linear(128, 10)

    def forward(self, x):
        x = torch.nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = torch.nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        x = torch.relu(self.fc1(torch.flatten(x, 1)))
        return self.fc2(x)


def write_f32(path, t):
    """Writes `t` as raw little-endian float32 (without NumPy, which pip's PyTorch does not require)."""
    values = t.detach().to(torch.float32).contiguous().view(-1).tolist()
    with open(path, "wb") as f:
        f.write(struct.pack("<%df" % len(values), *values))


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: export_cnn.py OUT_DIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    model = Cnn().eval()
    x = torch.rand(8, 1, 28, 28)
    with torch.no_grad():
        logits = model(x)
    # PyTorch 2.9 and later export with dynamo by default, which needs the onnxscript package; the
    # TorchScript exporter (the only one of Debian's PyTorch 1.13) needs nothing more.
    legacy = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    torch.onnx.export(model, x, os.path.join(out, "cnn.onnx"), input_names=["images"], output_names=["logits"],
                      dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}}, opset_version=13, **legacy)
    torch.jit.trace(model, x).save(os.path.join(out, "cnn.pt"))
    write_f32(os.path.join(out, "reference_input.bin"), x)
    write_f32(os.path.join(out, "reference_logits.bin"), logits)
    print("exported", os.path.join(out, "cnn.onnx"))


if __name__ == "__main__":
    main()
