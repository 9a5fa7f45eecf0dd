"""The forward layer, the data path of every prediction: strings to columns (``inputs``), encoding with tag
slots (``encoding``), the engine's passes (``engine``), the prefix cache (``cache``), the states a readout needs
(``states``, ``pooling``), readouts (``readouts``), deep tags (``deep``), the module of tags and head (``module``),
how tags start (``taginit``, ``pretrained``), the backbones it accepts (``architectures``) and the process-wide
store of each row's prefix (``prefix_store``)."""
