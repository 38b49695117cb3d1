"""``cnn.compile``: capture a module's ops once, then replay them without the Python between.

A forward pass of a small network in eager mode spends most of its time between the kernels:
``Module.__call__``, each functional op's argument checks and plan lookup, ``Function.apply``'s
bookkeeping, a Tensor per intermediate, and in backward the engine's graph walk. A compiled
module runs its first forward for an input signature eagerly while recording every op
(``cnn.autograd.function.tracing``): which Function ran, where each argument came from (an input,
a parameter, an earlier op's result, or a value fixed at capture), and, with grad enabled, the
order in which the engine would run the backward. Later calls with the same signature replay
that program: the same Functions' ``forward`` (without gradients, their ``inference`` form
where they have one) on the same arrays in the same order, and, for training, one graph node
whose backward calls each op's ``backward`` in the engine's order, accumulating into the
parameters' ``.grad`` exactly as the engine does. Without gradients, a batch runs its leading
per-image ops (``Function.per_image``) a chunk of images at a time (``_ImageChunks``). The numbers
are the same as eager, bit for bit (tested).

What is replayed is what the Functions compute; Python that runs in ``forward`` between them is not
re-run. So a capture is refused, and that signature always runs eagerly, when the forward returns
something other than one Tensor, passes an op a Tensor that did not come from an input, a parameter
or an earlier op (``detach()``, a constant made in ``forward``) or a NumPy array other than a
buffer's or a parameter's (a loss's targets, index arrays: they may depend on the inputs, and a
replay would keep the first call's), modifies a tensor in place (``out += identity``: under
``no_grad`` no op is recorded to repeat), or runs while a module has forward hooks. A replay is
used only while the signature matches (the inputs' shapes, dtypes and requires_grad, grad mode,
and with grad enabled the parameters' requires_grad) and no module has changed since the
capture (any attribute, child, parameter, buffer or hook, train/eval included:
``cnn.nn.module.structure_version``). Python that branches on tensor values
(``if x.sum() > 0``) cannot be seen by the capture: compile such models only if the branch is
fixed.
"""
import collections
import operator
import threading

import numpy as np

from ._ext._replay import copy_into as _copy_into
from ._ext._replay import BoundSteps as _Steps
from ._ext._replay import run_forwards as _run_forwards
from ._validation import flag
from .autograd import engine as _engine
from .autograd import function as _function
from .autograd import ops as _tensor_ops
from .autograd.function import Context, Function, _UnrecordedContext
from .autograd.grad_mode import is_grad_enabled
from .nn.functional import activation as _activation
from .nn.functional import conv as _conv
from .nn.functional.linear import Linear as _Linear  # (F.linear is the function)
from .nn.functional import normalization as _normalization
from .nn.module import Module, structure_version
from .tensor import Tensor, _wrap
from .threads import kernel_threads

__all__ = ["compile", "CompiledModule"]

