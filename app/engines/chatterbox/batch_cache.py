"""The step scheduler's key/value cache: one padded row per stream row, one shared length.

Why not transformers' ``DynamicCache``: it concatenates on every step (a copy of the whole
cache per layer per step, which at batch 8 costs more than the step's matmuls on a CPU),
and it offers no way to add one stream's rows or drop another's between steps.

Here every layer's keys and values live in a preallocated buffer of shape
``(row capacity, heads, column capacity, head_dim)`` that grows geometrically. All rows
share one length: a step writes column ``length`` of every row, so the whole batch is one
forward. Rows are left-padded: a stream whose prefill is shorter than the batch sits at
the right end of its row and the columns before it are marked invalid in ``valid`` (the
attention mask). A stream longer than the batch shifts the other rows right instead. When
streams leave, their rows are dropped and columns that no remaining row uses are trimmed,
so a long-finished stream does not keep costing attention.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.cache_utils import Cache, DynamicLayer

MIN_COLUMNS = 256
TRIM_AT = 32  # leading columns nobody uses before they are cut (a copy of the cache)


class _SlotLayer(DynamicLayer):
    """One transformer layer's view of a ``SlotCache``: writes go to the shared buffers."""

    def __init__(self, owner: SlotCache, index: int) -> None:
        super().__init__()
        self.owner = owner
        self.index = index
        self.is_initialized = True
        self.dtype, self.device = owner.dtype, owner.device

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor,
        cache_kwargs: dict[str, Any] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        self.keys, self.values = self.owner.write(self.index, key_states, value_states)
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.owner.length


