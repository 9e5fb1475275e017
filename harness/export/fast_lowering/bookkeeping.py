"""torch's per-pass bookkeeping done once instead of again and again: provenance records, generated code, signature maps.

Around the re-traces themselves, every pass pays for three kinds of bookkeeping whose cost grows with the graph (and
one with the number of passes before it). Each result here is the same as what it replaces, so the program is
unchanged (benchmarks/export_time.py counts each kind in a full export):

1. `share_provenance`: each node's provenance record deep-copies the whole chain of records before it.
2. `reuse_compiled_code`: every `GraphModule.recompile` compiles its generated Python anew, though most of a
   lowering's compiles repeat a source already compiled.
3. `cache_signature_maps`: `graph_signature.inputs_to_parameters` (and buffers, constants) rebuilds a dict over all
   the program's inputs on each call, and is called per node (`is_param`).
4. `defer_codegen`: every recompile writes the Python source of the whole graph, though the passes read the graph,
   not the source: it is written when first read or run.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import types
from typing import Iterator


@contextlib.contextmanager
def share_provenance() -> Iterator[None]:
    """Within this block, a node's provenance record (torch.fx.traceback.NodeSource, made for every node on every
    re-trace) shares its ancestors' records instead of deep-copying them.

    Each record holds a copy of the chain of records before it, so a deep copy costs as much as the chain is long:
    the n-th pass pays n times per node. Nothing changes a record once it is made (readers walk the chain: debug
    handles, the inspector), so sharing is the same chain at no cost."""
    from torch.fx.traceback import NodeSource

    original = NodeSource.__init__

    def __init__(self, node=None, pass_name="", action=None):
        original(self, None, pass_name, action)
        if node:
            self.node_info = self.NodeInfo(name=node.name, target=str(node.target), graph_id=id(node.graph))
            self.from_node = copy.copy(node.meta["from_node"]) if "from_node" in node.meta else []

    NodeSource.__init__ = __init__
    try:
        yield
    finally:
        NodeSource.__init__ = original


def _renamed(code: types.CodeType, filename: str) -> types.CodeType:
    """The code object compile() would make from the same source under another file name (nested code too)."""
    consts = tuple(_renamed(c, filename) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


@dataclasses.dataclass
class CompiledCode:
    """Compiles asked for within the block, and how many distinct sources they had (compiled once each)."""

    compiles: int = 0
    distinct: int = 0
    sources: dict = dataclasses.field(default_factory=dict)  # source -> code, while the block lasts


@contextlib.contextmanager
def reuse_compiled_code() -> Iterator[CompiledCode]:
    """Within this block, torch.fx compiles each distinct generated source once.

    A hit is renamed to the fresh file name torch registered for it (its source stays retrievable for tracebacks), so
    the function made is the one a fresh compile would make."""
    from torch.fx import graph_module

    original = graph_module._exec_with_source
    seen = CompiledCode()

    def _exec_with_source(src, globals, co_fields=None):
        key = graph_module._loader.cache(src, globals, co_fields)
        seen.compiles += 1
        code = seen.sources.get(src)
        if code is None:
            code = seen.sources[src] = compile(src, key, "exec", dont_inherit=True)
            seen.distinct += 1
        elif code.co_filename != key:
            code = _renamed(code, key)
        exec(code, globals)

    graph_module._exec_with_source = _exec_with_source
    try:
        yield seen
    finally:
        graph_module._exec_with_source = original
        seen.sources.clear()


SIGNATURE_MAPS = ("inputs_to_parameters", "inputs_to_buffers", "inputs_to_lifted_tensor_constants",
                  "inputs_to_lifted_custom_objs")


@dataclasses.dataclass
class SignatureMaps:
    """Input maps asked for within the block: answered from the cache (hits) or built (misses)."""

    hits: int = 0
    misses: int = 0


@contextlib.contextmanager
def cache_signature_maps() -> Iterator[SignatureMaps]:
    """Within this block, ExportGraphSignature's input maps are built once per state of the signature.

    The state is tracked, not guessed: any attribute set on a signature, input spec or argument (passes rename
    arguments in place) moves a version counter, and the input list's identity and a copy of its elements are part
    of the key, so a list edited in place misses too (the copy compares element by element, by identity first: a
    C loop, where a tuple of ids cost a Python call per input on every ask)."""
    from torch.export import graph_signature as gs

    classes = [c for c in vars(gs).values()
               if isinstance(c, type) and dataclasses.is_dataclass(c) and c.__module__ == gs.__name__]
    version = [0]
    cache: dict = {}
    counts = SignatureMaps()

    def counting(setattr_):
        def __setattr__(self, name, value):
            version[0] += 1
            setattr_(self, name, value)

        return __setattr__

    def cached(name, prop):
        def get(self):
            specs = self.input_specs
            hit = cache.get((id(self), name))
            if (hit is not None and hit[0] is self and hit[1] == (version[0], id(specs))
                    and hit[2] == specs):  # equal specs (the same ones, in practice) give the same maps
                counts.hits += 1
                return hit[3]
            counts.misses += 1
            value = prop.fget(self)
            cache[(id(self), name)] = (self, (version[0], id(specs)), list(specs), value)  # self: its id stays taken
            return value

        return property(get, doc=prop.__doc__)

    setattrs = {c: c.__dict__.get("__setattr__") for c in classes}
    props = {name: gs.ExportGraphSignature.__dict__[name] for name in SIGNATURE_MAPS}
    for c in classes:
        c.__setattr__ = counting(c.__setattr__)
    for name, prop in props.items():
        setattr(gs.ExportGraphSignature, name, cached(name, prop))
    try:
        yield counts
    finally:
        for name, prop in props.items():
            setattr(gs.ExportGraphSignature, name, prop)
        for c, own in setattrs.items():
            if own is None:
                del c.__setattr__
            else:
                c.__setattr__ = own
        cache.clear()


@dataclasses.dataclass
class DeferredCode:
    """Recompiles asked for within the block, and how many of them generated code (when it was read or run)."""

    asked: int = 0
    generated: int = 0


@contextlib.contextmanager
def defer_codegen() -> Iterator[DeferredCode]:
    """Within this block, `GraphModule.recompile` generates a module's Python code when the code is first read or the
    module first run, not each time a pass edits the graph.

    Every re-trace builds a new GraphModule and many passes call recompile() after editing one, and each time torch
    writes the Python source of the whole graph (~6,000 nodes for int8 MobileBERT) that nothing reads: the passes walk
    the graph itself. torch's own _LazyGraphModule defers the same way; here it is applied to the GraphModules made
    in the block, through each one's own class (torch gives every GraphModule a class of its own to hold its
    forward), so a module keeps deferring correctly after the block: the code generated is always the code of the
    graph as it is when the code is needed, which is what an immediate recompile after the last edit gives."""
    from torch.fx import graph_module as gmod

    GM = gmod.GraphModule
    before = GM.__dict__["recompile"]
    real = getattr(before, "generates", before)  # torch's own, also inside another such block
    seen = DeferredCode()

    def generate(self):
        self.__dict__["_code_deferred"] = False
        seen.generated += 1
        return real(self)

    def forward(self, *args, **kwargs):  # stands for the generated forward until it is first needed
        generate(self)
        return self(*args, **kwargs)

    def code(self):
        if self.__dict__.get("_code_deferred"):
            generate(self)
        return GM.__dict__["code"].fget(self)

    def with_code(name):
        method = GM.__dict__[name]

        def call(self, *args, **kwargs):
            if self.__dict__.get("_code_deferred"):
                generate(self)
            cls = type(self)
            cls.recompile = real  # the reduce methods use recompile()'s result
            try:
                return method(self, *args, **kwargs)
            finally:
                del cls.recompile

        return call

    def recompile(self):
        seen.asked += 1
        cls = type(self)
        if cls.__qualname__.split(".")[-1] != "GraphModuleImpl":  # not a class of its own: no deferring
            return real(self)
        if isinstance(self.graph._codegen, gmod._PyTreeCodeGen):  # what recompile sets besides the code
            self._in_spec = self.graph._codegen.pytree_info.in_spec
            self._out_spec = self.graph._codegen.pytree_info.out_spec
        if "_defers_code" not in cls.__dict__:
            cls._defers_code = True
            cls.code = property(code, doc=GM.code.__doc__)
            for name in ("__str__", "__reduce__", "__reduce_package__"):
                setattr(cls, name, with_code(name))
        self.__dict__["_code_deferred"] = True
        cls.forward = forward

    recompile.generates = real
    GM.recompile = recompile
    try:
        yield seen
    finally:
        GM.recompile = before
