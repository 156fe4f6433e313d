"""Student scoring: IFD / r-IFD math (:mod:`.ifd`) and the batched target-loss scorer (:mod:`.scorer`).

``scorer`` imports torch lazily-by-module: import it only where a model is needed.
"""

from reflection_tuning.score.ifd import TERMS, Ratio, ifd, perplexity, rifd, score_fields

__all__ = ["TERMS", "Ratio", "ifd", "perplexity", "rifd", "score_fields"]
