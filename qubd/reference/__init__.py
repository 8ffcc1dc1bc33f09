"""Plain-torch implementation of every primitive op: the executable specification.

Stages: ``order_statistics`` (range) -> ``quantize`` (codes) -> ``blocks`` (4x4 block codes per
bit-plane and their histograms). Every other backend is tested bit-for-bit against these.
"""
