"""The order of the examples in the gallery: the list below first, any other example after them by file name."""

from pathlib import Path

ORDER = [
    "plot_quickstart_regression.py",
    "plot_classifier_string_labels.py",
    "plot_grid_search_tag_length.py",
    "plot_embedding_column_transformer.py",
    "plot_benchmark_compare.py",
    "plot_domain_tag_pretraining.py",
    "plot_drug_protein_dataframe.py",
    "plot_invalid_rows.py",
    "plot_hybrid.py",
    "plot_explain_molecule.py",
]


class GalleryOrder:
    """``within_subsection_order`` of sphinx-gallery (instantiated with the source folder)."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        name = Path(filename).name
        return (ORDER.index(name) if name in ORDER else len(ORDER), name)

    def __repr__(self):
        return "GalleryOrder"