# torch.compile's backends and modes only choose how to compile; none changes the results, so
# they are accepted (and all mean this one way of compiling).
_BACKENDS = (None, "inductor", "eager", "aot_eager")
_MODES = (None, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def compile(model=None, *, fullgraph=False, dynamic=None, backend="inductor", mode=None,
            options=None, disable=False):
    """Compile a module, as ``torch.compile``: its forward is captured once per input
    signature and then replayed without the Python between the ops (see this module's
    docstring for what is replayed and when it falls back to eager).

    Args:
        model (Module): The module. Without it, returns a decorator (``@cnn.compile(...)``).
        fullgraph (bool): Raise instead of running eagerly when a capture cannot be replayed.
        dynamic: Accepted for PyTorch compatibility; every input shape gets its own capture.
        options (dict): Inductor's options, of which cnn reads one, ``"freezing"`` (default
            False): with it, as with Inductor's freezing, a forward without gradients takes
            the convolutions' weights for constants. Their kernel layouts (packed or
            Winograd-transformed) are made at the first call with each weight array and
            used again without reading the weights, where an unfrozen replay reads them at
            every call to see whether they changed (at batch 1 a tenth of the VGG-style
            net's forward). A weight changed in place afterwards (an optimizer step,
            ``load_state_dict``, ``weight.data[...] = ...``) may then go unseen: compile the
            model again to use new values (a parameter given a new array, ``p.data = a``, is
            seen). A batch norm folded into a convolution is taken for constants too (its
            map made once for its arrays: statistics and affine parameters). A forward run
            whole (a small batch; a large one runs a few images at a time) also prepares
            each convolution once for the parameters' arrays (``Function.frozen``: checked,
            its kernels chosen, its bias copied), and prepares them again when a parameter
            is given a new array; a larger batch reads the biases at every call. Forward
            passes with gradients ignore the option. The other options are accepted for
            PyTorch compatibility and change nothing.
        backend (str): ``"inductor"`` (the default), ``"eager"`` or ``"aot_eager"``: all mean
            the one way cnn compiles.
        mode (str): torch's modes are accepted; all mean the one way cnn compiles.
        disable (bool): Return `model` itself.

    Returns:
        CompiledModule: A module around `model` (``_orig_mod``, as PyTorch's, so state_dict
        keys are prefixed ``_orig_mod.``).

    Raises:
        TypeError: `model` is not a Module (cnn compiles modules only).
        ValueError: A backend or mode that needs something cnn does not have (e.g. CUDA
            graphs).
    """
    if backend not in _BACKENDS:
        raise ValueError(f"backend: cnn compiles on the CPU its own way; expected one of "
                         f"{_BACKENDS}, got {backend!r}")
    if mode not in _MODES:
        raise ValueError(f"mode: expected one of {_MODES}, got {mode!r}")
    if options is not None and not isinstance(options, dict):
        raise TypeError(f"options: expected a dict of option names to values, or None, got "
                        f"{type(options).__name__}")
    freezing = flag((options or {}).get("freezing", False), "options['freezing']")
    if model is None:
        return lambda module: compile(module, fullgraph=fullgraph, dynamic=dynamic,
                                      backend=backend, mode=mode, options=options,
                                      disable=disable)
    if not isinstance(model, Module):
        raise TypeError(f"model: cnn.compile compiles a cnn.nn.Module, got "
                        f"{type(model).__name__}")
    if disable:
        return model
    return CompiledModule(model, fullgraph=bool(fullgraph), freezing=freezing)


class CompiledModule(Module):
    """A module whose forward replays captured programs (made by :func:`compile`).

    Attributes:
        _orig_mod (Module): The compiled module (its parameters are this module's).
    """

    def __init__(self, model, fullgraph=False, freezing=False):
        super().__init__()
        self._orig_mod = model
        object.__setattr__(self, "_fullgraph", fullgraph)
        object.__setattr__(self, "_freezing", freezing)
        object.__setattr__(self, "_programs", {})
        object.__setattr__(self, "_listed_version", None)

    def forward(self, *args, **kwargs):
        """The wrapped module's forward: a replay where a program for this signature is valid,
        else an eager run (which captures one, the first time)."""
        # (Read from the children's dict: Module.__getattr__ took half a microsecond, a tenth
        # of a batch-1 LeNet-5 forward's Python.)
        model = self._modules["_orig_mod"]
        if _function.is_tracing():
            # An enclosing trace (an ONNX export, the capture of a compiled model around this
            # one) records the ops themselves: run them eagerly, in its sight.
            return model(*args, **kwargs)
        if kwargs or not args:
            return self._eager("keyword or non-Tensor arguments", args, kwargs)
        for a in args:
            if type(a) is not Tensor:
                return self._eager("keyword or non-Tensor arguments", args, kwargs)
        leaves = self._leaves()
        inputs = tuple([(a._data.shape, a._data.dtype, a._requires_grad) for a in args])
        # Without gradients no op records anything, whatever the parameters' requires_grad:
        # one program serves them all.
        signature = ((True, inputs, tuple(map(_REQUIRES_GRAD, leaves))) if is_grad_enabled()
                     else inputs)
        program = self._programs.get(signature)
        if program is not None and program.version == structure_version():
            if program.refused is None:
                return program.run(args, leaves)
            return self._eager(program.refused, args, kwargs)
        if len(self._programs) > 64:
            self._programs.clear()
        program = _capture(model, args, leaves, self._freezing)
        self._programs[signature] = program
        if program.refused is not None and self._fullgraph:
            raise RuntimeError(f"cnn.compile(fullgraph=True): the forward cannot be replayed: "
                               f"{program.refused}")
        return program.result

    def _leaves(self):
        """The model's parameters, listed again only after a module changed."""
        version = structure_version()
        if self._listed_version != version:
            object.__setattr__(self, "_listed", tuple(self._modules["_orig_mod"].parameters()))
            object.__setattr__(self, "_listed_version", version)
        return self._listed

    def _eager(self, reason, args, kwargs):
        if self._fullgraph:
            raise RuntimeError(f"cnn.compile(fullgraph=True): the forward cannot be replayed: "
                               f"{reason}")
        return self._modules["_orig_mod"](*args, **kwargs)


# The parameters' part of a signature, read in one C loop (a ResNet has dozens).
_REQUIRES_GRAD = operator.attrgetter("_requires_grad")

# A forward without gradients runs its leading per-image steps (Function.per_image) on this
# many bytes of their largest value at a time, where the batch holds two such chunks or more
# (_ImageChunks): a whole batch's intermediates went through memory between steps, a chunk's
# stay in the cache. Batch 1000, two threads, AVX-512 Xeon, alternating: ResNet-8 129-130 ->
# 108-110 ms (32 chunks of 31-32 images), the VGG-style net 202 -> 197-202 (16 images); with
# 4 MiB 120-123 and 207-208, with 8 MiB 121-127 and 211-213 (these three with a last chunk
# that overlapped the one before, since replaced by chunks of sizes differing by one).
CHUNK_BYTES = 1 << 21


# ***** capture *****

class _Recorder:
    """The tracer of one capture: numbers every value an op takes or makes (a slot), and
    records each op of the capturing thread."""

    def __init__(self, tensors, module_arrays):
        self.thread = threading.get_ident()
        self.slots = {id(t): i for i, t in enumerate(tensors)}
        # The arrays of the module's buffers and parameters (batch norm's running statistics):
        # the same objects at every call, updated in place, so a replay sees them as they are.
        self.module_arrays = module_arrays
        self.kept = list(tensors)  # alive while recording, so ids stay unique
        self.steps = []
        self.nodes = []  # each step's graph node (or None), for the backward order
        self.refused = None

    def __call__(self, cls, args, kwargs, out):
        if threading.get_ident() != self.thread or self.refused is not None:
            return
        specs = []
        for arg in args:
            if isinstance(arg, Tensor):
                slot = self.slots.get(id(arg))
                if slot is None:
                    self.refused = (f"{cls.__name__} takes a Tensor that no input, parameter or "
                                    f"earlier op made (a detached tensor or a constant)")
                    return
                specs.append((slot, None))
            elif isinstance(arg, np.ndarray) and id(arg) not in self.module_arrays:
                # An array made in forward (a loss's targets, index arrays) may depend on the
                # inputs: a replay would freeze the first call's.
                self.refused = (f"{cls.__name__} takes an array made in forward (such as a "
                                f"loss's targets), which a replay would fix at its first value")
                return
            else:
                specs.append((-1, arg))
        if any(isinstance(value, Tensor) or isinstance(value, np.ndarray)
               and id(value) not in self.module_arrays for value in kwargs.values()):
            self.refused = f"{cls.__name__} takes a Tensor or an array as a keyword argument"
            return
        node = out._node
        needs = node.needs_input_grad if node is not None else None
        slot = len(self.kept)
        self.slots[id(out)] = slot
        self.kept.append(out)
        self.steps.append((cls, tuple(specs), kwargs, slot, needs))
        self.nodes.append(node)

    def inplace(self, tensor, name):
        """An in-place operation: without autograd there is no op to replay (with autograd,
        its op takes a tensor no recorded op made), so no replay."""
        if threading.get_ident() == self.thread and self.refused is None:
            self.refused = (f"the forward modifies a tensor in place ({name}), which a "
                            f"replay would not repeat")


def _capture(model, args, leaves, freezing=False):
    """Run `model` eagerly on `args` while recording: a _Program (refused or replayable) that
    also holds this run's result. Its version is the modules' after the run (a first forward
    may build modules, e.g. Sequential's fused layers). With `freezing`, a program without
    gradients runs its freezable ops frozen (compile's options)."""
    if any(m._forward_pre_hooks or m._forward_hooks for m in model.modules()):
        result = model(*args)
        return _Program.refusal("a module has forward hooks", structure_version(), result)
    module_arrays = {id(t._data if isinstance(t, Tensor) else t)
                     for t in (*model.buffers(), *model.parameters())}
    recorder = _Recorder(args + leaves, module_arrays)
    with _function.tracing(recorder):
        result = model(*args)
    version = structure_version()
    if recorder.refused is None:
        if type(result) is not Tensor:
            recorder.refused = f"the forward returns a {type(result).__name__}, not one Tensor"
        elif id(result) not in recorder.slots:
            recorder.refused = "the forward returns a Tensor that no op made"
    if recorder.refused is not None:
        return _Program.refusal(recorder.refused, version, result)
    return _Program(recorder, args, leaves, recorder.slots[id(result)], result, version,
                    freezing)


class _Program:
    """A captured forward: its steps, the shape and dtype of every value, where the result is,
    and the backward order."""

    def __init__(self, recorder, inputs, leaves, result_slot, result, version, freezing=False):
        self.version = version
        self.refused = None
        self.result = result
        self.n_inputs = len(inputs)
        self.leaves = leaves
        self.meta = [(t._data.shape, t._data.dtype) for t in recorder.kept]
        self.result_slot = result_slot
        self.grad = result._node is not None
        order = []
        if self.grad:
            # The engine runs nodes in reverse topological order (its own walk from the
            # result): the replayed backward runs the steps in that very order.
            step_of = {id(node): i for i, node in enumerate(recorder.nodes) if node is not None}
            order = [step_of[id(node)] for node in
                     reversed(_engine._topological_order([result._node]))]
        steps, order = _fold_batch_norms(recorder.steps, order, result_slot)
        steps, order = _fuse_relus(steps, order, result_slot, self.meta)
        self.steps, self.backward_order = _fold_residuals(steps, order, result_slot)
        # Without gradients each step is its Function's inference form (or forward, through
        # _without_ctx) on the values of its slots, the values fixed at capture (plans, flags,
        # buffers) in slots of their own after the others: looked up once here, and the
        # steps run by a loop in C (cnn/_ext/_replay.pyx: run_forwards, which says why),
        # since a batch-1 forward's ops take only microseconds each.
        # Each step's value is let go after the last step that reads it, as eager's Python
        # lets an intermediate tensor go, instead of at the end of the forward: the
        # VGG-style net's replay at batch 1000 peaked at 275 MB of arrays, now at 158
        # (ResNet-8: 328 -> 188). last_read: slot -> the step that reads it last.
        first_step_slot = self.n_inputs + len(leaves)
        last_read = {}
        self.constants = []
        self.forwards = []
        for i, (cls, specs, kwargs, slot, _) in enumerate(self.steps):
            sources = []
            for source, constant in specs:
                if source < 0:
                    source = len(self.meta) + len(self.constants)
                    self.constants.append(constant)
                elif source >= first_step_slot:
                    last_read[source] = i
                sources.append(source)
            last_read[slot] = i  # a value no step reads is let go once made
            run = getattr(cls, "inference", None) or _without_ctx(cls, len(specs))
            if freezing and cls.freezable and not self.grad:
                kwargs = {**(kwargs or {}), "frozen": True}
            self.forwards.append((run, tuple(sources), kwargs or None, slot))
        released = [[] for _ in self.forwards]
        for slot, i in last_read.items():
            if slot != result_slot:
                released[i].append(slot)
        self.forwards = [forward + (tuple(sorted(done)) or None,)
                         for forward, done in zip(self.forwards, released)]
        self.chunks = None if self.grad else _ImageChunks.of(self)
        # With freezing, a program run whole (a small batch, where the Python of each op's
        # call counts) prepares its freezable steps (Function.frozen) at its first run for
        # the parameters' arrays, and again when one is replaced: (those arrays, the steps).
        self.prepares = freezing and not self.grad and self.chunks is None and any(
            cls.freezable for cls, _, _, _, _ in self.steps)
        self.prepared = None
        # The slots the steps fill, then the constants' (a replay copies it, never changes it).
        self.unset_constants = ([None] * (len(self.meta) - self.n_inputs - len(leaves))
                                + self.constants)

    @classmethod
    def refusal(cls, reason, version, result):
        program = cls.__new__(cls)
        program.version, program.refused, program.result = version, reason, result
        return program

    def run(self, inputs, leaves):
        """The forward's result for new inputs (of the captured signature)."""
        if self.grad:
            return _Replayed.apply(*inputs, *leaves, self)
        threads = kernel_threads()  # once per forward, not per op as eager reads it
        forwards = self.forwards
        if self.prepares:
            arrays = [t._data for t in leaves]  # those prepared for, or new ones to prepare
            prepared = self.prepared
            if prepared is None or not all(map(operator.is_, arrays, prepared[0])):
                prepared = self.prepared = (
                    arrays, self._prepared_forwards(self._values(inputs, leaves)), {})
            bound = prepared[2].get((threading.get_ident(), threads), _UNBOUND)
            if bound is _UNBOUND:
                bound = _BoundSteps.of(self, prepared[1], threads, prepared[2])
            if bound is not None:
                return _wrap(bound.run(inputs[0]._data, threads))
            forwards = prepared[1]
        values = self._values(inputs, leaves)
        if self.chunks is not None:
            self.chunks.run(values, threads)
            forwards = forwards[self.chunks.steps:]
        _run_forwards(forwards, values, threads)
        return _wrap(values[self.result_slot])

    def _values(self, inputs, leaves):
        """The list of values by slot that the steps fill: the inputs' and parameters'
        arrays, then the slots of the steps' results, then the constants'."""
        return [t._data for t in inputs] + [t._data for t in leaves] + self.unset_constants

    def _prepared_forwards(self, values):
        """self.forwards with each freezable step whose arguments other than the ones a
        frozen call takes (its images, or Function.frozen_takes) are parameters or fixed
        values prepared for them (Function.frozen, given the arrays in `values`) and called
        with the taken ones alone: a forward of a batch-1 convolution checked and laid out
        once, not at every call (about 1.2 us of its call), a batch-1 linear layer's weight
        taken once."""
        parameters = range(self.n_inputs, self.n_inputs + len(self.leaves))
        forwards = []
        for (cls, _, kwargs, _, _), forward in zip(self.steps, self.forwards):
            sources = forward[1]
            prepared = None
            taken = cls.per_image if cls.frozen_takes is None else cls.frozen_takes
            fixed = [source for position, source in enumerate(sources)
                     if position not in taken]
            if cls.freezable and all(source in parameters or source >= len(self.meta)
                                     for source in fixed):
                shape = self.meta[sources[taken[0]]][0]
                prepared = cls.frozen(shape, *[values[source] for source in fixed],
                                      **(kwargs or {}))
            if prepared is None:
                forwards.append(forward)
            else:
                forwards.append((prepared, tuple([sources[k] for k in taken]), None)
                                + forward[3:])
        return forwards


# A bound program's arrays (_BoundSteps) take at most this many bytes; a larger one (a
# batch-1 forward of large images) keeps the prepared steps' own allocations.
BOUND_BYTES = 1 << 24
# A program binds its steps for this many (thread, team size) pairs at most (a server's
# threads each get arrays of their own); the pairs after those run the prepared steps.
BOUND_COPIES = 8
_UNBOUND = object()  # no bound steps made yet for a (thread, team size)


class _BoundSteps:
    """A prepared program's steps bound to arrays of their own (the frozen calls' bind,
    Function.frozen_takes), run with no Python between them: at batch 1 each prepared step's
    call still spent about 1 us in checks, an allocation and typed memoryviews around
    kernels of a few microseconds. Made for the calling thread (its arrays are not shared)
    and a team size (its scratch is sized for it). A call copies the input in, runs the
    steps, and returns a copy of the result (the arrays are the steps' again at the next
    call). The same bits as the prepared steps: the same kernels, whose values do not depend
    on how the work is shared out among the threads."""

    def __init__(self, steps, input, result):
        self.steps, self.input, self.result = steps, input, result
        self.run_steps = _Steps(steps)  # all in one parallel region

    @classmethod
    def of(cls, program, forwards, threads, kept):
        """The bound steps of `program`'s prepared `forwards` (_Program._prepared_forwards)
        for the calling thread and `threads`, kept in `kept`; None where a step has no bound
        form or cannot be bound to the captured shapes (a parameter given an array of
        another shape: the prepared steps then run as eager would), the program has more
        than one input, its arrays would take more than BOUND_BYTES, or `kept` holds
        BOUND_COPIES bindings already (then nothing is kept)."""
        if len(kept) >= BOUND_COPIES:
            return None
        bound = kept[(threading.get_ident(), threads)] = cls._bind(program, forwards, threads)
        return bound

    @classmethod
    def _bind(cls, program, forwards, threads):
        if program.n_inputs != 1:
            return None
        arrays = {0: np.empty(*program.meta[0])}
        steps, size = [], arrays[0].nbytes
        for (function, _, _, slot, _), (run, sources, kwargs, _, _) in zip(program.steps,
                                                                           forwards):
            shape, dtype = program.meta[slot]
            if function.views_input and sources[0] in arrays:
                arrays[slot] = arrays[sources[0]].reshape(shape)
                continue
            bind = getattr(run, "bind", None)
            size += int(np.prod(shape)) * dtype.itemsize
            if (bind is None or kwargs or size > BOUND_BYTES
                    or any(source not in arrays for source in sources)):
                return None
            out = np.empty(shape, dtype)
            try:
                step = bind(threads, out, *[arrays[source] for source in sources])
            except (ValueError, TypeError):  # a parameter's new shape: not the captured ones
                return None
            if step is None:
                return None
            steps.append(step)
            arrays[slot] = out
        return cls(steps, arrays[0], arrays[program.result_slot])

    def run(self, x, threads):
        """The program's result for input x (an array of the captured shape and dtype)."""
        _copy_into(self.input, x)
        self.run_steps(threads)
        return self.result.copy()


class _ImageChunks:
    """How a program without gradients runs its leading steps a chunk of images at a time:
    the first `steps` steps, each a per-image op (Function.per_image) on (N, C, H, W) values
    of the input's batch N, on the images bounds[i]..bounds[i + 1] - 1 at a time (the fewest
    chunks of at most CHUNK_BYTES of their largest value, of sizes differing by one at most;
    fewer where a plan would choose another algorithm for a size). The values that later
    steps read, or the result, are gathered whole (`gathered`: slot -> shape of one image,
    dtype). The bits are the whole batch's: each image's values depend on that image alone
    (the only choice of a convolution that depends on the batch, its algorithm, is the same
    for each chunk's size as for N: ConvPlan.runs_winograd)."""

    def __init__(self, forwards, bounds, gathered):
        self.forwards, self.bounds, self.gathered = forwards, bounds, gathered
        self.steps = len(forwards)

    @classmethod
    def of(cls, program):
        """The chunks of a program (_Program), or None where they do not apply."""
        meta, constants = program.meta, program.constants
        if program.n_inputs != 1 or len(meta[0][0]) != 4:
            return None
        batch = meta[0][0][0]
        chunked, plans, largest, steps = {0}, [], 0, 0
        for (function, _, _, slot, _), (_, sources, _, _, _) in zip(program.steps,
                                                                    program.forwards):
            shape = meta[slot][0]
            if (not function.per_image or len(shape) != 4 or shape[0] != batch
                    or any((source in chunked) != (position in function.per_image)
                           for position, source in enumerate(sources))):
                break
            plans += [constants[source - len(meta)] for source in sources
                      if source >= len(meta)
                      and hasattr(constants[source - len(meta)], "runs_winograd")]
            chunked.add(slot)
            largest = max(largest, int(np.prod(shape[1:])) * meta[slot][1].itemsize)
            steps += 1
        most = CHUNK_BYTES // max(largest, 1)
        if steps == 0 or most < 1 or batch < 2 * most:
            return None
        for count in range(-(-batch // most), 1, -1):  # fewer, larger chunks if need be
            bounds = [batch * i // count for i in range(count + 1)]  # sizes differing by one
            sizes = {end - start for start, end in zip(bounds, bounds[1:])}
            if all(plan.runs_winograd(size) == plan.runs_winograd(batch)
                   for plan in plans for size in sizes):
                break
        else:
            return None
        later = {program.result_slot}
        for _, sources, _, _, _ in program.forwards[steps:]:
            later.update(sources)
        gathered = {slot: (meta[slot][0][1:], meta[slot][1]) for slot in chunked - {0}
                    if slot in later}
        return cls(program.forwards[:steps], bounds, gathered)

    def run(self, values, threads):
        """Run the chunked steps over the whole batch, leaving in `values` the input and the
        gathered values whole."""
        x = values[0]
        whole = {slot: np.empty((x.shape[0],) + shape, dtype)
                 for slot, (shape, dtype) in self.gathered.items()}
        for start, end in zip(self.bounds, self.bounds[1:]):
            values[0] = x[start:end]
            _run_forwards(self.forwards, values, threads)
            for slot, array in whole.items():
                array[start:end] = values[slot]
        values[0] = x
        for slot, array in whole.items():
            values[slot] = array


def _without_ctx(cls, n_args):
    """The inference form of a Function that defines none: its forward with a ctx that
    records nothing (the kernels read their thread count themselves)."""
    unrecorded = (None,) * n_args

    def run(threads, *args, **kwargs):
        return cls.forward(_UnrecordedContext(cls, unrecorded), *args, **kwargs)
    return run


def _run_steps(steps, values, contexts):
    """Run each step's forward, filling `values` by slot; keep each step's ctx in `contexts`
    (None where nothing is kept for backward)."""
    for cls, specs, kwargs, slot, needs in steps:
        if needs is not None:
            step_ctx = _StepContext(cls, needs)
        else:
            step_ctx = _UnrecordedContext(cls, (None,) * len(specs))
        contexts.append(step_ctx if needs is not None else None)
        values[slot] = cls.forward(step_ctx, *[values[i] if i >= 0 else constant
                                               for i, constant in specs], **kwargs)


def _uses(steps, result_slot):
    """How many times each slot is an op's argument (or the result)."""
    uses = collections.Counter(i for _, specs, _, _, _ in steps for i, _ in specs if i >= 0)
    uses[result_slot] += 1
    return uses


def _fold(steps, order, result_slot, fold, at_second=False):
    """Fold each step into the one step that made its first input, used nowhere else, where
    `fold(first, second)` gives the fused step (or None: not foldable): the fused step runs
    where the first ran, in forward and backward alike, and the second is dropped; or, with
    `at_second`, where the second ran (its other inputs may come later than the first), and
    the first is dropped.

    Returns:
        (steps, order): the steps, and the backward order by their new indices.
    """
    producer = {slot: i for i, (_, _, _, slot, _) in enumerate(steps)}
    uses = _uses(steps, result_slot)
    steps = list(steps)
    dropped = set()
    for j, step in enumerate(steps):
        source = step[1][0][0] if step[1] else -1
        i = producer.get(source)
        if i is None or uses[source] != 1 or i in dropped:
            continue
        fused = fold(steps[i], step)
        if fused is not None:
            steps[j if at_second else i] = fused
            dropped.add(i if at_second else j)
    index = {}
    for old in range(len(steps)):
        if old not in dropped:
            index[old] = len(index)
    return ([step for j, step in enumerate(steps) if j not in dropped],
            [index[i] for i in order if i not in dropped])


def _fold_batch_norms(steps, order, result_slot):
    """Fold each batch norm in evaluation mode that alone takes a convolution's output, in a
    forward pass without gradients, into the convolution's epilogue (the same arithmetic:
    Conv2d's `batch_norm` arguments)."""
    def fold(first, second):
        cls, specs, kwargs, _, needs = first
        bn, bn_specs, bn_kwargs, slot, bn_needs = second
        if (cls is not _conv.Conv2d or bn is not _normalization.BatchNorm or kwargs
                or bn_kwargs or needs is not None or bn_needs is not None
                or len(specs) != 4 or bn_specs[5] != (-1, False)):
            return None
        # BatchNorm's running_mean, running_var, weight, bias and eps.
        batch_norm = tuple(bn_specs[k] for k in (1, 2, 3, 4, 7))
        return (cls, specs + batch_norm, kwargs, slot, None)
    return _fold(steps, order, result_slot, fold)


def _fuse_relus(steps, order, result_slot, meta):
    """Fold each ReLU that alone takes the output of a convolution, a batch norm, a linear layer
    or a sum of two tensors of one shape into that op (its `relu` form, or AddReLU): one pass
    over the data and one op fewer, the same arithmetic in the same order, so the same bits."""
    def fold(first, second):
        cls, specs, kwargs, first_slot, needs = first
        if second[0] is not _activation.ReLU or kwargs.get("relu"):
            return None
        if cls in (_conv.Conv2d, _normalization.BatchNorm, _Linear):
            return (cls, specs, {**kwargs, "relu": True}, second[3], needs)
        if (cls is _tensor_ops.Add and all(k >= 0 for k, _ in specs)
                and meta[specs[0][0]] == meta[specs[1][0]] == meta[first_slot]):
            return (_activation.AddReLU, specs, kwargs, second[3], needs)
        return None
    return _fold(steps, order, result_slot, fold)


def _fold_residuals(steps, order, result_slot):
    """Fold each AddReLU (a residual connection's sum and ReLU) whose first operand only a
    convolution makes, in a forward pass without gradients, into that convolution's last step
    (Conv2dAddReLU: after its folded batch norm, the same arithmetic). The fused step runs
    where the AddReLU ran, since the other operand (the shortcut) is often made after the
    convolution; the convolution's own inputs are there already."""
    def fold(first, second):
        cls, specs, kwargs, _, needs = first
        add, add_specs, add_kwargs, slot, add_needs = second
        if (cls is not _conv.Conv2d or add is not _activation.AddReLU or kwargs
                or add_kwargs or needs is not None or add_needs is not None):
            return None
        return (_conv.Conv2dAddReLU, specs[:4] + add_specs[1:] + specs[4:], {}, slot, None)
    return _fold(steps, order, result_slot, fold, at_second=True)


class _StepContext(Context):
    """The ctx of one replayed step: what its backward needs (a placeholder per argument that
    needs a gradient, None for the others), without a graph node's edges."""

    __slots__ = ()

    def __init__(self, function, needs):
        super().__init__(function, tuple([True if need else None for need in needs]), (), 0)


class _Replayed(Function):
    """A replayed forward as one graph node: forward runs the steps, backward runs their
    backward in the engine's order and accumulates into the parameters as the engine does."""

    @staticmethod
    def forward(ctx, *arguments):
        program = arguments[-1]
        values = list(arguments[:-1])
        values += [None] * (len(program.meta) - len(values))
        contexts = []
        _run_steps(program.steps, values, contexts)
        ctx.program, ctx.contexts = program, contexts
        return values[program.result_slot]

    @staticmethod
    def backward(ctx, grad_output):
        program, contexts = ctx.program, ctx.contexts
        steps, meta, leaves = program.steps, program.meta, program.leaves
        n_inputs = program.n_inputs
        n_sources = n_inputs + len(leaves)
        grads = {program.result_slot: grad_output}
        input_grads = [None] * n_inputs
        for index in program.backward_order:
            cls, specs, _, slot, _ = steps[index]
            grad = grads.pop(slot, None)
            if grad is None:
                continue
            step_ctx = contexts[index]
            results = cls.backward(step_ctx, grad)
            if type(results) is not tuple:
                results = (results,)
            for (source, _), needed, result in zip(specs, step_ctx.needs_input_grad, results):
                if not needed or result is None:
                    continue
                result = _engine._checked_gradient(result, *meta[source], step_ctx)
                if source >= n_sources:  # an earlier step's result: as the engine's grads
                    grads[source] = (_engine._sum(grads[source], result) if source in grads
                                     else result)
                elif source >= n_inputs:  # a parameter: accumulated at once, as the engine does
                    _engine._accumulate(leaves[source - n_inputs], result)
                elif input_grads[source] is None:
                    input_grads[source] = result
                else:
                    input_grads[source] = _engine._sum(input_grads[source], result)
        return (*input_grads, *([None] * len(leaves)), None)
