"""The fit layer: the fit skeleton of the Tag-LLM estimators (``base``), its records (``records``), the training
loop (``training``), tasks and head solvers (``tasks``, ``ridge``), backbone access and the commit shared by every
estimator (``backbone_access``), prediction (``inference``) and TagSet input/output (``tagio``)."""
