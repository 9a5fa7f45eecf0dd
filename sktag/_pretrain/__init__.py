"""Domain-tag pretraining: what the pretrainers share (``base``) and the descriptor objective
(``descriptor``)."""
