"""JAX as a peer: a cnn model translated to jax.lax, its whole training step under one jax.jit.

The translation walks the cnn model's modules (Sequential, Conv2d, BatchNorm2d, ReLU,
MaxPool2d, AvgPool2d, Flatten, Linear, Identity, and blocks with a `wiring` function such as
nets.residual_block's), so JAX runs the same network with the same weights without a second
definition. Convolutions are `jax.lax.conv_general_dilated` in NCHW/OIHW, pooling is
`jax.lax.reduce_window`, BatchNorm follows PyTorch (batch statistics in training, biased
variance to normalise, unbiased variance in the running estimate, momentum 0.1).

XLA reads its thread settings once, when jax is first imported: call `configure_threads`
before `load`.
"""
import os

import numpy as np

from eager import LR, MOMENTUM


def configure_threads(threads, cores):
    """Ask XLA for `threads` threads, as far as it allows; returns what was done (for the report).

    XLA's CPU client sizes its thread pool to the usable cores and has no setting for another
    size (jax issues #743, #1539). The one switch it has is --xla_cpu_multi_thread_eigen=false,
    which keeps the Eigen convolutions and matrix products on the calling thread: used for 1
    thread. For N >= cores the default already means N; between the two it cannot be limited.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if threads == 1:
        if "xla_cpu_multi_thread_eigen" not in flags:
            flags = (flags + " --xla_cpu_multi_thread_eigen=false "
                     "intra_op_parallelism_threads=1").strip()
            os.environ["XLA_FLAGS"] = flags
        how = "1 thread (Eigen's pool off through XLA_FLAGS)"
    elif threads >= cores:
        how = f"XLA's default pool (one thread per usable core: {cores})"
    else:
        how = (f"NOT limited: XLA cannot be set to {threads} of {cores} cores and uses them "
               "all; its figures are for more threads than the others'")
    return how


def load():
    """(jax module or None, why not). Imports jax (after configure_threads).

    Compiled steps go to JAX's persistent compilation cache ($CNN_BENCH_JAX_CACHE, else
    ~/.cache/cnn/bench-jax): compiling a training step takes seconds, and the same programs
    come back in every run. The cache is keyed by the program and XLA's flags, so it never
    serves another thread setting's executable; it changes start-up time, not timings.
    """
    try:
        import jax
    except ImportError as error:
        return None, f"not installed ({error})"
    cache = os.environ.get("CNN_BENCH_JAX_CACHE") or os.path.expanduser("~/.cache/cnn/bench-jax")
    jax.config.update("jax_compilation_cache_dir", cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
    return jax, None


def versions(jax):
    """Versions and device of the JAX peer, for the report."""
    import jaxlib
    return {"jax": jax.__version__, "jaxlib": jaxlib.__version__,
            "devices": [str(d) for d in jax.devices()],
            "XLA_FLAGS": os.environ.get("XLA_FLAGS", "")}


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


class _Translator:
    """The JAX forward pass of a cnn module tree, traced by jax.jit.

    `apply(params, buffers, x, train)` returns (output, updated buffers); params and buffers are
    flat dicts keyed by the cnn model's state_dict names (pytrees JAX differentiates and
    updates).
    """

    def __init__(self, jax, model):
        self.jax, self.lax, self.jnp = jax, jax.lax, jax.numpy
        self.model = model

    def apply(self, params, buffers, x, train):
        updates = dict(buffers)
        out = self._run(self.model, "", params, updates, x, train)
        return out, updates

    def _run(self, module, prefix, params, updates, x, train):
        kind = type(module).__name__
        p = {name: params.get(prefix + name) for name in ("weight", "bias")}
        if hasattr(module, "wiring"):  # a residual block: its own wiring over its layers
            return module.wiring(
                lambda name, v: self._run(getattr(module, name), f"{prefix}{name}.", params,
                                          updates, v, train),
                self.jax.nn.relu, x)
        if kind == "Sequential":
            for name, child in module.named_children():
                x = self._run(child, f"{prefix}{name}.", params, updates, x, train)
            return x
        if kind == "Identity":
            return x
        if kind == "ReLU":
            return self.jax.nn.relu(x)
        if kind == "Flatten":
            return x.reshape(x.shape[0], -1)
        if kind == "Linear":
            y = x @ p["weight"].T
            return y if p["bias"] is None else y + p["bias"]
        if kind == "Conv2d":
            return self._conv(module, p, x)
        if kind in ("MaxPool2d", "AvgPool2d"):
            return self._pool(module, kind, x)
        if kind == "BatchNorm2d":
            return self._batch_norm(module, prefix, p, updates, x, train)
        raise NotImplementedError(f"no JAX translation for {kind} ({prefix or 'model'})")

    def _conv(self, module, p, x):
        pad = _pair(module.padding)
        y = self.lax.conv_general_dilated(
            x, p["weight"], window_strides=_pair(module.stride),
            padding=[(pad[0], pad[0]), (pad[1], pad[1])], rhs_dilation=_pair(module.dilation),
            dimension_numbers=("NCHW", "OIHW", "NCHW"), feature_group_count=module.groups)
        return y if p["bias"] is None else y + p["bias"][None, :, None, None]

    def _pool(self, module, kind, x):
        k = _pair(module.kernel_size)
        s = _pair(module.stride if module.stride is not None else module.kernel_size)
        pad = _pair(module.padding)
        window, strides = (1, 1) + k, (1, 1) + s
        padding = ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1]))
        if kind == "MaxPool2d":
            return self.lax.reduce_window(x, -self.jnp.inf, self.lax.max, window, strides,
                                          padding)
        # AvgPool2d with PyTorch's default count_include_pad=True: divide by the window size.
        total = self.lax.reduce_window(x, 0.0, self.lax.add, window, strides, padding)
        return total / (k[0] * k[1])

    def _batch_norm(self, module, prefix, p, updates, x, train):
        jnp = self.jnp
        mean_key, var_key = prefix + "running_mean", prefix + "running_var"
        if train:
            mean = x.mean(axis=(0, 2, 3))
            var = x.var(axis=(0, 2, 3))
            n = x.size // x.shape[1]
            m = module.momentum
            # PyTorch's running estimate uses the unbiased variance.
            updates[mean_key] = (1 - m) * updates[mean_key] + m * mean
            updates[var_key] = (1 - m) * updates[var_key] + m * var * (n / (n - 1))
        else:
            mean, var = updates[mean_key], updates[var_key]
        scale = p["weight"] / jnp.sqrt(var + module.eps)
        shift = p["bias"] - mean * scale
        return x * scale[None, :, None, None] + shift[None, :, None, None]


class JaxModel:
    """A cnn model's JAX twin: its weights copied, a jitted training step and forward pass."""

    def __init__(self, jax, model):
        self.jax = jax
        jnp = jax.numpy
        state = {k: np.array(v) for k, v in model.state_dict().items()}
        param_names = {name for name, _ in model.named_parameters()}
        # device_put, not jnp functions: each of those would compile a tiny XLA program per
        # shape (a second or more of start-up per network).
        self.params = jax.device_put({k: v for k, v in state.items() if k in param_names})
        # Running statistics only: num_batches_tracked matters only for momentum=None.
        self.buffers = jax.device_put({k: v for k, v in state.items()
                                       if k.endswith(("running_mean", "running_var"))})
        self.momentum = jax.device_put({k: np.zeros_like(state[k]) for k in self.params})
        translator = _Translator(jax, model)

        def loss_fn(params, buffers, x, y):
            logits, updates = translator.apply(params, buffers, x, True)
            log_p = jax.nn.log_softmax(logits)
            return -jnp.take_along_axis(log_p, y[:, None], axis=1).mean(), updates

        def step(params, momentum, buffers, x, y):
            (loss, buffers), grads = jax.value_and_grad(loss_fn, has_aux=True)(
                params, buffers, x, y)
            # PyTorch's SGD with momentum (dampening 0): buf = m * buf + g (buf = g on the first
            # step, which a zero buffer gives too), p -= lr * buf.
            momentum = jax.tree.map(lambda b, g: MOMENTUM * b + g, momentum, grads)
            params = jax.tree.map(lambda w, b: w - LR * b, params, momentum)
            return params, momentum, buffers, loss

        # The old parameters, momenta and statistics are dead after a step: donating them lets
        # XLA update them in place instead of allocating new buffers every step.
        self._step = jax.jit(step, donate_argnums=(0, 1, 2))
        self._forward = jax.jit(lambda params, buffers, x: translator.apply(
            params, buffers, x, False)[0])

    def training_step(self, x, y):
        """A callable running one step on arrays x, y (copied to JAX once); returns the loss,
        computed (block_until_ready) before it returns."""
        x, y = self.jax.device_put(x), self.jax.device_put(y.astype(np.int32))

        def run():
            self.params, self.momentum, self.buffers, loss = self._step(
                self.params, self.momentum, self.buffers, x, y)
            return loss.block_until_ready()
        return run

    def inference(self, batches):
        """A callable running the eval-mode forward pass over each array in `batches`; returns
        the outputs, computed before it returns."""
        batches = [self.jax.device_put(b) for b in batches]

        def run():
            out = [self._forward(self.params, self.buffers, b) for b in batches]
            return self.jax.block_until_ready(out)
        return run
