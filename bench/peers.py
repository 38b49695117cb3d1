"""Which peers are installed, with the thread settings they get, and their versions.

Peers are optional: each one that cannot be imported (or is skipped with --skip) is left out
of every figure, with the reason kept for the report. ONNX Runtime needs PyTorch as well, to
export the models.
"""
import re

import benchlib
import peer_jax
import peer_ort

PEERS = ("torch", "jax", "ort")
NAMES = {"torch": "PyTorch eager", "jax": "JAX (jit)", "ort": "ONNX Runtime"}


def torch_info(torch):
    """PyTorch's version, threads, CPU capability and BLAS, for the report."""
    found = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
    return {"version": torch.__version__, "threads": torch.get_num_threads(),
            "interop_threads": torch.get_num_interop_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "blas": found.group(1) if found else "unknown",
            "mkldnn": torch.backends.mkldnn.is_available()}


class Peers:
    """The installed peers, imported and set to `threads` threads.

    Attributes torch, jax, ort are the modules or None; `missing` maps a peer that is not
    there to why; `settings` says what each peer's thread count is and how it was set.
    """

    def __init__(self, threads, skip=()):
        self.threads = threads
        self.missing, self.settings = {}, {}
        self.torch = self.jax = self.ort = None
        for name in skip:
            self.missing[name] = "left out with --skip"
        if "torch" not in skip:
            try:
                import torch
            except ImportError as error:
                self.missing["torch"] = f"not installed ({error})"
            else:
                self.torch = torch
                torch.set_num_threads(threads)
                self.settings["torch"] = f"torch.set_num_threads({threads})"
        if "jax" not in skip:
            # Before the import: XLA reads its flags once, when its CPU client starts.
            how = peer_jax.configure_threads(threads, benchlib.usable_cores())
            self.jax, why = peer_jax.load()
            if self.jax is None:
                self.missing["jax"] = why
            else:
                self.settings["jax"] = how
        if "ort" not in skip:
            self.ort, why = peer_ort.load()
            if self.ort is not None and self.torch is None:
                self.ort, why = None, "needs PyTorch, to export the models to ONNX"
            if self.ort is None:
                self.missing["ort"] = why
            else:
                self.settings["ort"] = (f"intra_op_num_threads={threads}, "
                                        "inter_op_num_threads=1, ORT_SEQUENTIAL")

    def installed(self):
        """The names of the peers that take part, in PEERS order."""
        return [name for name in PEERS if getattr(self, name) is not None]

    def versions(self):
        """Per peer: versions and settings, or why it is not there."""
        out = {}
        for name in PEERS:
            module = getattr(self, name)
            if module is None:
                out[name] = {"available": False, "reason": self.missing[name]}
                continue
            info = {"torch": torch_info, "jax": peer_jax.versions,
                    "ort": peer_ort.versions}[name](module)
            out[name] = {"available": True, **info, "thread_setting": self.settings[name]}
        return out
