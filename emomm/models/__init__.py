"""Models: modality encoders, fusion, the classifier and the LightningModule that trains it."""
