"""Kernel backends. Each backend module registers its kernels for the primitive ops with
:func:`qubd.backends.registry.register_kernel`; ``qubd.ops`` dispatches to them per device."""