class SlotCache:
    """Keys and values of every active row, left-padded to one length.

    ``rows`` rows are in use (0..rows-1); ``pos[r]`` is row r's own sequence length (its
    position for the next token); ``valid[r, c]`` says whether column c holds row r's data.
    Call ``cache()`` for the object a forward takes, then ``commit(n)`` after it.
    """

    def __init__(self, num_layers: int, dtype: torch.dtype, device: torch.device) -> None:
        self.num_layers = num_layers
        self.dtype = dtype
        self.device = device
        self.rows = 0
        self.length = 0
        self._k: list[torch.Tensor] = []
        self._v: list[torch.Tensor] = []
        self.valid = torch.zeros(0, 0, dtype=torch.bool, device=device)
        self.pos = torch.zeros(0, dtype=torch.long, device=device)
        self._shape = (0, 0)

    # --- what a forward uses ---
    @property
    def padded(self) -> bool:
        """True when some row does not use every column (a mask and positions are needed)."""
        return bool(self.rows) and bool((self.pos[: self.rows] != self.length).any())

    def cache(self) -> Cache:
        return Cache(layers=[_SlotLayer(self, i) for i in range(self.num_layers)])

    def step_mask(self, n: int = 1) -> torch.Tensor:
        """The (rows, length + n) attention mask for a forward of ``n`` new columns."""
        self._reserve(self.rows, self.length + n)
        self.valid[: self.rows, self.length : self.length + n] = True
        return self.valid[: self.rows, : self.length + n]

    def positions(self, n: int = 1) -> torch.Tensor:
        """(rows, n) positions of the next ``n`` tokens of every row."""
        steps = torch.arange(n, device=self.device)
        return self.pos[: self.rows, None] + steps[None]

    def write(self, layer: int, keys: torch.Tensor, values: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
        n = keys.shape[2]
        self._reserve(self.rows, self.length + n)
        k, v = self._k[layer], self._v[layer]
        k[: self.rows, :, self.length : self.length + n] = keys
        v[: self.rows, :, self.length : self.length + n] = values
        end = self.length + n
        return k[: self.rows, :, :end], v[: self.rows, :, :end]

    def commit(self, n: int = 1) -> None:
        """After a forward: the ``n`` columns it wrote are every row's."""
        self.valid[: self.rows, self.length : self.length + n] = True
        self.length += n
        self.pos[: self.rows] += n

    # --- membership ---
    def add(self, past: Any) -> range:
        """Append the rows of a prefill's cache (any ``Cache`` with ``layers``); their range."""
        first = past.layers[0].keys
        r, n = first.shape[0], first.shape[2]
        if not self._k:
            self._shape = (first.shape[1], first.shape[3])
        new_len = max(self.length, n)
        if self.rows and new_len > self.length:
            self._shift_right(new_len - self.length)
        self._reserve(self.rows + r, new_len + 1)
        self.length = new_len
        rows = range(self.rows, self.rows + r)
        start = new_len - n
        for i, layer in enumerate(past.layers):
            self._k[i][rows.start : rows.stop, :, start:new_len] = layer.keys
            self._v[i][rows.start : rows.stop, :, start:new_len] = layer.values
        self.valid[rows.start : rows.stop] = False
        self.valid[rows.start : rows.stop, start:new_len] = True
        self.pos[rows.start : rows.stop] = n
        self.rows += r
        return rows

    def keep(self, rows: list[int]) -> None:
        """Keep only ``rows`` (in this order) and trim columns no remaining row uses."""
        if not rows:
            self.rows = 0
            self.length = 0
            return
        index = torch.tensor(rows, dtype=torch.long, device=self.device)
        n = len(rows)
        for bufs in (self._k, self._v):
            for buf in bufs:
                buf[:n, :, : self.length] = buf.index_select(0, index)[:, :, : self.length]
        self.valid[:n] = self.valid.index_select(0, index)
        self.pos[:n] = self.pos.index_select(0, index)
        self.rows = n
        unused = int(self.length - int(self.pos[:n].max()))
        if unused >= TRIM_AT:
            self._shift_left(unused)

    # --- storage ---
    def _reserve(self, rows: int, columns: int) -> None:
        have_rows, have_cols = self.valid.shape
        if self._k and rows <= have_rows and columns <= have_cols:
            return
        new_rows = have_rows if rows <= have_rows else max(rows, 2 * have_rows)
        new_cols = (have_cols if columns <= have_cols
                    else max(columns, MIN_COLUMNS, int(1.5 * have_cols)))
        self._allocate(new_rows, new_cols)

    def _allocate(self, rows: int, cols: int) -> None:
        """New buffers of ``rows`` x ``cols``, keeping what the active rows hold."""
        r, c = self.rows, self.length
        heads, dim = self._shape

        def grow(old: torch.Tensor | None) -> torch.Tensor:
            new = torch.zeros(rows, heads, cols, dim, dtype=self.dtype, device=self.device)
            if old is not None:
                new[:r, :, :c] = old[:r, :, :c]
            return new

        olds: list[tuple[torch.Tensor | None, torch.Tensor | None]] = list(
            zip(self._k, self._v, strict=True)) or [(None, None)] * self.num_layers
        self._k = [grow(k) for k, _ in olds]
        self._v = [grow(v) for _, v in olds]
        valid = torch.zeros(rows, cols, dtype=torch.bool, device=self.device)
        pos = torch.zeros(rows, dtype=torch.long, device=self.device)
        valid[:r, :c] = self.valid[:r, :c]
        pos[:r] = self.pos[:r]
        self.valid, self.pos = valid, pos

    def _shift_right(self, by: int) -> None:
        self._reserve(self.rows, self.length + by + 1)
        r, n = self.rows, self.length
        for buf in (*self._k, *self._v):
            buf[:r, :, by : by + n] = buf[:r, :, :n].clone()
            buf[:r, :, :by] = 0
        self.valid[:r, by : by + n] = self.valid[:r, :n].clone()
        self.valid[:r, :by] = False

    def _shift_left(self, by: int) -> None:
        r, n = self.rows, self.length
        for buf in (*self._k, *self._v):
            buf[:r, :, : n - by] = buf[:r, :, by:n].clone()
        self.valid[:r, : n - by] = self.valid[:r, by:n].clone()
        self.valid[:r, n - by :] = False
        self.length = n - by
