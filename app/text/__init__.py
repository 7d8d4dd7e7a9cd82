"""Text handling before synthesis: clause segmentation of LLM token streams."""

from app.text.segmenter import ClauseSegmenter, speakable, split_clauses

__all__ = ["ClauseSegmenter", "speakable", "split_clauses"]
