"""Global fixed points on chunked volumes by block-synchronous boundary exchange.

Some descriptors are global: a shortest path or a widest (bottleneck) path may wind
through any number of blocks. They are found the way distributed label-correcting
solvers find them: each block is solved on its own, given the best values known on its
one-voxel halo (the neighbouring blocks' outer shells); only the shells travel back to
the client; a block is solved again only when its halo changed. When the per-block
update is monotone (values only decrease for shortest paths, only increase for widest
paths) the rounds stop, and at the fixed point every value equals the whole-volume one.

Used by :mod:`.geodesic` (shortest paths) and :mod:`.sizes` (the widest path from the
inlet that decides which ball centres a simulated intrusion reaches).
"""

from __future__ import annotations

import itertools

import dask
import dask.array as da
import numpy as np

from ..core.errors import ConvergenceError
from ..core.progress import compute, current_client


def _offsets(ndim):
    return [o for o in itertools.product((-1, 0, 1), repeat=ndim) if any(o)]


def _shell(d):
    """The outer one-voxel shell of a block as a dict {(axis, side): face array}."""
    return {(i, s): np.take(d, 0 if s == 0 else d.shape[i] - 1, axis=i).copy()
            for i in range(d.ndim) for s in (0, 1)}


def _halo_parts(idx, shells, shapes, nblocks):
    """The neighbours' shell values that border block ``idx``: [(slices into ext, values)].

    Compact (faces, edges and corners only), so the client never holds a block-sized
    halo per block.
    """
    shape = shapes[idx]
    parts = []
    for o in _offsets(len(shape)):
        nb = tuple(i + c for i, c in zip(idx, o))
        if any(b < 0 or b >= m for b, m in zip(nb, nblocks)) or nb not in shells:
            continue
        # the neighbour's face that touches this block, along the first axis with o != 0
        ax = next(i for i, c in enumerate(o) if c)
        face = shells[nb][(ax, 1 if o[ax] < 0 else 0)]
        take, dst = [], []
        for i, c in enumerate(o):
            if i == ax:
                dst.append(slice(0, 1) if c < 0 else slice(shape[i] + 1, shape[i] + 2))
                continue
            nshape = shapes[nb][i]
            if c < 0:
                take.append(slice(nshape - 1, nshape))
                dst.append(slice(0, 1))
            elif c > 0:
                take.append(slice(0, 1))
                dst.append(slice(shape[i] + 1, shape[i] + 2))
            else:
                take.append(slice(None))
                dst.append(slice(1, shape[i] + 1))
        vals = np.expand_dims(face[tuple(take)], ax)
        parts.append((tuple(dst), vals))
    return parts


def _same_parts(a, b):
    return a is not None and len(a) == len(b) and all(
        sa == sb and np.array_equal(va, vb) for (sa, va), (sb, vb) in zip(a, b))


def extend(shape, parts, fill, dtype):
    """Block shape extended by one voxel per side: ``fill``, and the halo ``parts``."""
    ext = np.full(tuple(s + 2 for s in shape), fill, dtype=dtype)
    for sl, vals in parts:
        ext[sl] = vals
    return ext


def _grid(chunks):
    nblocks = tuple(len(c) for c in chunks)
    shapes = {idx: tuple(chunks[i][j] for i, j in enumerate(idx))
              for idx in itertools.product(*[range(m) for m in nblocks])}
    return nblocks, shapes


def _solve_round(tasks, label):
    """Results of one round's block tasks. On a distributed cluster each result is
    gathered and released as soon as it is done, so the workers never hold a round's
    shells at once (thousands of blocks); elsewhere one ``compute``."""
    client = current_client()
    if client is None:
        return list(compute(*tasks, label=label))
    from distributed import as_completed

    futures = client.compute(tasks)
    where = {f.key: i for i, f in enumerate(futures)}
    out = [None] * len(futures)
    for fut, res in as_completed(futures, with_results=True):
        out[where[fut.key]] = res
        fut.release()
    del futures
    return out


def iterate(arrays, solve, fill, label, max_rounds, sources=None):
    """Solve blocks with boundary exchange until no shell changes.

    Parameters
    ----------
    arrays : sequence of dask.array.Array
        Inputs with equal chunks; block ``idx`` of each is passed to ``solve``.
    solve : callable
        ``solve(*blocks, parts=..., idx=...) -> numpy.ndarray`` of the block's shape: the
        block's values given its halo ``parts`` (see :func:`extend`). Must be monotone.
    fill : scalar
        The value of "nothing known yet" (inf for shortest paths, 0 for widest paths).
    label : str
        Progress label.
    max_rounds : int
        :class:`ConvergenceError` beyond this many rounds.
    sources : callable, optional
        ``sources(idx) -> bool``: whether block ``idx`` has values of its own (an inlet
        face) with an empty halo. Other blocks are solved only once a neighbour offers
        them something other than ``fill``; a block never solved is ``fill`` throughout.
        Default: every block is a source.

    Returns
    -------
    shells : dict
        Block index -> its final outer shell (solved blocks only).
    parts : dict
        Block index -> the halo parts its final solve used (to rebuild whole blocks with
        :func:`assemble`; solved blocks only).
    """
    chunks = arrays[0].chunks
    nblocks, shapes = _grid(chunks)
    blocks = [a.to_delayed() for a in arrays]
    task = dask.delayed(lambda *b, parts, idx: _shell(solve(*b, parts=parts, idx=idx)),
                        pure=True)
    shells, used = {}, {}
    todo = {i for i in shapes if sources is None or sources(i)}
    rounds = 0
    while todo:
        rounds += 1
        if rounds > max_rounds:
            raise ConvergenceError(f"{label}: not converged after {max_rounds} "
                                   "boundary-exchange rounds")
        order = sorted(todo)
        parts = {i: _halo_parts(i, shells, shapes, nblocks) for i in order}
        results = _solve_round([task(*[b[i] for b in blocks], parts=parts[i], idx=i)
                                for i in order], f"{label}, round {rounds}")
        changed = set()
        for i, sh in zip(order, results):
            used[i] = parts[i]
            old = shells.get(i)
            if old is None or any(not np.array_equal(old[k], sh[k]) for k in sh):
                if old is not None or any(np.any(v != fill) for v in sh.values()):
                    changed.add(i)
                shells[i] = sh
        todo = set()
        for i in changed:
            for o in _offsets(len(nblocks)):
                nb = tuple(a + c for a, c in zip(i, o))
                if not all(0 <= b < m for b, m in zip(nb, nblocks)):
                    continue
                new = _halo_parts(nb, shells, shapes, nblocks)
                if not _same_parts(used.get(nb), new) and (
                        nb in used or any(np.any(v != fill) for _, v in new)):
                    todo.add(nb)
    return shells, used


def assemble(arrays, solve, parts, fill, dtype):
    """Lazy whole-volume result: every solved block solved again with its final halo
    ``parts``, the others ``fill``."""
    nblocks, shapes = _grid(arrays[0].chunks)
    blocks = [a.to_delayed() for a in arrays]
    run = dask.delayed(solve, pure=True)
    out = np.empty(nblocks, dtype=object)
    for idx, shape in shapes.items():
        if idx not in parts:
            out[idx] = da.full(shape, fill, dtype=dtype)
            continue
        out[idx] = da.from_delayed(run(*[b[idx] for b in blocks], parts=parts[idx], idx=idx),
                                   shape=shape, dtype=dtype)
    return da.block(out.tolist())
