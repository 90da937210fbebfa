"""Models: modality encoders, fusion, the classifier and the LightningModule that trains it
(with its objective, scoring, optimisation and test-time views)."""
