"""Shared fixtures: live servers per module (real uvicorn on 127.0.0.1)."""

from __future__ import annotations

import os

os.environ.setdefault("TQDM_DISABLE", "1")
