"""Explanations: integrated-gradient attributions through the engine (``attribution``), SMILES tokens to atoms
(``smiles_atoms``) and the pictures (``draw``)."""
