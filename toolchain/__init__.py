"""hqc: heterogeneous quantization compiler for spiking vision transformers."""

__version__ = "0.1.0"
